//! Which policies apply to the workload (authz-semantics §2): root namespace, own namespace,
//! selector subset, targetRef(s), and where the workload identity comes from.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;
use meshguard_core::config_json::string_map::StringMap;
use meshguard_core::plugin::plugin_config::NodeInfo;
use serde_json::json;

/// An ALLOW policy with no rules: if it applies, everything is denied.
fn allow_nothing() -> serde_json::Value {
    json!({})
}

fn applies(resource: serde_json::Value) -> bool {
    !Req::get("/").allowed(&load_ok(&cfg(vec![resource])))
}

fn with_selector(labels: serde_json::Value) -> serde_json::Value {
    json!({"selector": {"matchLabels": labels}})
}

#[test]
fn policy_in_workload_namespace_applies() {
    assert!(applies(ap(NS, "p", allow_nothing())));
}

#[test]
fn policy_in_another_namespace_does_not_apply() {
    assert!(!applies(ap("bar", "p", allow_nothing())));
    assert!(!applies(ap(
        "bar",
        "p",
        json!({"action": "DENY", "rules": [{}]})
    )));
}

#[test]
fn root_namespace_policy_without_selector_applies_to_all_namespaces() {
    assert!(applies(ap("istio-system", "p", allow_nothing())));
    // And to a workload in any other namespace.
    let config = json!({"workload": {"namespace": "elsewhere"},
                        "resources": [ap("istio-system", "p", allow_nothing())]});
    assert!(!Req::get("/").allowed(&load_ok(&config)));
}

#[test]
fn root_namespace_policy_with_selector_applies_to_matching_workloads_in_all_namespaces() {
    assert!(applies(ap(
        "istio-system",
        "p",
        with_selector(json!({"app": "b"}))
    )));
    assert!(!applies(ap(
        "istio-system",
        "p",
        with_selector(json!({"app": "other"}))
    )));
}

#[test]
fn configured_root_namespace_replaces_istio_system() {
    let config = |ns: &str| {
        json!({"workload": {"namespace": NS}, "rootNamespace": "mesh-root",
               "resources": [ap(ns, "p", allow_nothing())]})
    };
    assert!(!Req::get("/").allowed(&load_ok(&config("mesh-root"))));
    // istio-system is now an ordinary namespace.
    assert!(Req::get("/").allowed(&load_ok(&config("istio-system"))));
}

#[test]
fn selector_that_is_a_subset_of_workload_labels_applies() {
    assert!(applies(ap(NS, "p", with_selector(json!({"app": "b"})))));
    assert!(applies(ap(
        NS,
        "p",
        with_selector(json!({"app": "b", "version": "v1"}))
    )));
}

#[test]
fn selector_with_a_label_the_workload_lacks_does_not_apply() {
    assert!(!applies(ap(
        NS,
        "p",
        with_selector(json!({"app": "b", "tier": "db"}))
    )));
}

#[test]
fn selector_with_a_different_value_does_not_apply() {
    assert!(!applies(ap(NS, "p", with_selector(json!({"app": "B"})))));
    assert!(!applies(ap(
        NS,
        "p",
        with_selector(json!({"version": "v2"}))
    )));
}

#[test]
fn empty_selector_selects_every_workload_in_scope() {
    // §2.2: an empty matchLabels is a subset of any label set.
    assert!(applies(ap(NS, "p", with_selector(json!({})))));
    assert!(applies(ap(NS, "p", json!({"selector": {}}))));
}

#[test]
fn target_ref_policy_never_applies_to_a_sidecar() {
    let target = json!({"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "gw"});
    assert!(!applies(ap(NS, "p", json!({"targetRef": target}))));
    assert!(!applies(ap(NS, "p", json!({"targetRefs": [target]}))));
    assert!(!applies(ap(
        "istio-system",
        "p",
        json!({"action": "DENY", "targetRefs": [target], "rules": [{}]})
    )));
}

#[test]
fn selector_together_with_target_refs_is_a_config_error() {
    // §2 validation: at most one of selector / targetRef / targetRefs.
    let target = json!({"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "gw"});
    let err = spec_err(json!({"selector": {"matchLabels": {"app": "b"}}, "targetRefs": [target]}));
    assert_err_at(&err, "resources[0]");
    let err = spec_err(json!({"selector": {"matchLabels": {"app": "b"}}, "targetRef": target}));
    assert_err_at(&err, "resources[0]");
    let err = spec_err(json!({"targetRef": target, "targetRefs": [target]}));
    assert_err_at(&err, "resources[0]");
}

#[test]
fn missing_metadata_namespace_means_the_workload_namespace() {
    let p = json!({
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": "p"},
        "spec": {"action": "DENY", "rules": [{}]},
    });
    let e = load_ok(&cfg(vec![p]));
    let d = Req::get("/").decide(&e);
    assert!(!d.is_allowed());
    assert_eq!(d.summary(), "deny ns[foo]-policy[p]-rule[0]");
}

#[test]
fn missing_metadata_namespace_gives_service_accounts_the_workload_namespace() {
    let p = json!({
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": "p"},
        "spec": {"action": "DENY", "rules": [from(json!({"serviceAccounts": ["bar"]}))]},
    });
    let e = load_ok(&cfg(vec![p]));
    assert!(!Req::get("/")
        .uri("spiffe://cluster.local/ns/foo/sa/bar")
        .allowed(&e));
    assert!(Req::get("/")
        .uri("spiffe://cluster.local/ns/other/sa/bar")
        .allowed(&e));
}

fn node(namespace: &str, labels: &[(&str, &str)]) -> NodeInfo {
    NodeInfo {
        namespace: Some(namespace.to_string()),
        labels: Some(
            labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<StringMap>(),
        ),
    }
}

#[test]
fn without_workload_the_node_metadata_namespace_and_labels_are_used() {
    let n = node("bar", &[("app", "x")]);
    let denies = |resource: serde_json::Value| {
        let (e, _) = load_with(&json!({"resources": [resource]}), &n);
        !Req::get("/").allowed(&e)
    };
    assert!(denies(ap("bar", "p", with_selector(json!({"app": "x"})))));
    assert!(!denies(ap("bar", "p", with_selector(json!({"app": "y"})))));
    assert!(!denies(ap("foo", "p", allow_nothing())));
    assert!(!denies(ap("default", "p", allow_nothing())));
    assert!(denies(ap("istio-system", "p", allow_nothing())));
}

#[test]
fn workload_in_config_takes_precedence_over_node_metadata() {
    let n = node("bar", &[("app", "x")]);
    let (e, _) = load_with(&cfg(vec![ap("bar", "p", allow_nothing())]), &n);
    assert!(Req::get("/").allowed(&e));
    let (e, _) = load_with(&cfg(vec![ap(NS, "p", allow_nothing())]), &n);
    assert!(!Req::get("/").allowed(&e));
}

#[test]
fn without_workload_or_node_metadata_the_workload_is_default_without_labels() {
    let denies = |resource: serde_json::Value| {
        let (e, _) = load_with(&json!({"resources": [resource]}), &NodeInfo::default());
        !Req::get("/").allowed(&e)
    };
    assert!(denies(ap("default", "p", allow_nothing())));
    assert!(denies(ap("default", "p", with_selector(json!({})))));
    assert!(!denies(ap(
        "default",
        "p",
        with_selector(json!({"app": "b"}))
    )));
    assert!(!denies(ap(NS, "p", allow_nothing())));
}

#[test]
fn node_metadata_without_labels_means_no_labels() {
    let n = NodeInfo {
        namespace: Some("bar".to_string()),
        labels: None,
    };
    let (e, _) = load_with(
        &json!({"resources": [ap("bar", "p", with_selector(json!({"app": "x"})))]}),
        &n,
    );
    assert!(Req::get("/").allowed(&e));
    let (e, _) = load_with(&json!({"resources": [ap("bar", "p", allow_nothing())]}), &n);
    assert!(!Req::get("/").allowed(&e));
}

#[test]
fn load_report_counts_only_applied_policies() {
    let (_, report) = load_with(
        &cfg(vec![
            ap(NS, "mine", allow_nothing()),
            ap("bar", "theirs", allow_nothing()),
            ap("istio-system", "mesh", allow_nothing()),
            ap(NS, "other-app", with_selector(json!({"app": "c"}))),
        ]),
        &NodeInfo::default(),
    );
    assert_eq!(report.resources, 4);
    assert_eq!(report.applied_policies, 2);
}

#[test]
fn policies_that_do_not_apply_are_still_validated() {
    // A broken policy in another namespace is still a configuration error: the loader
    // rejects unparsable config rather than skipping it (§3.4 recommendation).
    let err = load_err(&cfg(vec![ap("bar", "p", json!({"action": "CUSTOM"}))]));
    assert_err_at(&err, "resources[0]");
}
