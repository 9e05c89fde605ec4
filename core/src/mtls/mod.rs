//! Peer authentication: Istio `PeerAuthentication` modes per workload and port.

pub mod peer_authentication;
