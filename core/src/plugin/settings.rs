//! The plugin settings that shape the reply, the side of the workload enforced and the per-VM
//! machinery (token cache, JWKS refresh) rather than the policy decision.

use crate::authorization::deny_response::DenyResponse;
use crate::config_json::reader::{FromJson, Json};
use crate::error::ConfigResult;

/// The traffic direction the filter enforces.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Direction {
    /// From Envoy's `xds.listener_direction` (1 inbound, 2 outbound); inbound if unknown.
    #[default]
    Auto,
    Inbound,
    Outbound,
}

/// Where verified JWT claims come from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum JwtSource {
    /// meshguard verifies tokens itself (RequestAuthentication resources in this config).
    #[default]
    Filter,
    /// Envoy's `jwt_authn` (Istio's RequestAuthentication) already verified the token and left
    /// the payload in metadata `envoy.filters.http.jwt_authn` / `payload`.
    EnvoyJwtAuthn,
}

impl FromJson for Direction {
    fn from_json(value: &Json<'_>) -> ConfigResult<Direction> {
        value.variant(&[
            ("auto", Direction::Auto),
            ("inbound", Direction::Inbound),
            ("outbound", Direction::Outbound),
        ])
    }
}

impl FromJson for JwtSource {
    fn from_json(value: &Json<'_>) -> ConfigResult<JwtSource> {
        value.variant(&[
            ("filter", JwtSource::Filter),
            ("envoyJwtAuthn", JwtSource::EnvoyJwtAuthn),
        ])
    }
}

/// Settings that shape the reply and the per-VM machinery rather than the decision.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// Add `x-meshguard-decision` to responses.
    pub decision_header: bool,
    /// Record each decision's duration (`decisionLatencyHistogram`, off by default).
    pub decision_latency_histogram: bool,
    /// Record the decision as filter state `wasm.meshguard.decision` (one host call per
    /// request, about 4,600 instructions), for access logs.
    pub decision_filter_state: bool,
    /// Seconds between remote JWKS refreshes.
    pub jwks_refresh_seconds: u64,
    /// Verified-token cache capacity.
    pub jwt_cache_size: usize,
    pub jwt_source: JwtSource,
    pub direction: Direction,
    /// The reply to an authorization denial no annotated DENY policy decided (`denyResponse`).
    pub deny_response: DenyResponse,
}
