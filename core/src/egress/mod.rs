//! Outbound traffic: the Istio `Sidecar` egress allow-list.

pub mod sidecar;
