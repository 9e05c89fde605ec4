//! The counters meshguard exports, as a closed enum, and the small sink they are bumped
//! through. Envoy files the names under `wasmcustom.` and Prometheus shows them as-is; the wasm
//! glue keeps the counts in the VM and flushes them to Envoy once a second. The dry-run shadow
//! counters carry the tail of the names Envoy's RBAC filter gives them for Istio
//! (`http.<stat_prefix>.rbac.istio_dry_run_allow_.shadow_denied`: Envoy joins the shadow stat
//! prefix with a dot; see `rbac_report`).

use std::marker::PhantomData;

use crate::authn::jwt::JwtFailure;
use crate::authorization::rule_id::RuleId;

/// One exported counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    Allowed,
    Denied,
    DryRunDenied,
    Audited,
    JwtAccepted,
    JwtRejectedMalformed,
    JwtRejectedUnknownIssuer,
    JwtRejectedExpired,
    JwtRejectedNotYetValid,
    JwtRejectedAudience,
    JwtRejectedSignature,
    JwtRejectedNoMatchingKey,
    JwtRejectedJwksUnavailable,
    JwtCacheHit,
    JwtCacheMiss,
    JwksFetchOk,
    JwksFetchFailed,
    DryRunDenyShadowAllowed,
    DryRunDenyShadowDenied,
    DryRunAllowShadowAllowed,
    DryRunAllowShadowDenied,
    /// The AUDIT filter's shadow engine (dry-run AUDIT policies; no stat prefix).
    ShadowAllowed,
    /// Never bumped (action LOG always allows), defined as Envoy defines it.
    ShadowDenied,
}

impl Counter {
    /// Every counter, in index order.
    pub const ALL: [Counter; 23] = [
        Counter::Allowed,
        Counter::Denied,
        Counter::DryRunDenied,
        Counter::Audited,
        Counter::JwtAccepted,
        Counter::JwtRejectedMalformed,
        Counter::JwtRejectedUnknownIssuer,
        Counter::JwtRejectedExpired,
        Counter::JwtRejectedNotYetValid,
        Counter::JwtRejectedAudience,
        Counter::JwtRejectedSignature,
        Counter::JwtRejectedNoMatchingKey,
        Counter::JwtRejectedJwksUnavailable,
        Counter::JwtCacheHit,
        Counter::JwtCacheMiss,
        Counter::JwksFetchOk,
        Counter::JwksFetchFailed,
        Counter::DryRunDenyShadowAllowed,
        Counter::DryRunDenyShadowDenied,
        Counter::DryRunAllowShadowAllowed,
        Counter::DryRunAllowShadowDenied,
        Counter::ShadowAllowed,
        Counter::ShadowDenied,
    ];

    /// The position in [`Counter::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The metric name.
    pub fn name(self) -> &'static str {
        match self {
            Counter::Allowed => "meshguard_allowed",
            Counter::Denied => "meshguard_denied",
            Counter::DryRunDenied => "meshguard_dry_run_denied",
            Counter::Audited => "meshguard_audited",
            Counter::JwtAccepted => "meshguard_jwt_accepted",
            Counter::JwtRejectedMalformed => "meshguard_jwt_rejected_malformed",
            Counter::JwtRejectedUnknownIssuer => "meshguard_jwt_rejected_unknown_issuer",
            Counter::JwtRejectedExpired => "meshguard_jwt_rejected_expired",
            Counter::JwtRejectedNotYetValid => "meshguard_jwt_rejected_not_yet_valid",
            Counter::JwtRejectedAudience => "meshguard_jwt_rejected_audience",
            Counter::JwtRejectedSignature => "meshguard_jwt_rejected_signature",
            Counter::JwtRejectedNoMatchingKey => "meshguard_jwt_rejected_no_matching_key",
            Counter::JwtRejectedJwksUnavailable => "meshguard_jwt_rejected_jwks_unavailable",
            Counter::JwtCacheHit => "meshguard_jwt_cache_hit",
            Counter::JwtCacheMiss => "meshguard_jwt_cache_miss",
            Counter::JwksFetchOk => "meshguard_jwks_fetch_ok",
            Counter::JwksFetchFailed => "meshguard_jwks_fetch_failed",
            Counter::DryRunDenyShadowAllowed => "rbac.istio_dry_run_deny_.shadow_allowed",
            Counter::DryRunDenyShadowDenied => "rbac.istio_dry_run_deny_.shadow_denied",
            Counter::DryRunAllowShadowAllowed => "rbac.istio_dry_run_allow_.shadow_allowed",
            Counter::DryRunAllowShadowDenied => "rbac.istio_dry_run_allow_.shadow_denied",
            Counter::ShadowAllowed => "rbac.shadow_allowed",
            Counter::ShadowDenied => "rbac.shadow_denied",
        }
    }

    /// The rejection counter of a token failure (by its log/metric reason).
    pub fn jwt_rejected(failure: JwtFailure) -> Counter {
        match failure.reason() {
            "unknown_issuer" => Counter::JwtRejectedUnknownIssuer,
            "expired" => Counter::JwtRejectedExpired,
            "not_yet_valid" => Counter::JwtRejectedNotYetValid,
            "audience" => Counter::JwtRejectedAudience,
            "signature" => Counter::JwtRejectedSignature,
            "no_matching_key" => Counter::JwtRejectedNoMatchingKey,
            "jwks_unavailable" => Counter::JwtRejectedJwksUnavailable,
            _ => Counter::JwtRejectedMalformed,
        }
    }
}

/// Per-policy outcomes, each a counter `meshguard_policy_<outcome>` tagged with the policy
/// (the glue spells the tag into the name as Istio's `extraStatTags` convention wants).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyOutcome {
    Allowed,
    Denied,
    DryRunDenied,
    Audited,
}

impl PolicyOutcome {
    pub const ALL: [PolicyOutcome; 4] = [
        PolicyOutcome::Allowed,
        PolicyOutcome::Denied,
        PolicyOutcome::DryRunDenied,
        PolicyOutcome::Audited,
    ];

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn name(self) -> &'static str {
        match self {
            PolicyOutcome::Allowed => "allowed",
            PolicyOutcome::Denied => "denied",
            PolicyOutcome::DryRunDenied => "dry_run_denied",
            PolicyOutcome::Audited => "audited",
        }
    }
}

/// Where counts go: the wasm glue's VM-local counters, or a recorder in tests and the CLI.
pub trait CounterSink {
    fn add(&self, counter: Counter, n: u64);
    /// One outcome of the policy with this index ([`RuleId::policy_index`]).
    fn add_policy(&self, policy_index: u32, outcome: PolicyOutcome);
}

/// At most this many counters per request: token accepted, allowed or denied, dry-run denied,
/// audited and the three shadow engines' results.
const MAX_BUMPS: usize = 7;

/// The counters one request bumps (at most [`MAX_BUMPS`] counters and three policy outcomes;
/// no allocation).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CounterBumps<'e> {
    counters: [Option<Counter>; MAX_BUMPS],
    policies: [Option<(u32, PolicyOutcome)>; 3],
    rules: PhantomData<&'e RuleId>,
}

impl<'e> CounterBumps<'e> {
    pub fn counter(mut self, counter: Counter) -> CounterBumps<'e> {
        if let Some(slot) = self.counters.iter_mut().find(|c| c.is_none()) {
            *slot = Some(counter);
        }
        self
    }

    /// One outcome of the policy `rule` belongs to.
    pub fn policy(mut self, rule: &'e RuleId, outcome: PolicyOutcome) -> CounterBumps<'e> {
        if let Some(slot) = self.policies.iter_mut().find(|c| c.is_none()) {
            *slot = Some((rule.policy_index(), outcome));
        }
        self
    }

    pub fn counters(&self) -> impl Iterator<Item = Counter> + '_ {
        self.counters.iter().flatten().copied()
    }

    pub fn policies(&self) -> impl Iterator<Item = (u32, PolicyOutcome)> + '_ {
        self.policies.iter().flatten().copied()
    }

    /// Bumps every counter once.
    pub fn apply(&self, sink: &dyn CounterSink) {
        for counter in self.counters() {
            sink.add(counter, 1);
        }
        for (policy, outcome) in self.policies() {
            sink.add_policy(policy, outcome);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_indexes_follow_all() {
        for (i, c) in Counter::ALL.iter().enumerate() {
            assert_eq!(c.index(), i);
        }
        for (i, o) in PolicyOutcome::ALL.iter().enumerate() {
            assert_eq!(o.index(), i);
        }
    }

    #[test]
    fn every_rejection_reason_has_its_counter() {
        for f in [
            JwtFailure::UnknownIssuer,
            JwtFailure::Expired,
            JwtFailure::AudienceNotAllowed,
            JwtFailure::JwksFetchFailed,
        ] {
            let name = Counter::jwt_rejected(f).name();
            assert_eq!(name, format!("meshguard_jwt_rejected_{}", f.reason()));
        }
    }

    #[test]
    fn bumps_keep_every_counter_one_request_can_bump() {
        let mut rule = RuleId::authorization_policy("ns", "p", 0);
        rule.set_policy_index(7);
        let mut b = CounterBumps::default();
        for c in Counter::ALL {
            b = b.counter(c);
        }
        b = b.policy(&rule, PolicyOutcome::Denied);
        assert_eq!(b.counters().count(), MAX_BUMPS);
        assert!(b.counters().eq(Counter::ALL.into_iter().take(MAX_BUMPS)));
        assert_eq!(
            b.policies().collect::<Vec<_>>(),
            [(7, PolicyOutcome::Denied)]
        );
    }
}
