//! The engine's policy numbering for per-policy counters: distinct policies numbered by first
//! appearance across the enforced, audit and dry-run sets, each named by the policy part of its
//! rules' ids (the engine keeps no separate copy of the names), and every rule pointing at its
//! own policy.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;
use meshguard_core::plugin::engine::Verdict;
use meshguard_core::request::request_view::StaticConnection;
use serde_json::json;

fn numbered_engine() -> meshguard_core::plugin::engine::Engine {
    let get = |path: &str| json!({"to": [{"operation": {"methods": ["GET"], "paths": [path]}}]});
    load_ok(&cfg(vec![
        ap(
            NS,
            "allow-a",
            json!({"action": "ALLOW", "rules": [get("/a"), get("/a2")]}),
        ),
        ap(
            NS,
            "deny-d",
            json!({"action": "DENY", "rules": [get("/d")]}),
        ),
        ap_dry_run(
            NS,
            "allow-x",
            "true",
            json!({"action": "ALLOW", "rules": [get("/x")]}),
        ),
        ap(
            NS,
            "audit-au",
            json!({"action": "AUDIT", "rules": [get("/a")]}),
        ),
        ap(
            NS,
            "allow-b",
            json!({"action": "ALLOW", "rules": [get("/b")]}),
        ),
    ]))
}

#[test]
fn policies_are_numbered_deny_allow_audit_then_dry_run_and_named_by_their_rule_ids() {
    let engine = numbered_engine();
    let names: Vec<&str> = engine.policy_names().collect();
    assert_eq!(
        names,
        [
            "ns[foo]-policy[deny-d]",
            "ns[foo]-policy[allow-a]",
            "ns[foo]-policy[allow-b]",
            "ns[foo]-policy[audit-au]",
            "ns[foo]-policy[allow-x]",
        ]
    );
    assert_eq!(engine.policy_names().len(), 5);
}

#[test]
fn every_deciding_rule_points_at_its_own_policy_name() {
    let engine = numbered_engine();
    let names: Vec<&str> = engine.policy_names().collect();
    let connection = StaticConnection::default();
    for (path, verdict, policy) in [
        ("/d", Verdict::Deny, "ns[foo]-policy[deny-d]"),
        ("/a", Verdict::Allow, "ns[foo]-policy[allow-a]"),
        ("/a2", Verdict::Allow, "ns[foo]-policy[allow-a]"),
        ("/b", Verdict::Allow, "ns[foo]-policy[allow-b]"),
    ] {
        let d = decide(&engine, "GET", path, "h", &[], &connection);
        assert_eq!(d.verdict, verdict, "{path}");
        let rule = d.matched.decided.expect("a deciding rule");
        assert_eq!(rule.policy(), policy, "{path}");
        assert_eq!(names[rule.policy_index() as usize], policy, "{path}");
        let audit = d.matched.audit;
        if path == "/a" {
            let audit = audit.expect("the AUDIT rule matched");
            assert_eq!(
                names[audit.policy_index() as usize],
                "ns[foo]-policy[audit-au]"
            );
        }
    }
}
