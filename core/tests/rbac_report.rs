//! Dry-run and AUDIT results as the request pipeline reports them
//! (`plugin::rbac_report::RbacReport`): the filter state and counters standing for what Envoy's
//! RBAC filters publish when istiod configures them (AUDIT, DENY, ALLOW filters; dry-run policies
//! as shadow rules), natively. `tests/e2e/test_dry_run_audit_reporting.py` compares the same with
//! Envoy's own filter.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::cell::RefCell;

use common::*;
use meshguard_core::authn::authenticator::AuthnState;
use meshguard_core::plugin::counters::Counter;
use meshguard_core::plugin::engine::{Engine, Verdict};
use meshguard_core::plugin::request_pipeline::{
    decide_request, PipelineRequest, RequestOutcome, Side,
};
use meshguard_core::request::request_view::Headers;
use serde_json::json;

fn run<'e>(engine: &'e Engine, req: &Req) -> RequestOutcome<'e> {
    let headers: Vec<(String, Vec<u8>)> = vec![
        (":method".into(), req.method.clone().into_bytes()),
        (":path".into(), req.path.clone().into_bytes()),
        (":authority".into(), req.authority.clone().into_bytes()),
        (":scheme".into(), b"http".to_vec()),
    ];
    let no_payload = || None;
    let request = PipelineRequest {
        headers: Headers::new(&headers),
        connection: &req.conn,
        side: Side::Inbound,
        clock: &|| 0,
        jwt_authn_payload: &no_payload,
    };
    let cache = RefCell::new(AuthnState::new(10));
    decide_request(engine, &request, &cache)
}

/// The filter state meshguard publishes for a request, as `(property, value)` pairs.
fn published(out: &RequestOutcome<'_>) -> Vec<(String, String)> {
    out.rbac_report
        .properties()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn pairs(want: &[(&str, &str)]) -> Vec<(String, String)> {
    want.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Dry-run DENY `dd` (`/admin`), dry-run ALLOW `da` (`/public`), AUDIT `au` (`/audit`), enforced
/// DENY `deny` (`/blocked`): Envoy's three RBAC filters as istiod builds them.
fn dry_run_and_audit() -> Engine {
    let paths = |p: &str| json!({"rules": [{"to": [{"operation": {"paths": [p]}}]}]});
    let with_action = |p: &str, action: &str| {
        let mut spec = paths(p);
        spec["action"] = json!(action);
        spec
    };
    load_ok(&cfg(vec![
        ap_dry_run(NS, "dd", "true", with_action("/admin", "DENY")),
        ap_dry_run(NS, "da", "true", paths("/public")),
        ap(NS, "au", with_action("/audit", "AUDIT")),
        ap(NS, "deny", with_action("/blocked", "DENY")),
    ]))
}

#[test]
fn dry_run_results_are_published_per_shadow_engine_with_istios_keys() {
    let e = dry_run_and_audit();
    let out = run(&e, &Req::get("/admin"));
    assert_eq!(out.verdict, Verdict::Allow);
    let dd = id(NS, "dd", 0);
    assert_eq!(
        published(&out),
        pairs(&[
            ("envoy.common.access_log_hint", "false"),
            (
                "envoy.filters.http.rbac.istio_dry_run_deny_shadow_engine_result",
                "denied"
            ),
            (
                "envoy.filters.http.rbac.istio_dry_run_deny_shadow_effective_policy_id",
                &dd
            ),
            (
                "envoy.filters.http.rbac.istio_dry_run_allow_shadow_engine_result",
                "denied"
            ),
        ])
    );
    let counters: Vec<_> = out.counters.counters().collect();
    for c in [
        Counter::DryRunDenyShadowDenied,
        Counter::DryRunAllowShadowDenied,
        Counter::DryRunDenied,
    ] {
        assert!(counters.contains(&c), "{c:?} in {counters:?}");
    }
    assert_eq!(
        Counter::DryRunAllowShadowDenied.name(),
        "rbac.istio_dry_run_allow_.shadow_denied"
    );

    let public = run(&e, &Req::get("/public"));
    let da = id(NS, "da", 0);
    assert_eq!(
        published(&public)[1..],
        pairs(&[
            (
                "envoy.filters.http.rbac.istio_dry_run_deny_shadow_engine_result",
                "allowed"
            ),
            (
                "envoy.filters.http.rbac.istio_dry_run_allow_shadow_engine_result",
                "allowed"
            ),
            (
                "envoy.filters.http.rbac.istio_dry_run_allow_shadow_effective_policy_id",
                &da
            ),
        ])[..]
    );
}

#[test]
fn an_enforced_deny_stops_before_the_allow_filters_shadow_engine() {
    let e = dry_run_and_audit();
    let out = run(&e, &Req::get("/blocked"));
    assert_eq!(out.verdict, Verdict::Deny);
    let keys: Vec<_> = published(&out).into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        keys,
        [
            "envoy.common.access_log_hint",
            "envoy.filters.http.rbac.istio_dry_run_deny_shadow_engine_result"
        ]
    );
    assert!(!out
        .counters
        .counters()
        .any(|c| c == Counter::DryRunAllowShadowDenied));
}

#[test]
fn a_matching_audit_rule_sets_the_access_log_hint() {
    let e = dry_run_and_audit();
    let out = run(&e, &Req::get("/audit"));
    assert_eq!(
        published(&out)[0],
        pairs(&[("envoy.common.access_log_hint", "true")])[0]
    );
    assert!(out.counters.counters().any(|c| c == Counter::Audited));
}

#[test]
fn a_dry_run_audit_policy_is_only_the_log_filters_shadow_engine() {
    let spec = json!({"action": "AUDIT", "rules": [{"to": [{"operation": {"paths": ["/a"]}}]}]});
    let e = load_ok(&cfg(vec![ap_dry_run(NS, "da", "true", spec)]));
    let out = run(&e, &Req::get("/a"));
    let da = id(NS, "da", 0);
    assert_eq!(
        published(&out),
        pairs(&[
            ("envoy.filters.http.rbac.shadow_engine_result", "allowed"),
            ("envoy.filters.http.rbac.shadow_effective_policy_id", &da),
        ])
    );
    let counters: Vec<_> = out.counters.counters().collect();
    assert!(counters.contains(&Counter::ShadowAllowed));
    assert!(!counters.contains(&Counter::Audited));
}

#[test]
fn without_dry_run_or_audit_policies_nothing_is_published() {
    let e = deny_rule(to(json!({"paths": ["/admin"]})));
    for path in ["/admin", "/x"] {
        assert!(run(&e, &Req::get(path)).rbac_report.is_empty());
    }
}

#[test]
fn the_reported_dry_run_rule_is_the_first_by_name_as_envoys_engine_checks_them() {
    let deny =
        |p: &str| json!({"action": "DENY", "rules": [{"to": [{"operation": {"paths": [p]}}]}]});
    let e = load_ok(&cfg(vec![
        ap_dry_run(NS, "zz", "true", deny("/x")),
        ap_dry_run(NS, "aa", "true", deny("/x*")),
    ]));
    let out = run(&e, &Req::get("/x"));
    assert_eq!(published(&out)[1].1, id(NS, "aa", 0));
}

#[test]
fn among_many_dry_run_rules_the_reported_one_is_the_smallest_rule_name_in_byte_order() {
    // 36 policies of 12 rules each (432 rules, past the lengths the standard library sorts by
    // insertion), names in scrambled order; rule 11 of a policy sorts before its rule 2, and
    // `p1` before `p10` before `p2`. Only some rules match `/x`.
    let mut policies = Vec::new();
    let mut matching = Vec::new();
    for i in 0..36 {
        let name = format!("p{}", (i * 7 + 5) % 36);
        let rules: Vec<_> = (0..12)
            .map(|r| {
                let hit = (i + r) % 5 == 0;
                if hit {
                    matching.push(id(NS, &name, r));
                }
                let path = if hit { "/x" } else { "/other" };
                json!({"to": [{"operation": {"paths": [path]}}]})
            })
            .collect();
        let spec = json!({"action": "DENY", "rules": rules});
        policies.push(ap_dry_run(NS, &name, "true", spec));
    }
    let e = load_ok(&cfg(policies));
    let out = run(&e, &Req::get("/x"));
    let smallest = matching.iter().min().unwrap();
    assert_eq!(&published(&out)[1].1, smallest);
}
