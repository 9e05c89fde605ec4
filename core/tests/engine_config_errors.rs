//! Configuration loading and validation (authz-semantics §1, §3.3, §6, §7.1, §18;
//! known-bypasses H): what loads, what is refused, and that every refusal names the field.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;
use meshguard_core::config_json::source::SliceSource;
use meshguard_core::plugin::plugin_config::{load, NodeInfo};
use serde_json::json;

const SOURCE: &str = "resources[0].spec.rules[0].from[0].source";
const OPERATION: &str = "resources[0].spec.rules[0].to[0].operation";

// ---------------------------------------------------------------------------------------
// unknown fields

#[test]
fn unknown_field_inside_a_source_names_its_path() {
    let err = rule_err(from(json!({"notPrincipal": ["x"]})));
    assert_eq!(
        err.path.to_string(),
        "resources[0].spec.rules[0].from[0].source.notPrincipal"
    );
}

#[test]
fn unknown_field_inside_an_operation_names_its_path() {
    let err = rule_err(to(json!({"method": ["GET"]})));
    assert_eq!(
        err.path.to_string(),
        "resources[0].spec.rules[0].to[0].operation.method"
    );
}

#[test]
fn unknown_field_in_spec_rule_and_condition_names_its_path() {
    let err = spec_err(json!({"rule": [{}]}));
    assert_eq!(err.path.to_string(), "resources[0].spec.rule");
    let err = rule_err(json!({"form": []}));
    assert_eq!(err.path.to_string(), "resources[0].spec.rules[0].form");
    let err = rule_err(json!({"when": [{"key": "source.ip", "value": ["1.1.1.1"]}]}));
    assert_eq!(
        err.path.to_string(),
        "resources[0].spec.rules[0].when[0].value"
    );
}

#[test]
fn invalid_utf8_in_a_string_is_refused_naming_its_field() {
    let text = serde_json::to_vec(&cfg(vec![ap(NS, "p", json!({"rules": [{}]}))])).unwrap();
    let at = text.windows(3).position(|w| w == b"\"p\"").unwrap() + 1;
    let mut bad = text.clone();
    bad[at] = 0xff;
    let err = match load(&bad, &NodeInfo::default()) {
        Ok(_) => panic!("a configuration with invalid UTF-8 loaded"),
        Err(e) => e,
    };
    assert_eq!(err.path.to_string(), "resources[0].metadata.name");
    assert!(err.reason.contains("not valid JSON"), "{}", err.reason);
    assert!(err.reason.contains("UTF-8"), "{}", err.reason);
}

#[test]
fn error_paths_count_the_resource_and_rule_indexes() {
    let err = load_err(&cfg(vec![
        ap(NS, "ok", json!({"rules": [{}]})),
        ap(
            NS,
            "bad",
            json!({"rules": [{}, {"to": [{"operation": {"pathz": ["/"]}}]}]}),
        ),
    ]));
    assert_eq!(
        err.path.to_string(),
        "resources[1].spec.rules[1].to[0].operation.pathz"
    );
}

#[test]
fn unknown_top_level_config_field_is_an_error() {
    let err = load_err(&json!({"resourcez": []}));
    assert!(err.to_string().contains("resourcez"), "{err}");
    let err = load_err(&json!({"workload": {"namespace": "foo", "lables": {}}}));
    assert!(err.to_string().contains("lables"), "{err}");
}

#[test]
fn unknown_resource_kind_is_an_error() {
    let mut other = ap(NS, "p", json!({}));
    other["kind"] = json!("VirtualService");
    other["apiVersion"] = json!("networking.istio.io/v1");
    assert_err_at(&load_err(&cfg(vec![other])), "resources[0]");
    // A known kind under an API group it does not belong to.
    let mut other = ap(NS, "p", json!({}));
    other["kind"] = json!("ServiceRole");
    other["apiVersion"] = json!("security.istio.io/v1");
    assert_err_at(&load_err(&cfg(vec![other])), "resources[0]");
    let mut other = ap(NS, "p", json!({}));
    other["apiVersion"] = json!("security.istio.io/v2");
    assert_err_at(&load_err(&cfg(vec![other])), "resources[0]");
}

#[test]
fn v1beta1_authorization_policy_is_accepted() {
    let mut p = ap(NS, "p", json!({"action": "DENY", "rules": [{}]}));
    p["apiVersion"] = json!("security.istio.io/v1beta1");
    assert!(!Req::get("/").allowed(&load_ok(&cfg(vec![p]))));
}

#[test]
fn server_set_metadata_and_status_are_accepted() {
    let p = json!({
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {
            "name": "p", "namespace": NS,
            "uid": "3f1c0b6e-0000-4000-8000-000000000000",
            "resourceVersion": "12345",
            "generation": 2,
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "labels": {"team": "a"},
            "managedFields": [{"manager": "kubectl", "operation": "Apply"}],
        },
        "spec": {"action": "DENY", "rules": [{}]},
        "status": {"validationMessages": [], "observedGeneration": "2"},
    });
    assert!(!Req::get("/").allowed(&load_ok(&cfg(vec![p]))));
}

#[test]
fn v1_list_items_are_flattened() {
    let list = json!({
        "apiVersion": "v1",
        "kind": "List",
        "metadata": {"resourceVersion": ""},
        "items": [
            ap(NS, "allow-public", json!({"rules": [to(json!({"paths": ["/public"]}))]})),
            ap(NS, "deny-admin", json!({"action": "DENY",
                "rules": [to(json!({"paths": ["/public/admin*"]}))]})),
        ],
    });
    let e = load_ok(&cfg(vec![list]));
    assert!(Req::get("/public").allowed(&e));
    assert!(!Req::get("/private").allowed(&e));
    let d = Req::get("/public/admin").decide(&e);
    assert!(!d.is_allowed());
    assert_eq!(d.policy, Some(id(NS, "deny-admin", 0).as_str()));
}

#[test]
fn errors_inside_a_list_name_the_item() {
    let list = json!({
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            ap(NS, "ok", json!({})),
            ap(NS, "bad", json!({"rules": [{"from": [{"source": {"notPrincipal": ["x"]}}]}]})),
        ],
    });
    let err = load_err(&cfg(vec![list]));
    assert_err_at(&err, "resources[0].items[1]");
    assert!(
        err.path.to_string().ends_with("source.notPrincipal"),
        "{}",
        err.path
    );
}

#[test]
fn empty_configuration_loads_with_no_policies() {
    for bytes in [&b""[..], b"  \n", b"{}"] {
        let (e, report) = load(bytes, &NodeInfo::default()).unwrap();
        assert_eq!(report.applied_policies, 0);
        assert!(Req::get("/").allowed(&e));
    }
    let e = load_ok(&json!({"resources": []}));
    assert!(Req::get("/").allowed(&e));
}

#[test]
fn invalid_json_is_an_error() {
    assert!(load(b"{\"resources\": [", &NodeInfo::default()).is_err());
    assert!(load(b"resources: []", &NodeInfo::default()).is_err());
}

// ---------------------------------------------------------------------------------------
// actions and providers

#[test]
fn custom_action_is_a_config_error() {
    let err =
        spec_err(json!({"action": "CUSTOM", "provider": {"name": "ext-authz"}, "rules": [{}]}));
    assert_err_at(&err, "resources[0].spec");
}

#[test]
fn provider_without_custom_is_a_config_error() {
    // §18: `provider` only with CUSTOM.
    let err =
        spec_err(json!({"action": "ALLOW", "provider": {"name": "ext-authz"}, "rules": [{}]}));
    assert_err_at(&err, "resources[0].spec");
    let err = spec_err(json!({"provider": {"name": "ext-authz"}, "rules": [{}]}));
    assert_err_at(&err, "resources[0].spec");
    let err = spec_err(json!({"action": "DENY", "provider": {"name": "ext-authz"}, "rules": [{}]}));
    assert_err_at(&err, "resources[0].spec");
}

#[test]
fn unknown_action_is_a_config_error() {
    for action in ["REJECT", "allow", ""] {
        let err = spec_err(json!({"action": action, "rules": [{}]}));
        assert_err_at(&err, "resources[0].spec.action");
    }
}

// ---------------------------------------------------------------------------------------
// rule structure (§18)

#[test]
fn explicitly_empty_from_or_to_is_a_config_error() {
    let err = rule_err(json!({"from": []}));
    assert_err_at(&err, "resources[0].spec.rules[0].from");
    let err = rule_err(json!({"to": []}));
    assert_err_at(&err, "resources[0].spec.rules[0].to");
}

#[test]
fn source_or_operation_without_fields_is_a_config_error() {
    assert_err_at(
        &rule_err(json!({"from": [{"source": {}}]})),
        "resources[0].spec.rules[0].from[0]",
    );
    assert_err_at(
        &rule_err(json!({"from": [{}]})),
        "resources[0].spec.rules[0].from[0]",
    );
    assert_err_at(
        &rule_err(json!({"to": [{"operation": {}}]})),
        "resources[0].spec.rules[0].to[0]",
    );
    assert_err_at(
        &rule_err(json!({"to": [{}]})),
        "resources[0].spec.rules[0].to[0]",
    );
    // A field given as an empty list counts as not set.
    assert_err_at(
        &rule_err(from(json!({"principals": []}))),
        "resources[0].spec.rules[0].from[0]",
    );
}

#[test]
fn null_rule_is_a_config_error() {
    let err = spec_err(json!({"action": "ALLOW", "rules": [null]}));
    assert_err_at(&err, "resources[0].spec.rules[0]");
    let err = spec_err(json!({"action": "DENY", "rules": [{}, null]}));
    assert_err_at(&err, "resources[0].spec.rules[1]");
}

// ---------------------------------------------------------------------------------------
// values (§18)

#[test]
fn empty_strings_are_config_errors() {
    for field in [
        "principals",
        "notPrincipals",
        "namespaces",
        "notNamespaces",
        "serviceAccounts",
        "notServiceAccounts",
        "trustDomains",
        "notTrustDomains",
        "ipBlocks",
        "notIpBlocks",
        "remoteIpBlocks",
        "notRemoteIpBlocks",
    ] {
        let err = rule_err(from(json!({field: [""]})));
        assert_err_at(&err, &format!("{SOURCE}.{field}"));
    }
    for field in [
        "hosts",
        "notHosts",
        "ports",
        "notPorts",
        "methods",
        "notMethods",
        "paths",
        "notPaths",
    ] {
        let err = rule_err(to(json!({field: ["x", ""]})));
        assert_err_at(&err, &format!("{OPERATION}.{field}"));
    }
    let err = rule_err(json!({"when": [{"key": "request.headers[x]", "notValues": [""]}]}));
    assert_err_at(&err, "resources[0].spec.rules[0].when[0]");
}

#[test]
fn bad_cidrs_are_config_errors() {
    for field in [
        "ipBlocks",
        "notIpBlocks",
        "remoteIpBlocks",
        "notRemoteIpBlocks",
    ] {
        for value in [
            "10.0.0.0/33",
            "300.1.1.1",
            "10.0.0",
            "not-an-ip",
            "10.0.0.0/",
            "2001:db8::/129",
            "10.0.0.0/8/8",
        ] {
            let err = rule_err(from(json!({field: [value]})));
            assert_err_at(&err, &format!("{SOURCE}.{field}"));
        }
    }
}

#[test]
fn bad_ports_are_config_errors() {
    for field in ["ports", "notPorts"] {
        for value in ["-1", "65536", "http", "80-90", "*", "8080 ", "1e3"] {
            let err = rule_err(to(json!({field: [value]})));
            assert_err_at(&err, &format!("{OPERATION}.{field}"));
        }
    }
}

#[test]
fn invalid_path_templates_are_config_errors() {
    // §7.1 / §18: `{**}` last, operators whole segments, no stray braces or `*` in templates.
    for value in [
        "/foo/{**}/{*}",
        "/foo/{**}/bar/{**}",
        "/foo/{*}.txt",
        "/foo/{*}/bar*",
        "/foo/{*}/a{b",
    ] {
        for field in ["paths", "notPaths"] {
            let err = rule_err(to(json!({field: [value]})));
            assert_err_at(&err, &format!("{OPERATION}.{field}"));
        }
    }
}

#[test]
fn braces_outside_template_operators_are_config_errors() {
    // §7.1 / §18 "no `{`,`}` ... outside operators". istiod's CheckValidPathTemplate runs on
    // every path and rejects a segment containing `{` or `}` that is not exactly `{*}`/`{**}`,
    // even when the path has no operator at all. Accepting it compiles `/users/{id}` to a
    // literal exact match, so a DENY written as a template silently never matches.
    for value in ["/foo/{x}", "/users/{id}/admin", "/a/{", "/a}/b", "/{**"] {
        for field in ["paths", "notPaths"] {
            let err = rule_err(to(json!({field: [value]})));
            assert_err_at(&err, &format!("{OPERATION}.{field}"));
        }
    }
}

#[test]
fn valid_path_templates_load() {
    let e = allow_rule(to(
        json!({"paths": ["/store/{**}/cart", "/{*}", "/a/{**}", "/v1/{*}/items/{*}"]}),
    ));
    assert!(Req::get("/x").allowed(&e));
    assert!(Req::get("/v1/shop/items/9").allowed(&e));
}

#[test]
fn service_accounts_with_wildcards_or_bad_shape_are_config_errors() {
    for field in ["serviceAccounts", "notServiceAccounts"] {
        for value in ["*", "foo/*", "b*r", "*/bar", "a/b/c", "/bar", "foo/"] {
            let err = rule_err(from(json!({field: [value]})));
            assert_err_at(&err, &format!("{SOURCE}.{field}"));
        }
    }
}

#[test]
fn service_accounts_limits_are_enforced() {
    // §6.3: max 16 values, max 320 characters.
    let seventeen: Vec<String> = (0..17).map(|i| format!("sa{i}")).collect();
    assert_err_at(
        &rule_err(from(json!({"serviceAccounts": seventeen}))),
        SOURCE,
    );
    let sixteen: Vec<String> = (0..16).map(|i| format!("sa{i}")).collect();
    allow_rule(from(json!({"serviceAccounts": sixteen})));
    let long = "a".repeat(321);
    assert_err_at(&rule_err(from(json!({"serviceAccounts": [long]}))), SOURCE);
}

#[test]
fn service_accounts_combined_with_principals_or_namespaces_is_a_config_error() {
    for other in ["principals", "notPrincipals", "namespaces", "notNamespaces"] {
        for sa in ["serviceAccounts", "notServiceAccounts"] {
            let err = rule_err(from(json!({sa: ["bar"], other: ["x"]})));
            assert_err_at(&err, SOURCE);
        }
    }
    // In different sources of one rule they are fine.
    allow_rule(json!({"from": [
        {"source": {"serviceAccounts": ["bar"]}},
        {"source": {"principals": ["cluster.local/ns/foo/sa/bar"]}},
    ]}));
}

#[test]
fn trust_domains_with_slash_or_inner_wildcard_are_config_errors() {
    for field in ["trustDomains", "notTrustDomains"] {
        for value in ["td/ns", "a*b", "*a*", "**", "td/"] {
            let err = rule_err(from(json!({field: [value]})));
            assert_err_at(&err, &format!("{SOURCE}.{field}"));
        }
    }
    allow_rule(from(
        json!({"trustDomains": ["*", "td", "td*", "*.example.org"]}),
    ));
}

#[test]
fn selector_and_target_ref_shapes_are_checked() {
    let err = spec_err(json!({"selector": {"matchLabels": {"app": "b"}, "matchExpressions": []}}));
    assert_err_at(&err, "resources[0].spec.selector");
}

#[test]
fn more_rules_than_the_limit_is_a_config_error() {
    let rules: Vec<serde_json::Value> = (0..=meshguard_core::plugin::plugin_config::MAX_RULES)
        .map(|i| serde_json::json!({"to": [{"operation": {"paths": [format!("/p{i}")]}}]}))
        .collect();
    let cfg = serde_json::json!({"resources": [{"apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": "huge", "namespace": "default"}, "spec": {"rules": rules}}]});
    let err = meshguard_core::plugin::plugin_config::load(
        cfg.to_string().as_bytes(),
        &meshguard_core::plugin::plugin_config::NodeInfo::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("at most 100000"), "{err}");
}

// ---------------------------------------------------------------------------------------
// the configuration reader's refusals, through `load`

fn load_text_err(text: &str) -> String {
    match load(text.as_bytes(), &NodeInfo::default()) {
        Ok(_) => panic!("loaded: {text}"),
        Err(e) => e.to_string(),
    }
}

const POLICY_HEAD: &str = r#"{"resources": [{"apiVersion": "security.istio.io/v1",
    "kind": "AuthorizationPolicy", "metadata": {"name": "p", "namespace": "ns1"}, "spec": "#;

#[test]
fn a_field_given_twice_in_a_policy_is_refused_naming_it() {
    let text =
        format!(r#"{POLICY_HEAD}{{"action": "DENY", "action": "ALLOW", "rules": [{{}}]}}}}]}}"#);
    assert_eq!(
        load_text_err(&text),
        "resources[0].spec.action: duplicate field `action`"
    );
    let text = r#"{"decisionHeader": true, "decisionHeader": false}"#;
    assert_eq!(
        load_text_err(text),
        "decisionHeader: duplicate field `decisionHeader`"
    );
}

#[test]
fn a_repeated_annotation_or_label_keeps_the_last_value() {
    let text = r#"{"workload": {"namespace": "ns1", "labels": {"app": "x", "app": "b"}},
        "resources": [{"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
        "metadata": {"name": "p", "namespace": "ns1"},
        "spec": {"selector": {"matchLabels": {"app": "a", "app": "b"}}, "rules": []}}]}"#;
    let (_, report) = load(text.as_bytes(), &NodeInfo::default()).unwrap();
    assert_eq!(report.applied_policies, 1);
}

#[test]
fn a_wrong_type_deep_in_a_policy_names_the_value() {
    let text = format!(
        r#"{POLICY_HEAD}{{"rules": [{{"to": [{{"operation": {{"paths": ["/a", 7]}}}}]}}]}}}}]}}"#
    );
    assert_eq!(
        load_text_err(&text),
        "resources[0].spec.rules[0].to[0].operation.paths[1]: invalid type: integer `7`, \
         expected a string"
    );
    let text = format!(r#"{POLICY_HEAD}{{"action": 1}}}}]}}"#);
    assert_eq!(
        load_text_err(&text),
        "resources[0].spec.action: invalid type: integer `1`, expected one of `ALLOW`, `DENY`, \
         `AUDIT`, `CUSTOM`"
    );
}

#[test]
fn an_unknown_field_in_server_set_metadata_is_ignored_but_one_in_the_object_is_not() {
    let text = r#"{"resources": [{"apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": "p", "generation": 1e999999, "managedFields": [{"a": "\ud800"}]},
        "spec": {}, "status": {"x": 1e999999}}]}"#;
    assert!(load(text.as_bytes(), &NodeInfo::default()).is_ok());
    let text = r#"{"resources": [{"apiVersion": "v1", "kind": "List", "itemz": []}]}"#;
    assert!(load_text_err(text).starts_with("resources[0].itemz: unknown field `itemz`"));
}

// ---------------------------------------------------------------------------------------
// resources are compiled one at a time; which error is reported does not change

/// The error of loading `config` read three bytes at a time (every span crosses chunks).
fn chunked_err(config: &serde_json::Value) -> String {
    let text = config.to_string();
    let mut source = SliceSource::with_max_read(text.as_bytes(), 3);
    match meshguard_core::plugin::plugin_config::load_from(&mut source, &NodeInfo::default()) {
        Ok(_) => panic!("loaded: {config}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn an_unreadable_resource_is_reported_before_an_earlier_one_that_fails_to_compile() {
    let config = cfg(vec![
        ap(
            "default",
            "bad-spec",
            json!({"action": "ALLOW", "rules": [{"to": [{"operation":
            {"method": ["GET"]}}]}]}),
        ),
        json!({"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy"}),
    ]);
    let err = load_err(&config);
    assert_eq!(err.to_string(), "resources[1]: missing field `metadata`");
    assert_eq!(chunked_err(&config), err.to_string());
}

#[test]
fn the_first_resource_that_fails_to_compile_is_reported_when_all_can_be_read() {
    let config = cfg(vec![
        ap("default", "fine", json!({"action": "ALLOW"})),
        ap(
            "default",
            "first",
            json!({"action": "ALLOW", "rules": [{"to": [{"operation":
            {"method": ["GET"]}}]}]}),
        ),
        ap("default", "second", json!({"action": "NOPE"})),
    ]);
    let err = load_err(&config);
    assert_eq!(
        err.path.to_string(),
        "resources[1].spec.rules[0].to[0].operation.method"
    );
    assert_eq!(chunked_err(&config), err.to_string());
}

#[test]
fn a_configuration_read_a_few_bytes_at_a_time_loads_what_it_loads_read_at_once() {
    let config = cfg(vec![
        ap(
            NS,
            "a",
            json!({"action": "ALLOW", "rules": [{"to": [{"operation":
            {"paths": ["/a"]}}]}, {"to": [{"operation": {"paths": ["/b"]}}]}]}),
        ),
        json!({"apiVersion": "v1", "kind": "List", "items": [
            ap(NS, "c", json!({"action": "DENY", "rules": [{}]}))]}),
    ]);
    let node = NodeInfo::default();
    let text = config.to_string();
    let (whole, report) = load(text.as_bytes(), &node).unwrap();
    let mut source = SliceSource::with_max_read(text.as_bytes(), 5);
    let (chunked, chunked_report) =
        meshguard_core::plugin::plugin_config::load_from(&mut source, &node).unwrap();
    assert_eq!(whole.rule_count(), 3);
    assert_eq!(chunked.rule_count(), whole.rule_count());
    assert_eq!(
        chunked.policy_names().collect::<Vec<_>>(),
        whole.policy_names().collect::<Vec<_>>()
    );
    assert_eq!(
        (chunked_report.resources, chunked_report.applied_policies),
        (report.resources, report.applied_policies)
    );
}
