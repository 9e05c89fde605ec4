//! meshguard: Istio authorization decided inside Envoy, as a proxy-wasm HTTP filter.
//!
//! The crate is a pure policy engine plus one thin host layer:
//!
//! * [`config`] loads the plugin configuration (Kubernetes resources as JSON) and compiles it;
//! * [`authorization_policy`] validates and translates Istio `AuthorizationPolicy` rules;
//! * [`request_authentication`], [`jwt`] (with [`jwt_json`], JSON as protobuf reads it) and
//!   [`authn`] verify end-user JWTs as Envoy's `jwt_authn` does for Istio
//!   `RequestAuthentication`;
//! * [`peer_authentication`] composes PeerAuthentication modes; [`legacy_rbac`] translates
//!   the v1alpha1 ServiceRole/ServiceRoleBinding/ClusterRbacConfig, into which SuperGloo
//!   [`security_rule`]s also compile; [`sidecar`] holds the outbound egress allow-list;
//! * [`predicate`], [`matcher`], [`identity`], [`path`], [`ip`] are the compiled matchers;
//! * [`targeting`] decides which resources select this workload;
//! * [`engine`] turns a [`request`] view into a [`engine::Decision`], using the rule
//!   [`index`] to evaluate only candidate rules;
//! * `filter` (wasm32 only) is the proxy-wasm glue: it reads headers and properties from
//!   Envoy through `host` (panic-free host calls) and [`pairs`] (the map wire format), asks the
//!   engine, and answers 403 itself.
//!
//! Everything except `filter` builds and is tested natively.

#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod authn;
pub mod authorization_policy;
pub mod config;
pub mod engine;
pub mod identity;
pub mod index;
pub mod ip;
pub mod json_path;
pub mod jwt;
pub mod jwt_json;
pub mod legacy_rbac;
pub mod matcher;
pub mod pairs;
pub mod path;
pub mod peer_authentication;
pub mod predicate;
pub mod request;
pub mod request_authentication;
pub mod security_rule;
pub mod sidecar;
pub mod targeting;

#[cfg(target_arch = "wasm32")]
mod filter;
#[cfg(target_arch = "wasm32")]
mod host;
