//! PeerAuthentication and legacy v1alpha1 RBAC through the public loader and engine.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use meshguard_core::plugin::engine::{Engine, Reason, Verdict};
use meshguard_core::plugin::plugin_config::{load, NodeInfo};
use meshguard_core::request::peer::Peer;
use meshguard_core::request::request_view::{Headers, StaticConnection};
use serde_json::{json, Value};

fn engine(workload: Value, resources: Value) -> Engine {
    let cfg = json!({"workload": workload, "resources": resources});
    load(cfg.to_string().as_bytes(), &NodeInfo::default())
        .unwrap()
        .0
}

fn load_error(workload: Value, resources: Value) -> String {
    let cfg = json!({"workload": workload, "resources": resources});
    load(cfg.to_string().as_bytes(), &NodeInfo::default())
        .unwrap_err()
        .to_string()
}

fn peer(sa: &str) -> Option<Peer> {
    Some(Peer::new(
        Some(format!("spiffe://cluster.local/ns/default/sa/{sa}").into_bytes()),
        None,
        Some(b"CN=x".to_vec()),
    ))
}

fn decide(
    e: &Engine,
    method: &str,
    path: &str,
    extra: &[(&str, &str)],
    peer: Option<Peer>,
    port: u16,
) -> (Verdict, Reason) {
    let mut headers = vec![
        (":method".to_string(), method.as_bytes().to_vec()),
        (":path".to_string(), path.as_bytes().to_vec()),
        (":authority".to_string(), b"frontend".to_vec()),
    ];
    headers.extend(
        extra
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec())),
    );
    let conn = StaticConnection {
        peer,
        destination_port: Some(port),
        ..StaticConnection::default()
    };
    let d = e.decide(Headers::new(&headers), &conn);
    (d.verdict, d.reason)
}

fn pa(name: &str, ns: &str, spec: Value) -> Value {
    json!({"apiVersion": "security.istio.io/v1beta1", "kind": "PeerAuthentication",
           "metadata": {"name": name, "namespace": ns}, "spec": spec})
}

fn frontend() -> Value {
    json!({"namespace": "default", "labels": {"app": "frontend"}})
}

#[test]
fn strict_namespace_policy_denies_plaintext_with_mtls_reason() {
    let e = engine(
        frontend(),
        json!([pa(
            "default",
            "default",
            json!({"mtls": {"mode": "STRICT"}})
        )]),
    );
    assert_eq!(
        decide(&e, "GET", "/", &[], None, 8080),
        (Verdict::Deny, Reason::MtlsRequired)
    );
    assert_eq!(
        decide(&e, "GET", "/", &[], peer("productcatalogservice"), 8080).0,
        Verdict::Allow
    );
}

#[test]
fn permissive_allows_plaintext_and_mesh_default_is_permissive() {
    let e = engine(
        frontend(),
        json!([pa(
            "default",
            "default",
            json!({"mtls": {"mode": "PERMISSIVE"}})
        )]),
    );
    assert_eq!(decide(&e, "GET", "/", &[], None, 8080).0, Verdict::Allow);
    let e = engine(frontend(), json!([]));
    assert_eq!(decide(&e, "GET", "/", &[], None, 8080).0, Verdict::Allow);
}

#[test]
fn mesh_strict_is_overridden_by_workload_port_level_permissive() {
    let e = engine(
        frontend(),
        json!([
            pa("mesh", "istio-system", json!({"mtls": {"mode": "STRICT"}})),
            pa(
                "frontend",
                "default",
                json!({"selector": {"matchLabels": {"app": "frontend"}},
                "portLevelMtls": {"8081": {"mode": "PERMISSIVE"}}})
            )
        ]),
    );
    assert_eq!(
        decide(&e, "GET", "/", &[], None, 8080).1,
        Reason::MtlsRequired
    );
    assert_eq!(decide(&e, "GET", "/", &[], None, 8081).0, Verdict::Allow);
}

#[test]
fn port_level_mtls_without_selector_is_a_config_error() {
    let err = load_error(
        frontend(),
        json!([pa(
            "x",
            "default",
            json!({"portLevelMtls": {"80": {"mode": "STRICT"}}})
        )]),
    );
    assert!(err.contains("portLevelMtls"), "{err}");
}

#[test]
fn disable_mode_ignores_the_peer_identity() {
    let policy = json!({"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
        "metadata": {"name": "only-pc", "namespace": "default"},
        "spec": {"rules": [{"from": [{"source": {
            "principals": ["cluster.local/ns/default/sa/productcatalogservice"]}}]}]}});
    let e = engine(frontend(), json!([policy.clone()]));
    assert_eq!(
        decide(&e, "GET", "/", &[], peer("productcatalogservice"), 80).0,
        Verdict::Allow
    );
    let e = engine(
        frontend(),
        json!([
            policy,
            pa("d", "default", json!({"mtls": {"mode": "DISABLE"}}))
        ]),
    );
    assert_eq!(
        decide(&e, "GET", "/", &[], peer("productcatalogservice"), 80).0,
        Verdict::Deny
    );
}

fn rbac(kind: &str, name: &str, spec: Value) -> Value {
    json!({"apiVersion": "rbac.istio.io/v1alpha1", "kind": kind,
           "metadata": {"name": name, "namespace": "default"}, "spec": spec})
}

/// Seed 003: `enable-authz.yaml` + `rbac-frontend.yaml`.
fn hipstershop_rbac() -> Value {
    json!([
        rbac(
            "ClusterRbacConfig",
            "default",
            json!({"mode": "ON_WITH_INCLUSION",
            "inclusion": {"services": ["frontend.default.svc.cluster.local"]}})
        ),
        rbac(
            "ServiceRole",
            "frontend-viewer",
            json!({"rules": [{"services": ["frontend.default.svc.cluster.local"],
            "methods": ["GET", "HEAD"]}]})
        ),
        rbac(
            "ServiceRoleBinding",
            "bind-frontend-viewer",
            json!({"subjects": [{"properties": {"request.headers[hello]": "world"}}],
            "roleRef": {"kind": "ServiceRole", "name": "frontend-viewer"}})
        ),
    ])
}

#[test]
fn seed_003_rbac_requires_the_hello_world_header() {
    let e = engine(frontend(), hipstershop_rbac());
    assert_eq!(
        decide(&e, "GET", "/", &[], peer("productcatalogservice"), 80).0,
        Verdict::Deny
    );
    assert_eq!(
        decide(
            &e,
            "GET",
            "/",
            &[("hello", "world")],
            peer("productcatalogservice"),
            80
        )
        .0,
        Verdict::Allow
    );
    assert_eq!(
        decide(&e, "HEAD", "/", &[("hello", "world")], None, 80).0,
        Verdict::Allow
    );
    assert_eq!(
        decide(&e, "POST", "/", &[("hello", "world")], None, 80).0,
        Verdict::Deny
    );
}

#[test]
fn rbac_enabled_without_bindings_denies_and_off_allows() {
    let on_only = json!([rbac("ClusterRbacConfig", "default", json!({"mode": "ON"}))]);
    assert_eq!(
        decide(&engine(frontend(), on_only), "GET", "/", &[], None, 80).0,
        Verdict::Deny
    );
    let off = json!([rbac("ClusterRbacConfig", "default", json!({"mode": "OFF"}))]);
    assert_eq!(
        decide(&engine(frontend(), off), "GET", "/", &[], None, 80).0,
        Verdict::Allow
    );
}

#[test]
fn inclusion_that_names_another_service_leaves_rbac_off() {
    let mut r = hipstershop_rbac();
    r[0]["spec"]["inclusion"]["services"] = json!(["checkout.default.svc.cluster.local"]);
    assert_eq!(
        decide(&engine(frontend(), r), "GET", "/", &[], None, 80).0,
        Verdict::Allow
    );
}

#[test]
fn any_authorization_policy_overrides_v1alpha1_rbac() {
    let mut r = hipstershop_rbac();
    r.as_array_mut().unwrap().push(
        json!({"apiVersion": "security.istio.io/v1beta1", "kind": "AuthorizationPolicy",
        "metadata": {"name": "allow-all", "namespace": "default"}, "spec": {"rules": [{}]}}),
    );
    assert_eq!(
        decide(&engine(frontend(), r), "POST", "/", &[], None, 80).0,
        Verdict::Allow
    );
}

#[test]
fn user_star_matches_unauthenticated_peers_and_user_matches_principal() {
    let resources = |user: &str| {
        json!([
            rbac("ClusterRbacConfig", "default", json!({"mode": "ON"})),
            rbac(
                "ServiceRole",
                "r",
                json!({"rules": [{"services": ["*"], "paths": ["/api/*"]}]})
            ),
            rbac(
                "ServiceRoleBinding",
                "b",
                json!({"subjects": [{"user": user}], "roleRef": {"kind": "ServiceRole",
                    "name": "r"}})
            ),
        ])
    };
    let e = engine(frontend(), resources("*"));
    assert_eq!(decide(&e, "GET", "/api/x", &[], None, 80).0, Verdict::Allow);
    assert_eq!(decide(&e, "GET", "/other", &[], None, 80).0, Verdict::Deny);
    let e = engine(
        frontend(),
        resources("cluster.local/ns/default/sa/productpage"),
    );
    assert_eq!(decide(&e, "GET", "/api/x", &[], None, 80).0, Verdict::Deny);
    assert_eq!(
        decide(&e, "GET", "/api/x", &[], peer("productpage"), 80).0,
        Verdict::Allow
    );
}

#[test]
fn legacy_paths_match_the_raw_path_header_with_query() {
    let e = engine(
        frontend(),
        json!([
            rbac("ClusterRbacConfig", "default", json!({"mode": "ON"})),
            rbac(
                "ServiceRole",
                "r",
                json!({"rules": [{"services": ["*"], "paths": ["/v1alpha1"]}]})
            ),
            rbac(
                "ServiceRoleBinding",
                "b",
                json!({"subjects": [{"user": "*"}], "roleRef": {"kind": "ServiceRole",
                    "name": "r"}})
            ),
        ]),
    );
    assert_eq!(
        decide(&e, "GET", "/v1alpha1", &[], None, 80).0,
        Verdict::Allow
    );
    assert_eq!(
        decide(&e, "GET", "/v1alpha1?x=1", &[], None, 80).0,
        Verdict::Deny
    );
}

#[test]
fn unknown_legacy_constraint_and_property_keys_are_config_errors() {
    let err = load_error(
        frontend(),
        json!([
            rbac("ClusterRbacConfig", "default", json!({"mode": "ON"})),
            rbac(
                "ServiceRole",
                "r",
                json!({"rules": [{"services": ["*"], "constraints": [{"key": "destination.user",
                    "values": ["x"]}]}]})
            ),
            rbac(
                "ServiceRoleBinding",
                "b",
                json!({"subjects": [{"user": "*"}], "roleRef": {"kind": "ServiceRole",
                    "name": "r"}})
            ),
        ]),
    );
    assert!(err.contains("constraints[0].key"), "{err}");
    let err = load_error(
        frontend(),
        json!([rbac(
            "ServiceRoleBinding",
            "b",
            json!({"subjects": [{"properties": {"source.bogus": "x"}}],
            "roleRef": {"kind": "ServiceRole", "name": "r"}})
        )]),
    );
    assert!(err.contains("properties[source.bogus]"), "{err}");
}

#[test]
fn cluster_rbac_config_must_be_named_default() {
    let err = load_error(
        frontend(),
        json!([rbac("ClusterRbacConfig", "other", json!({"mode": "ON"}))]),
    );
    assert!(err.contains("default"), "{err}");
}

fn security_rule(name: &str, source: Value, destination: Value) -> Value {
    json!({"apiVersion": "supergloo.solo.io/v1", "kind": "SecurityRule",
           "metadata": {"name": name, "namespace": "default"},
           "spec": {"targetMesh": {"name": "istio-istio-system", "namespace": "supergloo-system"},
                    "sourceSelector": source, "destinationSelector": destination}})
}

fn upstreams(names: &[&str]) -> Value {
    json!({"upstreamSelector": {"upstreams": names.iter()
        .map(|n| json!({"name": n, "namespace": "supergloo-system"})).collect::<Vec<_>>()}})
}

fn bookinfo(app: &str) -> Value {
    json!({"namespace": "default", "labels": {"app": app}})
}

/// Seed 000, step by step, as seen by the details and reviews sidecars.
#[test]
fn seed_000_security_rules_whitelist_step_by_step() {
    let pp = peer("productpage");
    // No SecurityRule: everything passes.
    for app in ["details", "reviews"] {
        assert_eq!(
            decide(
                &engine(bookinfo(app), json!([])),
                "GET",
                "/",
                &[],
                pp.clone(),
                9080
            )
            .0,
            Verdict::Allow
        );
    }
    // productpage -> productpage only: details and reviews now deny productpage.
    let only_pp = security_rule(
        "enable-security",
        upstreams(&["default-productpage-9080"]),
        upstreams(&["default-productpage-9080"]),
    );
    for app in ["details", "reviews"] {
        let e = engine(bookinfo(app), json!([only_pp.clone()]));
        assert_eq!(
            decide(&e, "GET", "/", &[], pp.clone(), 9080).0,
            Verdict::Deny,
            "{app}"
        );
    }
    // productpage -> details added.
    let to_details = security_rule(
        "productpage-to-details",
        upstreams(&["default-productpage-9080"]),
        upstreams(&["default-details-9080"]),
    );
    let rules = json!([only_pp.clone(), to_details]);
    assert_eq!(
        decide(
            &engine(bookinfo("details"), rules.clone()),
            "GET",
            "/details/0",
            &[],
            pp.clone(),
            9080
        )
        .0,
        Verdict::Allow
    );
    assert_eq!(
        decide(
            &engine(bookinfo("reviews"), rules.clone()),
            "GET",
            "/",
            &[],
            pp.clone(),
            9080
        )
        .0,
        Verdict::Deny
    );
    assert_eq!(
        decide(
            &engine(bookinfo("details"), rules),
            "GET",
            "/",
            &[],
            peer("reviews"),
            9080
        )
        .0,
        Verdict::Deny
    );
    // productpage -> anything in default.
    let to_default = security_rule(
        "productpage-to-default",
        upstreams(&["default-productpage-9080"]),
        json!({"namespaceSelector": {"namespaces": ["default"]}}),
    );
    let e = engine(bookinfo("reviews"), json!([only_pp, to_default]));
    assert_eq!(
        decide(&e, "GET", "/reviews/0", &[], pp.clone(), 9080).0,
        Verdict::Allow
    );
    assert_eq!(
        decide(&e, "GET", "/reviews/0", &[], None, 9080).0,
        Verdict::Deny
    );
}

#[test]
fn security_rule_paths_and_methods_restrict_and_service_accounts_map_sources() {
    let mut rule = security_rule(
        "r",
        upstreams(&["default-productpage-9080"]),
        upstreams(&["default-details-9080"]),
    );
    rule["spec"]["allowedMethods"] = json!(["GET"]);
    rule["spec"]["allowedPaths"] = json!(["/details/*"]);
    let cfg = json!({"workload": bookinfo("details"), "resources": [rule],
        "serviceAccounts": {"default/productpage": ["bookinfo-productpage"]}});
    let e = load(cfg.to_string().as_bytes(), &NodeInfo::default())
        .unwrap()
        .0;
    let sa = peer("bookinfo-productpage");
    assert_eq!(
        decide(&e, "GET", "/details/1", &[], sa.clone(), 9080).0,
        Verdict::Allow
    );
    assert_eq!(
        decide(&e, "POST", "/details/1", &[], sa.clone(), 9080).0,
        Verdict::Deny
    );
    assert_eq!(decide(&e, "GET", "/other", &[], sa, 9080).0, Verdict::Deny);
    assert_eq!(
        decide(&e, "GET", "/details/1", &[], peer("productpage"), 9080).0,
        Verdict::Deny
    );
}

#[test]
fn label_selected_sources_need_the_inventory() {
    let rule = security_rule(
        "r",
        json!({"labelSelector": {"labelsToMatch": {"app": "productpage"}}}),
        json!(null),
    );
    let err = load_error(bookinfo("details"), json!([rule.clone()]));
    assert!(err.contains("inventory"), "{err}");
    let cfg = json!({"workload": bookinfo("details"), "resources": [rule],
        "inventory": [{"namespace": "default", "labels": {"app": "productpage"},
            "serviceAccount": "bookinfo-productpage"}]});
    let e = load(cfg.to_string().as_bytes(), &NodeInfo::default())
        .unwrap()
        .0;
    assert_eq!(
        decide(&e, "GET", "/", &[], peer("bookinfo-productpage"), 9080).0,
        Verdict::Allow
    );
}

fn sidecar_resource(hosts: &[&str]) -> Value {
    json!({"apiVersion": "networking.istio.io/v1alpha3", "kind": "Sidecar",
           "metadata": {"name": "sidecar-productpage", "namespace": "bookinfo"},
           "spec": {"workloadSelector": {"labels": {"app": "productpage"}},
               "egress": [{"hosts": hosts}]}})
}

fn egress_blocked(e: &Engine, authority: &str) -> Option<String> {
    let headers = vec![(":authority".to_string(), authority.as_bytes().to_vec())];
    e.egress_violation(Headers::new(&headers), &StaticConnection::default())
        .map(|(host, _)| host)
}

/// Seed 002: productpage may reach reviews and details, not ratings (mesh REGISTRY_ONLY).
#[test]
fn seed_002_sidecar_egress_allows_listed_hosts_only() {
    let cfg = json!({"workload": {"namespace": "bookinfo", "labels": {"app": "productpage"}},
        "outboundTrafficPolicy": "REGISTRY_ONLY",
        "resources": [sidecar_resource(&["bookinfo/reviews.bookinfo.svc.cluster.local",
            "bookinfo/details.bookinfo.svc.cluster.local", "istio-system/*"])]});
    let e = load(cfg.to_string().as_bytes(), &NodeInfo::default())
        .unwrap()
        .0;
    assert!(e.has_egress_rules());
    assert_eq!(egress_blocked(&e, "reviews:9080"), None);
    assert_eq!(egress_blocked(&e, "details:9080"), None);
    assert_eq!(
        egress_blocked(&e, "ratings:9080").as_deref(),
        Some("ratings.bookinfo.svc.cluster.local")
    );
}

#[test]
fn sidecar_without_registry_only_restricts_nothing() {
    let cfg = json!({"workload": {"namespace": "bookinfo", "labels": {"app": "productpage"}},
        "resources": [sidecar_resource(&["bookinfo/reviews.bookinfo.svc.cluster.local"])]});
    let e = load(cfg.to_string().as_bytes(), &NodeInfo::default())
        .unwrap()
        .0;
    assert!(!e.has_egress_rules());
}

#[test]
fn service_roles_are_validated_even_when_they_do_not_apply() {
    let bad_role = |rule: Value| {
        json!([
            rbac("ClusterRbacConfig", "default", json!({"mode": "OFF"})),
            rbac("ServiceRole", "r", json!({"rules": [rule]}))
        ])
    };
    for (rule, field) in [
        (
            json!({"services": ["other.default.svc.cluster.local"],
                "constraints": [{"key": "bogus", "values": ["x"]}]}),
            "constraints[0].key",
        ),
        (
            json!({"services": ["other.default.svc.cluster.local"],
                "constraints": [{"key": "destination.port", "values": []}]}),
            "constraints[0].values",
        ),
        (
            json!({"services": ["other.default.svc.cluster.local"], "ports": [99999]}),
            "ports[0]",
        ),
    ] {
        let err = load_error(frontend(), bad_role(rule));
        assert!(err.contains(field), "{field}: {err}");
    }
}

#[test]
fn security_rules_stay_enforced_when_an_authorization_policy_also_applies() {
    let only_pp = security_rule(
        "enable-security",
        upstreams(&["default-productpage-9080"]),
        upstreams(&["default-productpage-9080"]),
    );
    let deny_admin = json!({"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
        "metadata": {"name": "deny-admin", "namespace": "default"},
        "spec": {"action": "DENY", "rules": [{"to": [{"operation": {"paths": ["/admin"]}}]}]}});
    let e = engine(bookinfo("details"), json!([only_pp, deny_admin]));
    // Istio 1.4 would have dropped the SecurityRule here; meshguard keeps it (fail closed).
    assert_eq!(
        decide(&e, "GET", "/details/0", &[], peer("productpage"), 9080).0,
        Verdict::Deny
    );
    assert_eq!(
        decide(&e, "GET", "/admin", &[], peer("productpage"), 9080).0,
        Verdict::Deny
    );
}
