//! The decision procedure (authz-semantics §3.2, §3.3, §11): DENY before ALLOW, deny by
//! default only once an enforced ALLOW applies, degenerate policies, dry-run, AUDIT, and the
//! policy ids reported with a decision.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;
use meshguard_core::plugin::engine::DryRun;
use serde_json::json;

fn deny_admin() -> serde_json::Value {
    json!({"action": "DENY", "rules": [to(json!({"paths": ["/admin"]}))]})
}

fn allow_public() -> serde_json::Value {
    json!({"action": "ALLOW", "rules": [to(json!({"paths": ["/public"]}))]})
}

#[test]
fn no_policy_allows_everything() {
    let e = load_ok(&cfg(vec![]));
    let d = Req::get("/admin").decide(&e);
    assert!(d.is_allowed());
    assert_eq!(d.policy, None);
    assert_eq!(d.audit, None);
    assert_eq!(d.dry_run, DryRun::None);
    assert_eq!(d.summary(), "allow none");
}

#[test]
fn deny_policy_denies_matching_request_only() {
    let e = engine(deny_admin());
    let d = Req::get("/admin").decide(&e);
    assert!(!d.is_allowed());
    assert_eq!(d.policy, Some(id(NS, "p", 0).as_str()));
    // No ALLOW policy: everything the DENY does not match is allowed (§3.2).
    let d = Req::get("/other").decide(&e);
    assert!(d.is_allowed());
    assert_eq!(d.summary(), "allow none");
}

#[test]
fn allow_policy_denies_requests_it_does_not_match() {
    let e = engine(allow_public());
    let d = Req::get("/public").decide(&e);
    assert!(d.is_allowed());
    assert_eq!(d.summary(), format!("allow {}", id(NS, "p", 0)));
    let d = Req::get("/private").decide(&e);
    assert!(!d.is_allowed());
    assert_eq!(d.policy, None);
    assert_eq!(d.summary(), "deny none");
}

#[test]
fn deny_wins_over_allow() {
    let e = load_ok(&cfg(vec![
        ap(NS, "allow-all", json!({"action": "ALLOW", "rules": [{}]})),
        ap(NS, "deny-admin", deny_admin()),
    ]));
    let d = Req::get("/admin").decide(&e);
    assert!(!d.is_allowed());
    assert_eq!(d.summary(), format!("deny {}", id(NS, "deny-admin", 0)));
    let d = Req::get("/x").decide(&e);
    assert!(d.is_allowed());
    assert_eq!(d.summary(), format!("allow {}", id(NS, "allow-all", 0)));
}

#[test]
fn deny_wins_over_allow_matching_the_same_request() {
    // Order of resources must not matter (§2.5).
    let e = load_ok(&cfg(vec![
        ap(NS, "deny-admin", deny_admin()),
        ap(
            NS,
            "allow-admin",
            json!({"action": "ALLOW", "rules": [to(json!({"paths": ["/admin"]}))]}),
        ),
    ]));
    assert!(!Req::get("/admin").allowed(&e));
}

#[test]
fn deny_by_default_only_once_an_enforced_allow_applies() {
    // Only DENY and AUDIT policies: unmatched requests are allowed.
    let e = load_ok(&cfg(vec![
        ap(NS, "d", deny_admin()),
        ap(NS, "a", json!({"action": "AUDIT", "rules": [{}]})),
    ]));
    assert!(Req::get("/x").allowed(&e));
    // Adding an ALLOW switches on deny by default.
    let e = load_ok(&cfg(vec![
        ap(NS, "d", deny_admin()),
        ap(NS, "al", allow_public()),
    ]));
    assert!(!Req::get("/x").allowed(&e));
    assert!(Req::get("/public").allowed(&e));
}

#[test]
fn any_allow_policy_matching_allows() {
    let e = load_ok(&cfg(vec![
        ap(NS, "a1", allow_public()),
        ap(
            NS,
            "a2",
            json!({"action": "ALLOW", "rules": [to(json!({"paths": ["/other"]}))]}),
        ),
    ]));
    assert!(Req::get("/public").allowed(&e));
    let d = Req::get("/other").decide(&e);
    assert!(d.is_allowed());
    assert_eq!(d.policy, Some(id(NS, "a2", 0).as_str()));
    assert!(!Req::get("/neither").allowed(&e));
}

#[test]
fn action_defaults_to_allow() {
    // §1: `action` defaults to ALLOW (enum value 0).
    let e = engine(json!({"rules": [to(json!({"paths": ["/public"]}))]}));
    assert!(Req::get("/public").allowed(&e));
    assert!(!Req::get("/private").allowed(&e));
}

#[test]
fn allow_policy_without_rules_denies_everything() {
    // §3.3: `spec: {}` is an ALLOW policy that never matches.
    let e = engine(json!({}));
    let d = Req::get("/")
        .uri("spiffe://cluster.local/ns/foo/sa/bar")
        .decide(&e);
    assert!(!d.is_allowed());
    assert_eq!(d.summary(), "deny none");
    let e = engine(json!({"action": "ALLOW"}));
    assert!(!Req::get("/").allowed(&e));
}

#[test]
fn allow_policy_with_empty_rules_list_denies_everything() {
    // §3.3: `rules: []` is the same as no rules.
    let e = engine(json!({"action": "ALLOW", "rules": []}));
    assert!(!Req::get("/").allowed(&e));
}

#[test]
fn allow_policy_without_rules_does_not_override_another_allow() {
    let e = load_ok(&cfg(vec![
        ap(NS, "nothing", json!({})),
        ap(NS, "pub", allow_public()),
    ]));
    assert!(Req::get("/public").allowed(&e));
    assert!(!Req::get("/private").allowed(&e));
}

#[test]
fn allow_policy_with_empty_rule_allows_everything() {
    // §3.3 golden `allow-empty-rule`.
    let e = engine(json!({"action": "ALLOW", "rules": [{}]}));
    let d = Req::get("/anything").plaintext().decide(&e);
    assert!(d.is_allowed());
    assert_eq!(d.summary(), format!("allow {}", id(NS, "p", 0)));
    assert!(Req::new("DELETE", "/x", "other").allowed(&e));
}

#[test]
fn allow_all_rule_makes_other_allows_pointless_but_deny_still_applies() {
    let e = load_ok(&cfg(vec![
        ap(NS, "all", json!({"action": "ALLOW", "rules": [{}]})),
        ap(NS, "pub", allow_public()),
        ap(NS, "d", deny_admin()),
    ]));
    assert!(Req::get("/private").allowed(&e));
    assert!(!Req::get("/admin").allowed(&e));
}

#[test]
fn deny_policy_with_empty_rule_denies_everything() {
    // §3.3 golden `deny-empty-rule`.
    let e = load_ok(&cfg(vec![
        ap(NS, "all", json!({"action": "ALLOW", "rules": [{}]})),
        ap(NS, "deny-all", json!({"action": "DENY", "rules": [{}]})),
    ]));
    let d = Req::get("/").decide(&e);
    assert!(!d.is_allowed());
    assert_eq!(d.summary(), format!("deny {}", id(NS, "deny-all", 0)));
}

#[test]
fn deny_policy_without_rules_is_a_config_error() {
    // §3.3 / §18: "DENY needs rules".
    let err = spec_err(json!({"action": "DENY"}));
    assert_err_at(&err, "resources[0]");
    let err = spec_err(json!({"action": "DENY", "rules": []}));
    assert_err_at(&err, "resources[0]");
}

#[test]
fn only_dry_run_allow_policies_do_not_deny_by_default() {
    // §3.3 golden `dry-run-allow`, §11.
    let e = load_ok(&cfg(vec![ap_dry_run(NS, "p", "true", allow_public())]));
    let d = Req::get("/private").decide(&e);
    assert!(d.is_allowed());
    assert_eq!(d.policy, None);
    assert_eq!(d.dry_run, DryRun::WouldDenyNoAllowMatched);
    let d = Req::get("/public").decide(&e);
    assert!(d.is_allowed());
    assert_eq!(d.dry_run, DryRun::WouldAllow(Some(id(NS, "p", 0).as_str())));
}

#[test]
fn dry_run_allow_without_rules_does_not_deny() {
    let e = load_ok(&cfg(vec![ap_dry_run(NS, "p", "true", json!({}))]));
    let d = Req::get("/").decide(&e);
    assert!(d.is_allowed());
    assert_eq!(d.dry_run, DryRun::WouldDenyNoAllowMatched);
}

#[test]
fn dry_run_deny_matching_still_allows_and_reports_it() {
    let e = load_ok(&cfg(vec![ap_dry_run(NS, "d", "true", deny_admin())]));
    let d = Req::get("/admin").decide(&e);
    assert!(d.is_allowed());
    assert_eq!(d.summary(), "allow none");
    assert_eq!(d.dry_run, DryRun::WouldDeny(id(NS, "d", 0).as_str()));
    let d = Req::get("/x").decide(&e);
    assert!(d.is_allowed());
    assert!(!matches!(d.dry_run, DryRun::WouldDeny(_)));
}

#[test]
fn dry_run_policies_do_not_change_enforced_decisions() {
    let e = load_ok(&cfg(vec![
        ap(NS, "pub", allow_public()),
        ap_dry_run(
            NS,
            "dry-all",
            "true",
            json!({"action": "ALLOW", "rules": [{}]}),
        ),
        ap_dry_run(
            NS,
            "dry-deny",
            "true",
            json!({"action": "DENY", "rules": [to(json!({"paths": ["/public"]}))]}),
        ),
    ]));
    // The dry-run ALLOW of everything does not allow /private.
    let d = Req::get("/private").decide(&e);
    assert!(!d.is_allowed());
    assert_eq!(d.summary(), "deny none");
    // The dry-run DENY of /public does not deny it.
    let d = Req::get("/public").decide(&e);
    assert!(d.is_allowed());
    assert_eq!(d.summary(), format!("allow {}", id(NS, "pub", 0)));
    assert_eq!(d.dry_run, DryRun::WouldDeny(id(NS, "dry-deny", 0).as_str()));
}

#[test]
fn dry_run_annotation_accepts_go_parse_bool_true_forms() {
    // §11: Go strconv.ParseBool.
    for value in ["1", "t", "T", "TRUE", "true", "True"] {
        let e = load_ok(&cfg(vec![ap_dry_run(
            NS,
            "d",
            value,
            json!({"action": "DENY", "rules": [{}]}),
        )]));
        let d = Req::get("/").decide(&e);
        assert!(d.is_allowed(), "dry-run={value:?} must not enforce");
        assert_eq!(
            d.dry_run,
            DryRun::WouldDeny(id(NS, "d", 0).as_str()),
            "dry-run={value:?}"
        );
    }
}

#[test]
fn dry_run_annotation_false_forms_enforce_the_policy() {
    for value in ["0", "f", "F", "FALSE", "false", "False"] {
        let e = load_ok(&cfg(vec![ap_dry_run(
            NS,
            "d",
            value,
            json!({"action": "DENY", "rules": [{}]}),
        )]));
        let d = Req::get("/").decide(&e);
        assert!(!d.is_allowed(), "dry-run={value:?} must enforce");
        assert_eq!(d.summary(), format!("deny {}", id(NS, "d", 0)));
        assert_eq!(d.dry_run, DryRun::None, "dry-run={value:?}");
    }
}

#[test]
fn dry_run_annotation_that_is_not_a_go_bool_is_a_config_error() {
    // Documented deliberate difference: istiod logs and enforces, meshguard refuses to load.
    for value in ["yes", "no", "on", "tRuE", " true", "2", ""] {
        let err = load_err(&cfg(vec![ap_dry_run(
            NS,
            "d",
            value,
            json!({"action": "DENY", "rules": [{}]}),
        )]));
        assert_err_at(&err, "resources[0]");
        assert!(
            err.to_string().contains("istio.io/dry-run"),
            "error for {value:?} should name the annotation: {err}"
        );
    }
}

#[test]
fn other_annotations_are_ignored() {
    let p = json!({
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": "d", "namespace": NS,
                     "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}},
        "spec": {"action": "DENY", "rules": [{}]},
    });
    assert!(!Req::get("/").allowed(&load_ok(&cfg(vec![p]))));
}

#[test]
fn audit_never_changes_the_decision_and_reports_the_audit_rule() {
    let audit = json!({"action": "AUDIT", "rules": [to(json!({"paths": ["/x"]})),
        to(json!({"paths": ["/audited"]}))]});
    // AUDIT alone: everything allowed, the matched audit rule reported.
    let e = load_ok(&cfg(vec![ap(NS, "au", audit.clone())]));
    let d = Req::get("/audited").decide(&e);
    assert!(d.is_allowed());
    assert_eq!(d.audit, Some(id(NS, "au", 1).as_str()));
    assert_eq!(d.summary(), "allow none");
    let d = Req::get("/quiet").decide(&e);
    assert!(d.is_allowed());
    assert_eq!(d.audit, None);

    // With an ALLOW that does not match: denied, still audited.
    let e = load_ok(&cfg(vec![
        ap(NS, "au", audit.clone()),
        ap(NS, "pub", allow_public()),
    ]));
    let d = Req::get("/audited").decide(&e);
    assert!(!d.is_allowed());
    assert_eq!(d.audit, Some(id(NS, "au", 1).as_str()));

    // With a DENY that matches: denied, still audited.
    let e = load_ok(&cfg(vec![
        ap(NS, "au", audit),
        ap(
            NS,
            "d",
            json!({"action": "DENY", "rules": [to(json!({"paths": ["/audited"]}))]}),
        ),
    ]));
    let d = Req::get("/audited").decide(&e);
    assert!(!d.is_allowed());
    assert_eq!(d.policy, Some(id(NS, "d", 0).as_str()));
    assert_eq!(d.audit, Some(id(NS, "au", 1).as_str()));
}

#[test]
fn audit_with_empty_rule_audits_and_allows_everything() {
    // §3.3 golden `audit-full-rule`.
    let e = engine(json!({"action": "AUDIT", "rules": [{}]}));
    let d = Req::get("/anything").decide(&e);
    assert!(d.is_allowed());
    assert_eq!(d.audit, Some(id(NS, "p", 0).as_str()));
}

#[test]
fn policy_id_names_namespace_policy_and_rule_index() {
    let e = load_ok(&cfg(vec![ap(
        NS,
        "deny-admin",
        json!({"action": "DENY", "rules": [
            to(json!({"paths": ["/zero"]})),
            to(json!({"paths": ["/one"]})),
            to(json!({"paths": ["/two"]})),
        ]}),
    )]));
    let d = Req::get("/two").decide(&e);
    assert_eq!(d.policy, Some("ns[foo]-policy[deny-admin]-rule[2]"));
    assert_eq!(d.summary(), "deny ns[foo]-policy[deny-admin]-rule[2]");
    let d = Req::get("/zero").decide(&e);
    assert_eq!(d.summary(), "deny ns[foo]-policy[deny-admin]-rule[0]");
}

#[test]
fn policy_id_of_root_namespace_policy_uses_the_root_namespace() {
    let e = load_ok(&cfg(vec![ap(
        "istio-system",
        "global-deny",
        json!({"action": "DENY", "rules": [{}]}),
    )]));
    assert_eq!(
        Req::get("/").decide(&e).summary(),
        "deny ns[istio-system]-policy[global-deny]-rule[0]"
    );
}

#[test]
fn two_rules_of_one_policy_are_or() {
    let e = engine(json!({"action": "ALLOW", "rules": [
        to(json!({"paths": ["/a"]})),
        to(json!({"methods": ["POST"]})),
    ]}));
    assert!(Req::get("/a").allowed(&e));
    assert_eq!(
        Req::get("/b").method("POST").decide(&e).policy,
        Some(id(NS, "p", 1).as_str())
    );
    assert!(!Req::get("/b").allowed(&e));
}
