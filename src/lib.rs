//! meshguard: Istio authorization decided inside Envoy, as a proxy-wasm HTTP filter.
//!
//! This crate is the thin proxy-wasm glue and the only crate of the workspace that imports
//! proxy-wasm. The policy core (`meshguard-core`, in `core/`) decides; here:
//!
//! * `filter` implements the proxy-wasm contexts: it reads headers and properties from Envoy,
//!   calls the core's request pipeline and applies its outcome;
//! * `host` holds every host call, each returning `Result` (no SDK call that can panic).
//! * `sdk_helpers` overrides the SDK's unused host-call helpers with inert bodies (module size).
//!
//! On anything but wasm32 this crate is empty (the core and the CLI build natively).

#[cfg(target_arch = "wasm32")]
mod filter;
#[cfg(target_arch = "wasm32")]
mod host;
#[cfg(target_arch = "wasm32")]
mod sdk_helpers;
