//! Every Source and Operation field, positive and negative (authz-semantics §5, §6, §7, §9),
//! and the trust-domain alias expansion (§6.1).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;
use meshguard_core::request::peer::Peer;
use serde_json::json;

const BAR: &str = "spiffe://cluster.local/ns/foo/sa/bar";

fn src(source: serde_json::Value) -> serde_json::Value {
    from(source)
}

fn op(operation: serde_json::Value) -> serde_json::Value {
    to(operation)
}

fn r() -> Req {
    Req::get("/")
}

// ---------------------------------------------------------------------------------------
// principals (§6.1)

#[test]
fn principal_exact_matches_the_spiffe_uri() {
    assert_rule_matches(
        src(json!({"principals": ["cluster.local/ns/foo/sa/bar"]})),
        &[r().uri(BAR)],
        &[
            r().uri("spiffe://cluster.local/ns/foo/sa/baz"),
            r().uri("spiffe://cluster.local/ns/foo/sa/bar/x"),
            r().uri("spiffe://cluster.local/ns/foo/sa/ba"),
            // The policy value gets `spiffe://` prepended; a bare identity is not it.
            r().uri("cluster.local/ns/foo/sa/bar"),
            // Case-sensitive (§5).
            r().uri("spiffe://cluster.local/ns/foo/sa/BAR"),
            r().plaintext(),
        ],
    );
}

#[test]
fn principal_prefix_matches_below_the_prefix() {
    assert_rule_matches(
        src(json!({"principals": ["cluster.local/ns/foo/*"]})),
        &[
            r().uri(BAR),
            r().uri("spiffe://cluster.local/ns/foo/sa/other"),
        ],
        &[
            r().uri("spiffe://cluster.local/ns/foobar/sa/bar"),
            r().uri("spiffe://cluster.local/ns/other/sa/bar"),
            r().plaintext(),
        ],
    );
}

#[test]
fn principal_suffix_matches_any_trust_domain() {
    assert_rule_matches(
        src(json!({"principals": ["*/ns/foo/sa/bar"]})),
        &[
            r().uri(BAR),
            r().uri("spiffe://other-td/ns/foo/sa/bar"),
            r().uri("spiffe://a.b.c/ns/foo/sa/bar"),
        ],
        &[
            r().uri("spiffe://cluster.local/ns/foo/sa/barx"),
            r().uri("spiffe://cluster.local/ns/xfoo/sa/bar2"),
            // Regex `spiffe://.*/ns/foo/sa/bar`: the `spiffe://` prefix is kept.
            r().uri("td/ns/foo/sa/bar"),
            r().plaintext(),
        ],
    );
}

#[test]
fn principal_suffix_treats_regex_metacharacters_literally() {
    // §6.1: QuoteMeta on the suffix; known-bypasses E3.
    assert_rule_matches(
        src(json!({"principals": ["*/ns/a.b/sa/bar"]})),
        &[r().uri("spiffe://td/ns/a.b/sa/bar")],
        &[r().uri("spiffe://td/ns/aXb/sa/bar")],
    );
}

#[test]
fn principal_star_matches_any_client_certificate() {
    // §6.1: `*` is `.+`, no `spiffe://` required; URI SAN, DNS SAN or subject.
    assert_rule_matches(
        src(json!({"principals": ["*"]})),
        &[
            r().uri(BAR),
            r().uri("urn:not-spiffe"),
            r().dns("client.example.com"),
            r().subject("CN=client,O=example"),
        ],
        &[r().plaintext()],
    );
}

#[test]
fn principal_is_also_tried_against_dns_san_and_subject() {
    // §6.1: Envoy's authenticated matcher tries URI SANs, then DNS SANs, then the subject.
    // `*` and namespace regexes can match a DNS SAN or a subject.
    assert_rule_matches(
        src(json!({"principals": ["*"]})),
        &[r().dns("bar.foo.svc"), r().subject("CN=bar")],
        &[r().plaintext()],
    );
    assert_rule_matches(
        src(json!({"namespaces": ["foo"]})),
        &[r().subject("CN=x/ns/foo/y")],
        &[r().dns("bar.foo.svc"), r().subject("CN=x/ns/other/y")],
    );
}

#[test]
fn spiffe_principal_is_matched_against_the_uri_san_only() {
    // Deliberate difference: a DNS SAN is a host name and a subject an RFC 2253 `type=value`
    // string, so neither can equal a `spiffe://` principal; meshguard does not read them for
    // such matchers (Envoy would compare, and find no match, for any certificate a CA issues).
    let peer = Peer::new(
        Some(b"spiffe://cluster.local/ns/foo/sa/other".to_vec()),
        Some(BAR.as_bytes().to_vec()),
        Some(BAR.as_bytes().to_vec()),
    );
    assert_rule_matches(
        src(json!({"principals": ["cluster.local/ns/foo/sa/bar"]})),
        &[r().uri(BAR)],
        &[
            r().peer(Some(peer)),
            r().subject(BAR),
            r().dns("bar.foo.svc"),
        ],
    );
}

#[test]
fn plaintext_peer_never_matches_positive_principals() {
    let e = allow_rule(src(json!({"principals": ["*"]})));
    assert!(!r().plaintext().allowed(&e));
    let e = deny_rule(src(json!({"principals": ["*"]})));
    assert!(r().plaintext().allowed(&e));
}

#[test]
fn not_principals_matches_plaintext_peer() {
    // §9: negative fields match when the attribute is absent.
    assert_rule_matches(
        src(json!({"notPrincipals": ["cluster.local/ns/foo/sa/bar"]})),
        &[
            r().plaintext(),
            r().uri("spiffe://cluster.local/ns/foo/sa/other"),
        ],
        &[r().uri(BAR)],
    );
    assert_rule_matches(
        src(json!({"notPrincipals": ["*"]})),
        &[r().plaintext()],
        &[r().uri(BAR), r().dns("x.example.com")],
    );
}

// ---------------------------------------------------------------------------------------
// trust domain aliases (§6.1, bundle.go)

fn td_cfg(rule: serde_json::Value, action: &str) -> serde_json::Value {
    json!({
        "workload": {"namespace": NS},
        "trustDomain": "td1",
        "trustDomainAliases": ["td-old"],
        "resources": [ap(NS, "p", json!({"action": action, "rules": [rule]}))],
    })
}

fn td_allowed(rule: serde_json::Value, uri: &str) -> bool {
    r().uri(uri).allowed(&load_ok(&td_cfg(rule, "ALLOW")))
}

#[test]
fn cluster_local_principal_expands_to_trust_domain_and_aliases() {
    let rule = src(json!({"principals": ["cluster.local/ns/foo/sa/bar"]}));
    assert!(td_allowed(rule.clone(), "spiffe://td1/ns/foo/sa/bar"));
    assert!(td_allowed(rule.clone(), "spiffe://td-old/ns/foo/sa/bar"));
    assert!(!td_allowed(rule.clone(), "spiffe://td-other/ns/foo/sa/bar"));
    assert!(!td_allowed(rule, "spiffe://td1/ns/foo/sa/other"));
}

#[test]
fn alias_principal_expands_to_the_whole_bundle() {
    let rule = src(json!({"principals": ["td-old/ns/foo/sa/bar"]}));
    assert!(td_allowed(rule.clone(), "spiffe://td1/ns/foo/sa/bar"));
    assert!(td_allowed(rule.clone(), "spiffe://td-old/ns/foo/sa/bar"));
    let rule = src(json!({"principals": ["td1/ns/foo/sa/bar"]}));
    assert!(td_allowed(rule.clone(), "spiffe://td-old/ns/foo/sa/bar"));
    assert!(td_allowed(rule, "spiffe://td1/ns/foo/sa/bar"));
}

#[test]
fn foreign_trust_domain_principal_is_not_expanded() {
    let rule = src(json!({"principals": ["elsewhere/ns/foo/sa/bar"]}));
    assert!(td_allowed(rule.clone(), "spiffe://elsewhere/ns/foo/sa/bar"));
    assert!(!td_allowed(rule, "spiffe://td1/ns/foo/sa/bar"));
}

#[test]
fn alias_expansion_applies_to_not_principals_and_source_principal() {
    let rule = src(json!({"notPrincipals": ["cluster.local/ns/foo/sa/bar"]}));
    let e = load_ok(&td_cfg(rule, "DENY"));
    assert!(r().uri("spiffe://td-old/ns/foo/sa/bar").allowed(&e));
    assert!(r().uri("spiffe://td1/ns/foo/sa/bar").allowed(&e));
    assert!(!r().uri("spiffe://td1/ns/foo/sa/other").allowed(&e));

    let rule = when("source.principal", &["cluster.local/ns/foo/sa/bar"]);
    assert!(td_allowed(rule.clone(), "spiffe://td-old/ns/foo/sa/bar"));
    assert!(td_allowed(rule, "spiffe://td1/ns/foo/sa/bar"));
}

#[test]
fn trust_domains_value_in_bundle_expands_to_the_bundle() {
    let rule = src(json!({"trustDomains": ["td-old"]}));
    assert!(td_allowed(rule.clone(), "spiffe://td1/ns/foo/sa/bar"));
    assert!(td_allowed(rule.clone(), "spiffe://td-old/ns/foo/sa/bar"));
    assert!(!td_allowed(rule, "spiffe://td-other/ns/foo/sa/bar"));
}

#[test]
fn wildcard_trust_domain_principal_is_left_alone() {
    let rule = src(json!({"principals": ["*/ns/foo/sa/bar"]}));
    assert!(td_allowed(rule.clone(), "spiffe://td-other/ns/foo/sa/bar"));
    assert!(td_allowed(rule, "spiffe://td1/ns/foo/sa/bar"));
}

// ---------------------------------------------------------------------------------------
// namespaces (§6.2)

#[test]
fn namespaces_match_the_ns_segment_of_the_peer_identity() {
    assert_rule_matches(
        src(json!({"namespaces": ["foo"]})),
        &[r().uri(BAR), r().uri("spiffe://other-td/ns/foo/sa/x")],
        &[
            r().uri("spiffe://cluster.local/ns/foobar/sa/x"),
            r().uri("spiffe://cluster.local/ns/barfoo/sa/x"),
            r().uri("spiffe://cluster.local/ns/Foo/sa/x"),
            // Regex `.*/ns/foo/.*` needs a segment after the namespace (known-bypasses E4).
            r().uri("spiffe://cluster.local/ns/foo"),
            r().plaintext(),
        ],
    );
}

#[test]
fn namespace_anywhere_in_the_identity_matches() {
    // §6.2 / known-bypasses E4: `/ns/<ns>/` anywhere in the URI, DNS SAN or subject.
    assert_rule_matches(
        src(json!({"namespaces": ["victim"]})),
        &[
            r().uri("spiffe://td/ns/evil/sa/x/ns/victim/y"),
            r().dns("x/ns/victim/y"),
            r().subject("CN=a/ns/victim/b"),
        ],
        &[r().uri("spiffe://td/ns/evil/sa/victim")],
    );
}

#[test]
fn namespaces_star_glob_matches_in_the_middle() {
    assert_rule_matches(
        src(json!({"namespaces": ["team-*-prod"]})),
        &[
            r().uri("spiffe://cluster.local/ns/team-a-prod/sa/x"),
            r().uri("spiffe://cluster.local/ns/team--prod/sa/x"),
        ],
        &[
            r().uri("spiffe://cluster.local/ns/team-a-dev/sa/x"),
            r().uri("spiffe://cluster.local/ns/xteam-a-prod/sa/x"),
        ],
    );
    assert_rule_matches(
        src(json!({"namespaces": ["prod-*"]})),
        &[r().uri("spiffe://cluster.local/ns/prod-eu/sa/x")],
        &[r().uri("spiffe://cluster.local/ns/dev-eu/sa/x")],
    );
    assert_rule_matches(
        src(json!({"namespaces": ["*-prod"]})),
        &[r().uri("spiffe://cluster.local/ns/eu-prod/sa/x")],
        &[r().uri("spiffe://cluster.local/ns/eu-dev/sa/x")],
    );
}

#[test]
fn namespaces_star_matches_any_identity_with_a_namespace() {
    assert_rule_matches(
        src(json!({"namespaces": ["*"]})),
        &[r().uri(BAR), r().uri("spiffe://td/ns/x/sa/y")],
        &[r().plaintext(), r().dns("client.example.com")],
    );
}

#[test]
fn namespaces_treat_regex_metacharacters_literally() {
    // §6.2, PR #59992; known-bypasses E3.
    assert_rule_matches(
        src(json!({"namespaces": ["a.b"]})),
        &[r().uri("spiffe://td/ns/a.b/sa/x")],
        &[r().uri("spiffe://td/ns/aXb/sa/x")],
    );
    assert_rule_matches(
        src(json!({"namespaces": ["a+"]})),
        &[r().uri("spiffe://td/ns/a+/sa/x")],
        &[r().uri("spiffe://td/ns/aa/sa/x")],
    );
    assert_rule_matches(
        src(json!({"namespaces": ["[ab]"]})),
        &[r().uri("spiffe://td/ns/[ab]/sa/x")],
        &[r().uri("spiffe://td/ns/a/sa/x")],
    );
}

#[test]
fn not_namespaces_matches_plaintext_peer() {
    // §9, ISTIO-SECURITY-2021-004.
    assert_rule_matches(
        src(json!({"notNamespaces": ["foo"]})),
        &[
            r().plaintext(),
            r().uri("spiffe://cluster.local/ns/other/sa/x"),
        ],
        &[r().uri(BAR)],
    );
}

#[test]
fn deny_namespaces_does_not_stop_plaintext_traffic() {
    let e = deny_rule(src(json!({"namespaces": ["foo"]})));
    assert!(r().plaintext().allowed(&e));
    assert!(!r().uri(BAR).allowed(&e));
}

// ---------------------------------------------------------------------------------------
// serviceAccounts (§6.3)

#[test]
fn service_account_without_namespace_uses_the_policy_namespace() {
    assert_rule_matches(
        src(json!({"serviceAccounts": ["bar"]})),
        &[r().uri(BAR), r().uri("spiffe://other-td/ns/foo/sa/bar")],
        &[
            r().uri("spiffe://cluster.local/ns/other/sa/bar"),
            r().uri("spiffe://cluster.local/ns/foo/sa/baz"),
            r().plaintext(),
        ],
    );
}

#[test]
fn service_account_in_root_namespace_policy_defaults_to_the_root_namespace() {
    let e = load_ok(&cfg(vec![ap(
        "istio-system",
        "p",
        json!({"action": "DENY", "rules": [src(json!({"serviceAccounts": ["bar"]}))]}),
    )]));
    assert!(!r()
        .uri("spiffe://cluster.local/ns/istio-system/sa/bar")
        .allowed(&e));
    assert!(r().uri(BAR).allowed(&e));
}

#[test]
fn service_account_with_namespace() {
    assert_rule_matches(
        src(json!({"serviceAccounts": ["other/bar"]})),
        &[r().uri("spiffe://cluster.local/ns/other/sa/bar")],
        &[
            r().uri(BAR),
            r().uri("spiffe://cluster.local/ns/otherx/sa/bar"),
        ],
    );
}

#[test]
fn service_account_allows_extra_path_segments_but_not_name_suffixes() {
    // §6.3 regex `spiffe://.+/ns/<NS>/(.+/|)sa/<SA>(/.+)?`.
    assert_rule_matches(
        src(json!({"serviceAccounts": ["foo/bar"]})),
        &[
            r().uri("spiffe://cluster.local/ns/foo/x/sa/bar"),
            r().uri("spiffe://cluster.local/ns/foo/sa/bar/extra"),
        ],
        &[
            r().uri("spiffe://cluster.local/ns/foo/sa/bar-junk"),
            r().uri("spiffe://cluster.local/ns/foo/sa/xbar"),
            r().uri("spiffe://cluster.local/ns/foo/sa/bar/"),
            // Not SPIFFE.
            r().uri("cluster.local/ns/foo/sa/bar"),
        ],
    );
}

#[test]
fn service_account_treats_dots_literally() {
    // CVE-2026-39350.
    assert_rule_matches(
        src(json!({"serviceAccounts": ["foo/admin.svc"]})),
        &[r().uri("spiffe://cluster.local/ns/foo/sa/admin.svc")],
        &[r().uri("spiffe://cluster.local/ns/foo/sa/adminXsvc")],
    );
    assert_rule_matches(
        src(json!({"serviceAccounts": ["a.b/sa"]})),
        &[r().uri("spiffe://cluster.local/ns/a.b/sa/sa")],
        &[r().uri("spiffe://cluster.local/ns/aXb/sa/sa")],
    );
}

#[test]
fn not_service_accounts_matches_plaintext_peer() {
    assert_rule_matches(
        src(json!({"notServiceAccounts": ["bar"]})),
        &[
            r().plaintext(),
            r().uri("spiffe://cluster.local/ns/foo/sa/other"),
        ],
        &[r().uri(BAR)],
    );
}

// ---------------------------------------------------------------------------------------
// trustDomains (§6.4)

#[test]
fn trust_domain_exact() {
    assert_rule_matches(
        src(json!({"trustDomains": ["td1"]})),
        &[r().uri("spiffe://td1/ns/foo/sa/bar")],
        &[
            r().uri("spiffe://td1x/ns/foo/sa/bar"),
            r().uri("spiffe://xtd1/ns/foo/sa/bar"),
            r().uri("spiffe://TD1/ns/foo/sa/bar"),
            r().dns("td1"),
            r().plaintext(),
        ],
    );
}

#[test]
fn trust_domain_prefix_and_suffix_stay_within_the_trust_domain() {
    assert_rule_matches(
        src(json!({"trustDomains": ["td*"]})),
        &[
            r().uri("spiffe://td/ns/a/sa/b"),
            r().uri("spiffe://td-east/ns/a/sa/b"),
        ],
        &[
            r().uri("spiffe://xtd/ns/a/sa/b"),
            r().uri("spiffe://x/td/ns/a/sa/b"),
        ],
    );
    assert_rule_matches(
        src(json!({"trustDomains": ["*.example.org"]})),
        &[
            r().uri("spiffe://a.example.org/ns/a/sa/b"),
            r().uri("spiffe://A.b.example.org/ns/a/sa/b"),
        ],
        &[
            r().uri("spiffe://example.org/ns/a/sa/b"),
            r().uri("spiffe://aXexample.org/ns/a/sa/b"),
            r().uri("spiffe://a.example.org.evil/ns/a/sa/b"),
        ],
    );
}

#[test]
fn trust_domain_star_matches_any_spiffe_peer() {
    assert_rule_matches(
        src(json!({"trustDomains": ["*"]})),
        &[r().uri(BAR), r().uri("spiffe://x/y")],
        &[
            r().plaintext(),
            r().dns("client.example.com"),
            r().uri("https://x/ns/a/sa/b"),
        ],
    );
}

#[test]
fn not_trust_domains_matches_plaintext_peer() {
    assert_rule_matches(
        src(json!({"notTrustDomains": ["cluster.local"]})),
        &[r().plaintext(), r().uri("spiffe://other/ns/foo/sa/bar")],
        &[r().uri(BAR)],
    );
}

// ---------------------------------------------------------------------------------------
// ipBlocks / remoteIpBlocks

#[test]
fn ip_blocks_match_the_direct_source_ip_not_the_remote_ip() {
    assert_rule_matches(
        src(json!({"ipBlocks": ["10.0.0.0/8"]})),
        &[r().source_ip("10.1.2.3").remote_ip("192.168.0.1")],
        &[r().source_ip("192.168.0.1").remote_ip("10.1.2.3")],
    );
}

#[test]
fn remote_ip_blocks_match_the_remote_ip_not_the_source_ip() {
    assert_rule_matches(
        src(json!({"remoteIpBlocks": ["10.0.0.0/8"]})),
        &[r().source_ip("192.168.0.1").remote_ip("10.1.2.3")],
        &[r().source_ip("10.1.2.3").remote_ip("192.168.0.1")],
    );
}

#[test]
fn ip_blocks_accept_single_addresses_and_ipv6() {
    assert_rule_matches(
        src(json!({"ipBlocks": ["192.168.1.7", "2001:db8::/32"]})),
        &[r().source_ip("192.168.1.7"), r().source_ip("2001:db8::1")],
        &[r().source_ip("192.168.1.8"), r().source_ip("2001:db9::1")],
    );
}

#[test]
fn not_ip_blocks_and_not_remote_ip_blocks() {
    assert_rule_matches(
        src(json!({"notIpBlocks": ["10.0.0.0/8"]})),
        &[r().source_ip("192.168.0.1").remote_ip("10.0.0.1")],
        &[r().source_ip("10.0.0.1").remote_ip("192.168.0.1")],
    );
    assert_rule_matches(
        src(json!({"notRemoteIpBlocks": ["10.0.0.0/8"]})),
        &[r().remote_ip("192.168.0.1").source_ip("10.0.0.1")],
        &[r().remote_ip("10.0.0.1").source_ip("192.168.0.1")],
    );
}

// ---------------------------------------------------------------------------------------
// hosts (§5, §7, known-bypasses B1/B2)

#[test]
fn hosts_are_case_insensitive() {
    assert_rule_matches(
        op(json!({"hosts": ["example.com"]})),
        &[
            r().authority("example.com"),
            r().authority("EXAMPLE.com"),
            r().authority("Example.Com"),
        ],
        &[
            r().authority("example.org"),
            r().authority("www.example.com"),
        ],
    );
    assert_rule_matches(
        op(json!({"hosts": ["Secret.COM"]})),
        &[r().authority("secret.com")],
        &[],
    );
}

#[test]
fn host_without_port_does_not_match_host_with_port() {
    assert_rule_matches(
        op(json!({"hosts": ["example.com"]})),
        &[],
        &[
            r().authority("example.com:80"),
            r().authority("example.com:443"),
            r().authority("example.com:"),
            r().authority("example.com."),
        ],
    );
    assert_rule_matches(
        op(json!({"hosts": ["example.com", "example.com:*"]})),
        &[
            r().authority("example.com"),
            r().authority("example.com:8080"),
        ],
        &[r().authority("example.org:80")],
    );
}

#[test]
fn host_prefix_suffix_and_presence() {
    assert_rule_matches(
        op(json!({"hosts": ["*.example.com"]})),
        &[
            r().authority("api.example.com"),
            r().authority("DENY.SUFFIX.EXAMPLE.COM"),
        ],
        &[
            r().authority("example.com"),
            r().authority("api.example.com:80"),
        ],
    );
    assert_rule_matches(
        op(json!({"hosts": ["api.*"]})),
        &[r().authority("api.example.com"), r().authority("API.x")],
        &[r().authority("www.api.com")],
    );
    // `*` is presence for hosts (§5): even an empty authority.
    assert_rule_matches(
        op(json!({"hosts": ["*"]})),
        &[r().authority("anything:1"), r().authority("")],
        &[],
    );
}

#[test]
fn not_hosts_is_case_insensitive() {
    assert_rule_matches(
        op(json!({"notHosts": ["admin.example.com"]})),
        &[r().authority("www.example.com")],
        &[
            r().authority("admin.example.com"),
            r().authority("ADMIN.example.com"),
        ],
    );
}

// ---------------------------------------------------------------------------------------
// ports

#[test]
fn ports_match_the_destination_port() {
    assert_rule_matches(
        op(json!({"ports": ["8080", "9090"]})),
        &[r().port(8080), r().port(9090)],
        &[r().port(80), r().port(18080)],
    );
    assert_rule_matches(
        op(json!({"notPorts": ["8080"]})),
        &[r().port(9090)],
        &[r().port(8080)],
    );
}

#[test]
fn ports_zero_and_65535_are_valid() {
    assert_rule_matches(
        op(json!({"ports": ["0", "65535"]})),
        &[r().port(65535), r().port(0)],
        &[r().port(1)],
    );
}

// ---------------------------------------------------------------------------------------
// methods

#[test]
fn methods_are_case_sensitive() {
    assert_rule_matches(
        op(json!({"methods": ["GET", "HEAD"]})),
        &[r().method("GET"), r().method("HEAD")],
        &[
            r().method("get"),
            r().method("Get"),
            r().method("POST"),
            r().method("GET "),
        ],
    );
    assert_rule_matches(op(json!({"methods": ["get"]})), &[], &[r().method("GET")]);
}

#[test]
fn methods_star_and_not_methods() {
    assert_rule_matches(op(json!({"methods": ["*"]})), &[r().method("PATCH")], &[]);
    assert_rule_matches(
        op(json!({"notMethods": ["DELETE"]})),
        &[r().method("GET"), r().method("delete")],
        &[r().method("DELETE")],
    );
}

// ---------------------------------------------------------------------------------------
// paths (§5, §7, known-bypasses A)

fn p(path: &str) -> Req {
    Req::get(path)
}

#[test]
fn path_exact() {
    assert_rule_matches(
        op(json!({"paths": ["/admin"]})),
        &[p("/admin")],
        &[
            p("/admin/"),
            p("/Admin"),
            p("/ADMIN"),
            p("/administrator"),
            p("/x/admin"),
        ],
    );
}

#[test]
fn path_matching_ignores_query_and_fragment() {
    // §7: url_path (query and fragment removed); known-bypasses A3/A4.
    assert_rule_matches(
        op(json!({"paths": ["/admin"]})),
        &[
            p("/admin?"),
            p("/admin?a=b"),
            p("/admin?/../x"),
            p("/admin#x"),
            p("/admin#"),
            p("/admin?x#y"),
        ],
        // An encoded `#` is not a fragment.
        &[p("/admin%23x")],
    );
    let e = allow_rule(op(json!({"paths": ["/public"]})));
    assert!(p("/public?admin=1").allowed(&e));
}

#[test]
fn path_prefix() {
    assert_rule_matches(
        op(json!({"paths": ["/api/*"]})),
        &[p("/api/"), p("/api/x"), p("/api/x/y"), p("/api/x?q=1")],
        &[p("/api"), p("/apix"), p("/x/api/y")],
    );
    // Known-bypasses A8: `/admin*` also matches `/administrator`.
    assert_rule_matches(
        op(json!({"paths": ["/admin*"]})),
        &[p("/administrator"), p("/admin")],
        &[p("/Admin")],
    );
}

#[test]
fn path_suffix() {
    assert_rule_matches(
        op(json!({"paths": ["*.js"]})),
        &[p("/a/b.js"), p("/b.js?v=1")],
        &[p("/b.jsx"), p("/b.JS")],
    );
}

#[test]
fn path_star_matches_any_non_empty_path() {
    assert_rule_matches(
        op(json!({"paths": ["*"]})),
        &[p("/"), p("/anything"), p("/a?b")],
        &[],
    );
}

#[test]
fn star_in_the_middle_of_a_path_is_literal() {
    // §5 rule 4, issue #46910.
    assert_rule_matches(
        op(json!({"paths": ["/service/*health"]})),
        &[p("/service/*health")],
        &[p("/service/xhealth"), p("/service/health")],
    );
    // `*abc*` is suffix `abc*` with a literal trailing star.
    assert_rule_matches(
        op(json!({"paths": ["*abc*"]})),
        &[p("/xabc*")],
        &[p("/xabcd"), p("/abc")],
    );
}

#[test]
fn not_paths_and_paths_together() {
    assert_rule_matches(
        op(json!({"paths": ["/api/*"], "notPaths": ["/api/admin"]})),
        &[p("/api/users"), p("/api/admin/x")],
        &[p("/api/admin"), p("/api/admin?x=1"), p("/other")],
    );
}

#[test]
fn path_templates_follow_the_istio_integration_table() {
    // §7.1, TestAuthz_PathTemplating.
    let rule = op(json!({"paths": ["/allow/admin/{**}", "/foo/{*}/bar/{**}", "/store/{**}/cart"]}));
    assert_rule_matches(
        rule,
        &[
            p("/allow/admin/"),
            p("/allow/admin/temp"),
            p("/allow/admin/temp.txt"),
            p("/allow/admin/foo/temp.txt"),
            p("/foo/buzz/bar/bat.txt"),
            p("/foo/buzz/bar/bat.temp.txt"),
            p("/foo/buzz/bar/bat/fuzz.txt"),
            p("/foo/buzz/bar/bat"),
            p("/store//cart"),
            p("/store/foo/cart"),
            p("/store/foo/bar/cart"),
        ],
        &[
            p("/allow/admin"),
            p("/allow/user/"),
            p("/allow"),
            p("/foo/bar/bat.txt"),
            p("/foo//bar/bat.txt"),
            p("/store/cart"),
        ],
    );
}

#[test]
fn path_template_strips_the_query_before_matching() {
    // §7.1 "the whole path (query/fragment removed) must fully match".
    assert_rule_matches(
        op(json!({"paths": ["/items/{*}"]})),
        &[p("/items/42"), p("/items/42?x=1")],
        &[p("/items/"), p("/items/42/x"), p("/items")],
    );
}

#[test]
fn path_template_single_segment_accepts_percent_encoding() {
    // Known-bypasses A9: `%` is a template literal character.
    assert_rule_matches(
        op(json!({"paths": ["/foo/{*}/bar"]})),
        &[p("/foo/a%2Fb/bar")],
        &[p("/foo/a/b/bar")],
    );
}

#[test]
fn path_template_operators_match_a_star() {
    // Envoy 1.40's uri_template matcher (the RBAC filter istiod configures) matches `*` in `{*}`
    // and `{**}` (differential test, seed 13): `DENY /admin/{*}` must deny `/admin/*`.
    assert_rule_matches(
        op(json!({"paths": ["/admin/{*}", "/files/{**}"]})),
        &[
            p("/admin/*"),
            p("/admin/a*b"),
            p("/files/*/x*"),
            p("/files/**"),
        ],
        &[p("/admin/*/x"), p("/admin/"), p("/other/*")],
    );
}

// ---------------------------------------------------------------------------------------
// boolean structure (§4)

#[test]
fn two_from_entries_are_or() {
    let rule = json!({"from": [
        {"source": {"principals": ["cluster.local/ns/foo/sa/bar"]}},
        {"source": {"ipBlocks": ["192.168.0.0/16"]}},
    ]});
    assert_rule_matches(
        rule,
        &[r().uri(BAR), r().source_ip("192.168.1.1")],
        &[r().uri("spiffe://cluster.local/ns/foo/sa/x")],
    );
}

#[test]
fn fields_within_one_source_are_and() {
    let rule =
        src(json!({"principals": ["cluster.local/ns/foo/sa/bar"], "ipBlocks": ["192.168.0.0/16"]}));
    assert_rule_matches(
        rule,
        &[r().uri(BAR).source_ip("192.168.1.1")],
        &[
            r().uri(BAR),
            r().source_ip("192.168.1.1"),
            r().uri("spiffe://x/ns/foo/sa/y").source_ip("192.168.1.1"),
        ],
    );
}

#[test]
fn values_within_one_field_are_or() {
    assert_rule_matches(
        src(json!({"namespaces": ["a", "b"]})),
        &[
            r().uri("spiffe://td/ns/a/sa/x"),
            r().uri("spiffe://td/ns/b/sa/x"),
        ],
        &[r().uri("spiffe://td/ns/c/sa/x")],
    );
    assert_rule_matches(
        src(json!({"notNamespaces": ["a", "b"]})),
        &[r().uri("spiffe://td/ns/c/sa/x")],
        &[
            r().uri("spiffe://td/ns/a/sa/x"),
            r().uri("spiffe://td/ns/b/sa/x"),
        ],
    );
}

#[test]
fn values_and_not_values_of_one_field_are_and() {
    assert_rule_matches(
        src(json!({"principals": ["cluster.local/ns/foo/*"],
                "notPrincipals": ["cluster.local/ns/foo/sa/bar"]})),
        &[r().uri("spiffe://cluster.local/ns/foo/sa/other")],
        &[
            r().uri(BAR),
            r().uri("spiffe://cluster.local/ns/x/sa/y"),
            r().plaintext(),
        ],
    );
}

#[test]
fn from_to_and_when_are_and() {
    let rule = json!({
        "from": [{"source": {"namespaces": ["foo"]}}],
        "to": [{"operation": {"methods": ["GET"]}}],
        "when": [{"key": "request.headers[x-env]", "values": ["prod"]}],
    });
    let ok = r().uri(BAR).header("x-env", "prod");
    assert_rule_matches(
        rule,
        std::slice::from_ref(&ok),
        &[
            ok.clone().plaintext(),
            ok.clone().method("POST"),
            r().uri(BAR).header("x-env", "dev"),
        ],
    );
}

#[test]
fn two_to_entries_are_or_and_fields_within_one_operation_are_and() {
    let rule = json!({"to": [
        {"operation": {"methods": ["GET"], "paths": ["/read"]}},
        {"operation": {"methods": ["POST"], "paths": ["/write"]}},
    ]});
    assert_rule_matches(
        rule,
        &[p("/read"), p("/write").method("POST")],
        &[p("/write"), p("/read").method("POST")],
    );
}

#[test]
fn multiple_when_conditions_are_and() {
    let rule = json!({"when": [
        {"key": "request.headers[x-a]", "values": ["1"]},
        {"key": "request.headers[x-b]", "values": ["2"]},
    ]});
    assert_rule_matches(
        rule,
        &[r().header("x-a", "1").header("x-b", "2")],
        &[r().header("x-a", "1"), r().header("x-b", "2"), r()],
    );
}

#[test]
fn condition_values_and_not_values_are_and() {
    let rule = json!({"when": [{"key": "request.headers[x-role]", "values": ["a*"],
        "notValues": ["admin"]}]});
    assert_rule_matches(
        rule,
        &[r().header("x-role", "alice")],
        &[
            r().header("x-role", "admin"),
            r().header("x-role", "bob"),
            r(),
        ],
    );
}

// ---------------------------------------------------------------------------------------
// more path and identity edges

#[test]
fn path_prefix_and_suffix_ignore_the_query_string() {
    // §7: the query is removed before matching, so it can neither satisfy nor break a match.
    assert_rule_matches(
        op(json!({"paths": ["/public*"]})),
        &[p("/public/x?y=1")],
        &[p("/x?/public"), p("/admin?next=/public")],
    );
    assert_rule_matches(
        op(json!({"paths": ["*.js"]})),
        &[p("/app.js?v=2")],
        &[p("/admin?x=.js"), p("/admin#.js")],
    );
}

#[test]
fn not_paths_ignore_the_query_string() {
    // Known-bypasses A4: `ALLOW notPaths ["/admin"]` must not let `/admin?x` through.
    assert_rule_matches(
        op(json!({"notPaths": ["/admin"]})),
        &[p("/public"), p("/public?/admin")],
        &[p("/admin"), p("/admin?x=1"), p("/admin#top")],
    );
}

#[test]
fn path_template_ignores_the_fragment() {
    assert_rule_matches(
        op(json!({"paths": ["/items/{*}"]})),
        &[p("/items/42#x")],
        &[p("/items/#x")],
    );
}

#[test]
fn principal_not_in_five_part_form_is_not_expanded_to_aliases() {
    // §6.1: only principals of exactly five `/`-separated parts are expanded.
    let rule = src(json!({"principals": ["cluster.local/ns/foo/*"]}));
    assert!(td_allowed(
        rule.clone(),
        "spiffe://cluster.local/ns/foo/sa/bar"
    ));
    assert!(!td_allowed(rule, "spiffe://td1/ns/foo/sa/bar"));
}

#[test]
fn absent_connection_attributes_never_match_positive_fields_and_always_match_negative() {
    // §9: absent attribute => positive false, not* true.
    let mut bare = r();
    bare.conn.source_ip = None;
    bare.conn.remote_ip = None;
    bare.conn.destination_ip = None;
    bare.conn.destination_port = None;
    bare.conn.sni = None;
    for (positive, negative) in [
        (
            src(json!({"ipBlocks": ["0.0.0.0/0"]})),
            src(json!({"notIpBlocks": ["0.0.0.0/0"]})),
        ),
        (
            src(json!({"remoteIpBlocks": ["0.0.0.0/0"]})),
            src(json!({"notRemoteIpBlocks": ["0.0.0.0/0"]})),
        ),
        (
            op(json!({"ports": ["8080"]})),
            op(json!({"notPorts": ["8080"]})),
        ),
        (
            when("destination.ip", &["0.0.0.0/0"]),
            when_not("destination.ip", &["0.0.0.0/0"]),
        ),
        (
            when("connection.sni", &["*"]),
            when_not("connection.sni", &["*"]),
        ),
    ] {
        assert_rule_matches(positive, &[], std::slice::from_ref(&bare));
        assert_rule_matches(negative, std::slice::from_ref(&bare), &[]);
    }
}

#[test]
fn absent_authority_never_matches_hosts_and_always_matches_not_hosts() {
    let headers = vec![
        (":method".to_string(), b"GET".to_vec()),
        (":path".to_string(), b"/".to_vec()),
    ];
    let conn = r().conn;
    let decide = |e: &meshguard_core::plugin::engine::Engine| {
        e.decide(
            meshguard_core::request::request_view::Headers::new(&headers),
            &conn,
        )
        .is_allowed()
    };
    assert!(!decide(&allow_rule(op(json!({"hosts": ["*"]})))));
    assert!(decide(&allow_rule(op(
        json!({"notHosts": ["example.com"]})
    ))));
    assert!(!decide(&deny_rule(op(json!({"notHosts": ["*"]})))));
}

#[test]
fn not_principals_with_non_spiffe_certificate() {
    assert_rule_matches(
        src(json!({"notPrincipals": ["cluster.local/ns/foo/sa/bar"]})),
        &[
            r().dns("bar.foo.svc.cluster.local"),
            r().subject("CN=bar"),
            r().subject(BAR),
        ],
        &[r().uri(BAR)],
    );
}

#[test]
fn cluster_local_principal_means_the_configured_trust_domain() {
    // §6.1: `cluster.local` in a policy points at the local trust domain (the bundle is
    // [trustDomain, aliases...] = [td1]); istiod rewrites the principal even without aliases.
    let config = json!({
        "workload": {"namespace": NS},
        "trustDomain": "td1",
        "resources": [ap(NS, "p",
            json!({"rules": [src(json!({"principals": ["cluster.local/ns/foo/sa/bar"]}))]}))],
    });
    let e = load_ok(&config);
    assert!(r().uri("spiffe://td1/ns/foo/sa/bar").allowed(&e));
    assert!(!r().uri("spiffe://cluster.local/ns/foo/sa/bar").allowed(&e));
}
