//! meshguard-core: Istio authorization decided as Envoy would, with no host in sight.
//!
//! The folders are layers; a module imports only its own folder and the layers below it
//! (checked by `tests/architecture.rs` at the workspace root):
//!
//! * [`plugin`]: the pipeline layer: the configuration contract, the compiled plugin
//!   ([`plugin::engine::Engine`]) and the request pipeline;
//! * the policy families, independent of each other: [`authorization`] (AuthorizationPolicy,
//!   legacy RBAC, SuperGloo SecurityRule), [`authn`] (RequestAuthentication and JWTs),
//!   [`mtls`] (PeerAuthentication), [`egress`] (Sidecar);
//! * [`targeting`]: which resources select this workload;
//! * [`matchers`]: the compiled matchers and the closed [`matchers::predicate::Predicate`]
//!   algebra;
//! * [`request`]: the request view (headers, connection, verified claims) and the wire format;
//! * [`config_json`]: the configuration's JSON read into the configuration types (by hand,
//!   with serde's refusals);
//! * [`error`]: typed configuration errors.
//!
//! Nothing here calls the host: the proxy-wasm glue (the workspace's root package) reads Envoy
//! and hands the core a request view, a clock and the token cache.

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
pub mod authorization;
pub mod config_json;
pub mod egress;
pub mod error;
pub mod matchers;
pub mod mtls;
pub mod plugin;
pub mod request;
pub mod targeting;
