//! Outbound traffic: the Istio `Sidecar` egress allow-list and the service registry
//! (`ServiceEntry` and cluster-local service names) that `REGISTRY_ONLY` consults.

pub mod host_name;
pub mod service_entry;
pub mod sidecar;
