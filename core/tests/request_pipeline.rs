//! The request pipeline (`plugin::request_pipeline::decide_request`), natively: Istio's order
//! (direction, Sidecar egress, STRICT mTLS, the token, authorization) and the outcome the
//! filter applies (reply, header edits, filter state, counters).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;
use meshguard_core::authn::authenticator::HeaderEdit;
use meshguard_core::plugin::counters::{Counter, PolicyOutcome};
use meshguard_core::plugin::engine::Verdict;
use meshguard_core::plugin::request_pipeline::{
    Side, Stage, DENY_BODY, EGRESS_DENIED_DETAILS, MTLS_REQUIRED_BODY, MTLS_REQUIRED_DETAILS,
};
use serde_json::{json, Value};

/// An inline JWKS with one HS256 key.
const JWKS: &str = r#"{"keys": [{"kty": "oct", "alg": "HS256", "kid": "k",
    "k": "c2VjcmV0LWtleS1mb3ItZnV6emluZy0zMi1ieXRlcyEh"}]}"#;

fn sidecar_registry_only(hosts: &[&str]) -> Value {
    json!({
        "workload": {"namespace": NS, "labels": {"app": "b"}},
        "outboundTrafficPolicy": "REGISTRY_ONLY",
        "resources": [{"apiVersion": "networking.istio.io/v1", "kind": "Sidecar",
            "metadata": {"name": "sc", "namespace": NS},
            "spec": {"egress": [{"hosts": hosts}]}}],
    })
}

fn strict_with_jwt() -> Value {
    cfg(vec![
        json!({"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
            "metadata": {"name": "default", "namespace": NS},
            "spec": {"mtls": {"mode": "STRICT"}}}),
        json!({"apiVersion": "security.istio.io/v1", "kind": "RequestAuthentication",
            "metadata": {"name": "ra", "namespace": NS},
            "spec": {"jwtRules": [{"issuer": "https://issuer.example.com",
                "jwks": JWKS}]}}),
    ])
}

#[test]
fn outbound_only_the_sidecar_egress_list_applies() {
    let e = load_ok(&sidecar_registry_only(&["./*"]));
    let listed = run_pipeline(&e, &Req::get("/").authority("svc:80"), Side::Outbound);
    assert_eq!(listed.verdict, Verdict::Allow);
    assert_eq!(listed.stage, Stage::EgressAllowed);
    assert_eq!(listed.decision_state.as_deref(), Some("allow egress"));

    let out = run_pipeline(
        &e,
        &Req::get("/").authority("www.example.com"),
        Side::Outbound,
    );
    assert_eq!(out.verdict, Verdict::Deny);
    let reply = out.reply.unwrap();
    assert_eq!(
        (reply.status, reply.details.as_str()),
        (403, EGRESS_DENIED_DETAILS)
    );
    assert!(
        reply
            .body
            .starts_with("meshguard: egress to www.example.com is not allowed by Sidecar"),
        "{}",
        reply.body
    );
    assert_eq!(
        out.decision_state.as_deref(),
        Some("deny egress[www.example.com]")
    );
    assert_eq!(
        out.counters.counters().collect::<Vec<_>>(),
        [Counter::Denied]
    );

    // The same request on the inbound side: egress does not apply.
    let inbound = run_pipeline(
        &e,
        &Req::get("/").authority("www.example.com"),
        Side::Inbound,
    );
    assert_eq!(inbound.verdict, Verdict::Allow);
}

#[test]
fn strict_mtls_is_checked_before_the_token() {
    let e = load_ok(&strict_with_jwt());
    // Plaintext with a malformed token: STRICT answers first, not the 401.
    let req = Req::get("/")
        .plaintext()
        .header("authorization", "Bearer not-a-jwt");
    let out = run_pipeline(&e, &req, Side::Inbound);
    assert!(
        matches!(out.stage, Stage::MtlsRequired { .. }),
        "{:?}",
        out.stage
    );
    let reply = out.reply.unwrap();
    assert_eq!(
        (reply.status, reply.body.as_str(), reply.details.as_str()),
        (403, MTLS_REQUIRED_BODY, MTLS_REQUIRED_DETAILS)
    );

    // With a client certificate the token is checked: 401 from jwt_authn's rules.
    let req = Req::get("/")
        .uri("spiffe://cluster.local/ns/foo/sa/bar")
        .header("authorization", "Bearer not-a-jwt");
    let out = run_pipeline(&e, &req, Side::Inbound);
    assert!(
        matches!(out.stage, Stage::TokenRejected(_)),
        "{:?}",
        out.stage
    );
    let reply = out.reply.unwrap();
    assert_eq!(reply.status, 401);
    let challenge = reply
        .headers
        .iter()
        .find(|(k, _)| k == "www-authenticate")
        .map(|(_, v)| v.as_str());
    let expected = format!(
        "Bearer realm=\"http://{}/\", error=\"invalid_token\"",
        req.authority
    );
    assert_eq!(challenge, Some(expected.as_str()));
}

#[test]
fn a_denial_is_the_rbac_reply_and_counts_its_policy() {
    let e = deny_rule(to(json!({"paths": ["/admin"]})));
    let out = run_pipeline(&e, &Req::get("/admin"), Side::Inbound);
    assert_eq!(out.verdict, Verdict::Deny);
    let reply = out.reply.unwrap();
    assert_eq!(
        (reply.status, reply.body.as_str(), reply.details.as_str()),
        (
            403,
            DENY_BODY,
            format!("rbac_access_denied_matched_policy[{}]", id(NS, "p", 0)).as_str()
        )
    );
    assert_eq!(out.decision_state, None);
    assert_eq!(
        out.counters.policies().collect::<Vec<_>>(),
        [(0, PolicyOutcome::Denied)]
    );
    assert!(out.header_edits.is_empty());

    let ok = run_pipeline(&e, &Req::get("/public"), Side::Inbound);
    assert_eq!(ok.verdict, Verdict::Allow);
    assert!(ok.reply.is_none());
    assert_eq!(
        ok.counters.counters().collect::<Vec<_>>(),
        [Counter::Allowed]
    );
}

#[test]
fn a_denial_without_a_matching_allow_rule_names_no_policy() {
    let e = allow_rule(to(json!({"paths": ["/public"]})));
    let out = run_pipeline(&e, &Req::get("/admin"), Side::Inbound);
    let reply = out.reply.unwrap();
    assert_eq!(
        (reply.status, reply.details.as_str()),
        (403, "rbac_access_denied_matched_policy[none]")
    );
}

#[test]
fn authentication_edits_apply_only_to_allowed_requests_and_only_to_present_headers() {
    let e = load_ok(&cfg(vec![json!({
        "apiVersion": "security.istio.io/v1", "kind": "RequestAuthentication",
        "metadata": {"name": "ra", "namespace": NS},
        "spec": {"jwtRules": [{"issuer": "https://issuer.example.com", "jwks": JWKS,
            "outputPayloadToHeader": "x-jwt-payload"}]}})]));
    // No token: nothing to verify; the client's copy of the output header is removed.
    let spoofed = Req::get("/").header("x-jwt-payload", "forged");
    let out = run_pipeline(&e, &spoofed, Side::Inbound);
    assert_eq!(out.verdict, Verdict::Allow);
    assert_eq!(
        out.header_edits,
        [HeaderEdit::Remove("x-jwt-payload".to_string())]
    );
    let plain = run_pipeline(&e, &Req::get("/"), Side::Inbound);
    assert!(plain.header_edits.is_empty(), "{:?}", plain.header_edits);
}

#[test]
fn the_authorization_decision_is_filter_state_only_with_decision_filter_state() {
    let spec = json!({"action": "DENY", "rules": [to(json!({"paths": ["/admin"]}))]});
    let mut config = cfg(vec![ap(NS, "p", spec)]);
    config["decisionFilterState"] = json!(true);
    let e = load_ok(&config);
    let denied = run_pipeline(&e, &Req::get("/admin"), Side::Inbound);
    assert_eq!(
        denied.decision_state.as_deref(),
        Some(format!("deny {}", id(NS, "p", 0)).as_str())
    );
    let allowed = run_pipeline(&e, &Req::get("/x"), Side::Inbound);
    assert_eq!(allowed.decision_state.as_deref(), Some("allow none"));
    assert_eq!(allowed.response_decision_header, None);
}
