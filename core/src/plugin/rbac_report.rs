//! What Envoy's RBAC filters publish about dry-run and AUDIT policies when istiod configured
//! them, computed from one [`Decision`] so the wasm glue can publish the closest equivalent a
//! proxy-wasm module can write.
//!
//! Mirrors istiod's `pilot/pkg/security/authz/builder` (one RBAC filter per action, in the order
//! AUDIT, DENY, ALLOW; `istio.io/dry-run` policies as that filter's `shadow_rules` with
//! `shadow_rules_stat_prefix` `istio_dry_run_deny_` / `istio_dry_run_allow_`, and none for
//! AUDIT, whose action is LOG) and Envoy's `source/extensions/filters/http/rbac/rbac_filter.cc`
//! with `filters/common/rbac/{engine_impl,utility}.cc`:
//!
//! * a filter with shadow rules sets, under the dynamic metadata namespace
//!   `envoy.filters.http.rbac`, `<prefix>shadow_engine_result` (`allowed` / `denied`) and, when a
//!   rule matched, `<prefix>shadow_effective_policy_id`, and counts
//!   `http.<stat_prefix>.rbac.<prefix>.shadow_allowed` / `shadow_denied` (Envoy's
//!   `statPrefixJoin` adds the dot after a non-empty prefix:
//!   `rbac.istio_dry_run_deny_.shadow_denied`, but `rbac.shadow_allowed` for the AUDIT filter);
//! * the enforced LOG (AUDIT) filter sets `access_log_hint` (`true` when an AUDIT rule matched)
//!   under the shared namespace `envoy.common`;
//! * a filter runs only if the ones before it let the request through: the ALLOW filter's
//!   shadow engine is not evaluated when an enforced DENY rule denied.
//!
//! A proxy-wasm module cannot write dynamic metadata (Envoy's `proxy_set_property` writes filter
//! state), so each key is published as the filter state `wasm.<namespace>.<key>`, and each
//! counter as the wasm counter `rbac.<prefix>.shadow_*` (Envoy names it
//! `wasmcustom.rbac.<prefix>.shadow_*`: Envoy's name without `http.<stat_prefix>.`).

use crate::authorization::rule_id::RuleId;
use crate::plugin::counters::Counter;
use crate::plugin::engine::{Decision, Reason, Shadow, Verdict};

/// The property (filter state `wasm.envoy.common.access_log_hint`) standing for Envoy's
/// `envoy.common` / `access_log_hint` dynamic metadata.
pub const ACCESS_LOG_HINT: &str = "envoy.common.access_log_hint";

/// The RBAC filter whose shadow engine a result comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShadowFilter {
    Audit,
    Deny,
    Allow,
}

impl ShadowFilter {
    /// istiod's `shadow_rules_stat_prefix` for this filter.
    pub fn stat_prefix(self) -> &'static str {
        match self {
            ShadowFilter::Audit => "",
            ShadowFilter::Deny => "istio_dry_run_deny_",
            ShadowFilter::Allow => "istio_dry_run_allow_",
        }
    }

    /// The property standing for `envoy.filters.http.rbac` / `<prefix>shadow_engine_result`.
    pub fn engine_result_property(self) -> &'static str {
        match self {
            ShadowFilter::Audit => "envoy.filters.http.rbac.shadow_engine_result",
            ShadowFilter::Deny => "envoy.filters.http.rbac.istio_dry_run_deny_shadow_engine_result",
            ShadowFilter::Allow => {
                "envoy.filters.http.rbac.istio_dry_run_allow_shadow_engine_result"
            }
        }
    }

    /// The property standing for `envoy.filters.http.rbac` / `<prefix>shadow_effective_policy_id`.
    pub fn policy_id_property(self) -> &'static str {
        match self {
            ShadowFilter::Audit => "envoy.filters.http.rbac.shadow_effective_policy_id",
            ShadowFilter::Deny => {
                "envoy.filters.http.rbac.istio_dry_run_deny_shadow_effective_policy_id"
            }
            ShadowFilter::Allow => {
                "envoy.filters.http.rbac.istio_dry_run_allow_shadow_effective_policy_id"
            }
        }
    }

    /// The counter `rbac.<prefix>.shadow_allowed` or `rbac.<prefix>.shadow_denied`.
    pub fn counter(self, allowed: bool) -> Counter {
        match (self, allowed) {
            (ShadowFilter::Audit, true) => Counter::ShadowAllowed,
            (ShadowFilter::Audit, false) => Counter::ShadowDenied,
            (ShadowFilter::Deny, true) => Counter::DryRunDenyShadowAllowed,
            (ShadowFilter::Deny, false) => Counter::DryRunDenyShadowDenied,
            (ShadowFilter::Allow, true) => Counter::DryRunAllowShadowAllowed,
            (ShadowFilter::Allow, false) => Counter::DryRunAllowShadowDenied,
        }
    }
}

/// `allowed` / `denied`, Envoy's shadow engine result values.
pub fn engine_result(allowed: bool) -> &'static str {
    if allowed {
        "allowed"
    } else {
        "denied"
    }
}

/// What the RBAC filters would publish for one request; empty (and free) when no dry-run or
/// AUDIT policy applies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RbacReport<'e> {
    /// The shadow results in filter order (AUDIT, DENY, ALLOW), each present only when its
    /// filter has shadow rules and runs.
    pub shadows: [Option<(ShadowFilter, Shadow<'e>)>; 3],
    /// `envoy.common` / `access_log_hint`: `Some` when AUDIT policies apply.
    pub access_log_hint: Option<bool>,
}

impl<'e> RbacReport<'e> {
    /// The report of an authorization decision (the RBAC filters run only after
    /// authentication, so only [`Reason::Policy`] decisions report).
    pub fn of(decision: &Decision<'e>) -> RbacReport<'e> {
        if decision.reason != Reason::Policy {
            return RbacReport::default();
        }
        // An enforced DENY rule stops the request in the DENY filter: the ALLOW filter (and
        // its shadow engine) never runs.
        let denied_by_deny_rule =
            decision.verdict == Verdict::Deny && decision.matched.decided.is_some();
        let shadows = &decision.shadows;
        let allow = shadows.allow.filter(|_| !denied_by_deny_rule);
        RbacReport {
            shadows: [
                shadows.audit.map(|s| (ShadowFilter::Audit, s)),
                shadows.deny.map(|s| (ShadowFilter::Deny, s)),
                allow.map(|s| (ShadowFilter::Allow, s)),
            ],
            access_log_hint: decision
                .audit_applies
                .then_some(decision.matched.audit.is_some()),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.access_log_hint.is_none() && self.shadows.iter().all(Option::is_none)
    }

    /// The shadow results present, in filter order.
    pub fn results(&self) -> impl Iterator<Item = (ShadowFilter, Shadow<'e>)> + '_ {
        self.shadows.iter().flatten().copied()
    }

    /// Every property to set and its value, in the order Envoy's filters would set them.
    pub fn properties(&self) -> impl Iterator<Item = (&'static str, &'e str)> + '_ {
        let hint = self.access_log_hint.map(|matched| {
            let value = if matched { "true" } else { "false" };
            (ACCESS_LOG_HINT, value)
        });
        let shadows = self.results().flat_map(|(filter, shadow)| {
            let result = (
                filter.engine_result_property(),
                engine_result(shadow.allowed),
            );
            let policy = shadow
                .rule
                .map(|rule| (filter.policy_id_property(), RuleId::as_str(rule)));
            std::iter::once(result).chain(policy)
        });
        hint.into_iter().chain(shadows)
    }
}
