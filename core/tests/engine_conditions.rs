//! `when` conditions (authz-semantics §8, §5, §9, §10; known-bypasses C).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;
use meshguard_core::request::request_view::MetadataValue;
use serde_json::json;

const BAR: &str = "spiffe://cluster.local/ns/foo/sa/bar";

fn r() -> Req {
    Req::get("/")
}

// ---------------------------------------------------------------------------------------
// request.headers[...]

#[test]
fn header_condition_name_is_case_insensitive() {
    assert_rule_matches(
        when("request.headers[X-Role]", &["admin"]),
        &[r().header("x-role", "admin")],
        &[r().header("x-role", "user"), r()],
    );
}

#[test]
fn header_condition_values_are_case_sensitive() {
    assert_rule_matches(
        when("request.headers[x-role]", &["admin"]),
        &[r().header("x-role", "admin")],
        &[
            r().header("x-role", "Admin"),
            r().header("x-role", "ADMIN"),
            r().header("x-role", "admin "),
        ],
    );
}

#[test]
fn header_condition_prefix_and_suffix() {
    assert_rule_matches(
        when("request.headers[authorization]", &["Bearer *"]),
        &[r().header("authorization", "Bearer abc")],
        &[
            r().header("authorization", "bearer abc"),
            r().header("authorization", "Basic x"),
        ],
    );
    assert_rule_matches(
        when("request.headers[x-user]", &["*@example.com"]),
        &[r().header("x-user", "a@example.com")],
        &[r().header("x-user", "a@example.org")],
    );
}

#[test]
fn host_header_condition_reads_the_authority() {
    // Envoy's header map looks `host` up as `:authority` (found by the differential test against
    // Envoy's RBAC filter): `request.headers[host]` matches the Host / :authority value.
    assert_rule_matches(
        when("request.headers[host]", &["example.com"]),
        &[Req::new("GET", "/", "example.com")],
        &[
            Req::new("GET", "/", "Example.com"),
            Req::new("GET", "/", "other"),
        ],
    );
    assert_rule_matches(
        when("request.headers[Host]", &["*"]),
        &[Req::new("GET", "/", "example.com")],
        &[],
    );
    assert_rule_matches(
        when_not("request.headers[host]", &["example.com"]),
        &[Req::new("GET", "/", "other")],
        &[Req::new("GET", "/", "example.com")],
    );
}

#[test]
fn header_star_matches_an_empty_header_value() {
    // §5: `*` on a header is Envoy present_match.
    assert_rule_matches(
        when("request.headers[x-foo]", &["*"]),
        &[r().header("x-foo", ""), r().header("x-foo", "bar")],
        &[r(), r().header("x-other", "bar")],
    );
}

#[test]
fn absent_header_never_matches_values_and_always_matches_not_values() {
    // §9.
    let e = allow_rule(when("request.headers[x-role]", &["*"]));
    assert!(!r().allowed(&e));
    assert_rule_matches(
        when_not("request.headers[x-role]", &["admin"]),
        &[r(), r().header("x-role", "user")],
        &[r().header("x-role", "admin")],
    );
    assert_rule_matches(
        when_not("request.headers[x-role]", &["*"]),
        &[r()],
        &[r().header("x-role", ""), r().header("x-role", "x")],
    );
}

#[test]
fn repeated_headers_are_matched_value_by_value_in_any_order() {
    // §10, known-bypasses C1 (CVE-2026-26308): each value individually.
    let rule = when("request.headers[x-role]", &["admin"]);
    assert_rule_matches(
        rule,
        &[
            r().header("x-role", "user").header("x-role", "admin"),
            r().header("x-role", "admin").header("x-role", "user"),
            r().header("x-role", "a")
                .header("x-role", "admin")
                .header("x-role", "b"),
        ],
        &[r().header("x-role", "user").header("x-role", "guest")],
    );
}

#[test]
fn repeated_headers_with_other_headers_in_between() {
    let e = deny_rule(when("request.headers[x-role]", &["admin"]));
    let req = r()
        .header("x-role", "user")
        .header("x-other", "1")
        .header("x-role", "admin");
    assert!(!req.allowed(&e));
}

#[test]
fn repeated_headers_any_value_in_not_values_excludes() {
    // NOT(any value matches): a request carrying the excluded value in any copy is excluded.
    let e = allow_rule(when_not("request.headers[x-role]", &["admin"]));
    assert!(!r()
        .header("x-role", "user")
        .header("x-role", "admin")
        .allowed(&e));
    assert!(!r()
        .header("x-role", "admin")
        .header("x-role", "user")
        .allowed(&e));
    assert!(r()
        .header("x-role", "user")
        .header("x-role", "guest")
        .allowed(&e));
}

#[test]
fn inline_comma_separated_value_is_not_split() {
    assert_rule_matches(
        when("request.headers[x-role]", &["admin"]),
        &[],
        &[
            r().header("x-role", "user,admin"),
            r().header("x-role", "admin,user"),
        ],
    );
    assert_rule_matches(
        when("request.headers[x-role]", &["user,admin"]),
        &[r().header("x-role", "user,admin")],
        &[],
    );
}

#[test]
fn path_header_condition_is_raw_with_query() {
    // §7, §10, known-bypasses A4.
    assert_rule_matches(
        when("request.headers[:path]", &["/admin"]),
        &[Req::get("/admin")],
        &[Req::get("/admin?x=1"), Req::get("/admin?")],
    );
    assert_rule_matches(
        when("request.headers[:path]", &["/admin?x=1"]),
        &[Req::get("/admin?x=1")],
        &[Req::get("/admin")],
    );
    assert_rule_matches(
        when("request.headers[:path]", &["/admin*"]),
        &[Req::get("/admin?x=1")],
        &[],
    );
}

#[test]
fn method_and_authority_pseudo_header_conditions() {
    assert_rule_matches(
        when("request.headers[:method]", &["POST"]),
        &[r().method("POST")],
        &[r().method("post"), r()],
    );
    // A header condition on :authority is a plain header matcher (case-sensitive values).
    assert_rule_matches(
        when("request.headers[:authority]", &["example.com"]),
        &[r().authority("example.com")],
        &[r().authority("example.com:80")],
    );
}

// ---------------------------------------------------------------------------------------
// connection attributes

#[test]
fn source_ip_condition_uses_the_direct_peer_address() {
    assert_rule_matches(
        when("source.ip", &["10.0.0.0/8", "192.168.1.1"]),
        &[
            r().source_ip("10.9.9.9").remote_ip("1.1.1.1"),
            r().source_ip("192.168.1.1").remote_ip("1.1.1.1"),
        ],
        &[r().source_ip("192.168.1.2").remote_ip("10.0.0.1")],
    );
    assert_rule_matches(
        when_not("source.ip", &["10.0.0.0/8"]),
        &[r().source_ip("192.168.1.2")],
        &[r().source_ip("10.0.0.1")],
    );
}

#[test]
fn remote_ip_condition_uses_the_remote_address() {
    assert_rule_matches(
        when("remote.ip", &["10.0.0.0/8"]),
        &[r().remote_ip("10.1.1.1").source_ip("1.1.1.1")],
        &[r().remote_ip("1.1.1.1").source_ip("10.1.1.1")],
    );
}

#[test]
fn destination_ip_condition() {
    assert_rule_matches(
        when("destination.ip", &["10.0.0.2", "2001:db8::/32"]),
        &[
            r().destination_ip("10.0.0.2"),
            r().destination_ip("2001:db8::5"),
        ],
        &[r().destination_ip("10.0.0.3")],
    );
}

#[test]
fn destination_port_condition() {
    assert_rule_matches(
        when("destination.port", &["8080"]),
        &[r().port(8080)],
        &[r().port(80)],
    );
    assert_rule_matches(
        when_not("destination.port", &["8080"]),
        &[r().port(80)],
        &[r().port(8080)],
    );
}

#[test]
fn source_namespace_condition() {
    assert_rule_matches(
        when("source.namespace", &["foo"]),
        &[r().uri(BAR)],
        &[
            r().uri("spiffe://cluster.local/ns/foobar/sa/x"),
            r().plaintext(),
        ],
    );
    assert_rule_matches(
        when_not("source.namespace", &["foo"]),
        &[r().plaintext(), r().uri("spiffe://cluster.local/ns/x/sa/y")],
        &[r().uri(BAR)],
    );
}

#[test]
fn source_principal_condition() {
    assert_rule_matches(
        when("source.principal", &["cluster.local/ns/foo/sa/bar"]),
        &[r().uri(BAR)],
        &[
            r().uri("spiffe://cluster.local/ns/foo/sa/baz"),
            r().plaintext(),
        ],
    );
    assert_rule_matches(
        when("source.principal", &["*"]),
        &[r().uri(BAR), r().dns("x.example.com")],
        &[r().plaintext()],
    );
    assert_rule_matches(
        when_not("source.principal", &["*"]),
        &[r().plaintext()],
        &[r().uri(BAR)],
    );
}

#[test]
fn source_service_account_condition() {
    assert_rule_matches(
        when("source.serviceAccount", &["foo/bar"]),
        &[r().uri(BAR)],
        &[
            r().uri("spiffe://cluster.local/ns/foo/sa/bar-junk"),
            r().plaintext(),
        ],
    );
    // `sa` alone defaults to the policy namespace, as in `serviceAccounts`.
    assert_rule_matches(
        when("source.serviceAccount", &["bar"]),
        &[r().uri(BAR)],
        &[r().uri("spiffe://cluster.local/ns/other/sa/bar")],
    );
}

#[test]
fn source_trust_domain_condition() {
    assert_rule_matches(
        when("source.trustDomain", &["cluster.local"]),
        &[r().uri(BAR)],
        &[r().uri("spiffe://other/ns/foo/sa/bar"), r().plaintext()],
    );
}

#[test]
fn connection_sni_condition() {
    assert_rule_matches(
        when("connection.sni", &["www.example.com"]),
        &[r().sni("www.example.com")],
        &[r().sni("WWW.example.com"), r().sni("example.com"), r()],
    );
    assert_rule_matches(
        when("connection.sni", &["outbound_.8080_._.*"]),
        &[r().sni("outbound_.8080_._.svc.foo.svc.cluster.local")],
        &[r().sni("outbound_.9090_._.svc")],
    );
    assert_rule_matches(when("connection.sni", &["*"]), &[r().sni("a")], &[r()]);
    assert_rule_matches(when_not("connection.sni", &["*"]), &[r()], &[r().sni("a")]);
}

#[test]
fn experimental_filter_metadata_condition() {
    // Key `experimental.envoy.filters.a.b[c]` reads metadata of filter `envoy.filters.a.b`,
    // key `c`; a value `[v]` is a list-contains match (§8, istiod `isKeyBinary` branch).
    let key = "experimental.envoy.filters.network.mysql_proxy[db.table]";
    let with = |v: MetadataValue| {
        let mut req = r();
        req.conn.metadata.push((
            "envoy.filters.network.mysql_proxy".to_string(),
            "db.table".to_string(),
            v,
        ));
        req
    };
    assert_rule_matches(
        when(key, &["update"]),
        &[with(MetadataValue::String(b"update".to_vec()))],
        &[with(MetadataValue::String(b"select".to_vec())), r()],
    );
    assert_rule_matches(
        when(key, &["[update]"]),
        &[with(MetadataValue::List(vec![
            b"select".to_vec(),
            b"update".to_vec(),
        ]))],
        &[with(MetadataValue::List(vec![b"select".to_vec()])), r()],
    );
}

// ---------------------------------------------------------------------------------------
// rejected keys (§8, §3.4, known-bypasses H)

fn when_err(key: &str) -> meshguard_core::error::ConfigError {
    rule_err(when(key, &["x"]))
}

#[test]
fn removed_and_unknown_condition_keys_are_config_errors() {
    for key in [
        "destination.labels[app]",
        "destination.namespace",
        "destination.name",
        "destination.user",
        "source.user",
        "request.header[x]",
        "request.headers",
        "request.headers[]",
        "request.headers[x",
        "source.ip[x]",
        "foo",
        "",
    ] {
        let err = when_err(key);
        assert_err_at(&err, "resources[0].spec.rules[0].when[0]");
    }
}

// ---------------------------------------------------------------------------------------
// JWT attributes for a request without a verified token (§6.5, §9, §14: a missing token
// passes authentication with no identity, so every `request.auth.*` attribute is absent).

#[test]
fn request_principals_never_match_a_request_without_token() {
    assert_rule_matches(
        from(json!({"requestPrincipals": ["*"]})),
        &[],
        &[r(), r().uri(BAR)],
    );
    assert_rule_matches(
        from(json!({"requestPrincipals": ["https://issuer.example.com/alice"]})),
        &[],
        &[r().header("authorization", "Bearer not-verified")],
    );
}

#[test]
fn not_request_principals_match_a_request_without_token() {
    // The documented "require a JWT" idiom: DENY notRequestPrincipals ["*"].
    let e = deny_rule(from(json!({"notRequestPrincipals": ["*"]})));
    assert!(!r().allowed(&e));
    assert!(!r().uri(BAR).allowed(&e));
}

#[test]
fn request_auth_conditions_without_token_are_absent_attributes() {
    for key in [
        "request.auth.principal",
        "request.auth.audiences",
        "request.auth.presenter",
        "request.auth.claims[groups]",
        "request.auth.claims[nested][key1]",
    ] {
        assert_rule_matches(when(key, &["*"]), &[], &[r()]);
        assert_rule_matches(when_not(key, &["x"]), &[r()], &[]);
    }
}

#[test]
fn malformed_jwt_condition_keys_are_config_errors() {
    // §8: map keys must look like `a[b]` with a non-empty `b`; unknown keys are rejected.
    for key in [
        "request.auth.claims",
        "request.auth.claims[]",
        "request.auth.claims[groups",
        "request.auth.claim[groups]",
        "request.auth.unknown",
        "request.auth",
    ] {
        let err = when_err(key);
        assert_err_at(&err, "resources[0].spec.rules[0].when[0]");
    }
}

#[test]
fn empty_request_principal_is_a_config_error() {
    let err = rule_err(from(json!({"requestPrincipals": [""]})));
    assert_err_at(
        &err,
        "resources[0].spec.rules[0].from[0].source.requestPrincipals",
    );
    let err = rule_err(from(json!({"notRequestPrincipals": [""]})));
    assert_err_at(
        &err,
        "resources[0].spec.rules[0].from[0].source.notRequestPrincipals",
    );
}

#[test]
fn condition_without_values_or_not_values_is_a_config_error() {
    let err = rule_err(json!({"when": [{"key": "request.headers[x]"}]}));
    assert_err_at(&err, "resources[0].spec.rules[0].when[0]");
    let err =
        rule_err(json!({"when": [{"key": "request.headers[x]", "values": [], "notValues": []}]}));
    assert_err_at(&err, "resources[0].spec.rules[0].when[0]");
}

#[test]
fn condition_values_are_validated() {
    for (key, value) in [
        ("source.ip", "10.0.0.0/33"),
        ("source.ip", "not-an-ip"),
        ("remote.ip", "10.0.0"),
        ("destination.ip", "::g"),
        ("destination.port", "http"),
        ("destination.port", "-1"),
        ("destination.port", "65536"),
        ("source.serviceAccount", "foo/*"),
        ("source.trustDomain", "a/b"),
        ("request.headers[x]", ""),
    ] {
        let err = rule_err(when(key, &[value]));
        assert_err_at(&err, "resources[0].spec.rules[0].when[0]");
    }
    let err = rule_err(when_not("destination.port", &["99999"]));
    assert_err_at(&err, "resources[0].spec.rules[0].when[0]");
}
