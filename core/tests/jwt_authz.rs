//! Authorization with JWT identities (AuthorizationPolicy `requestPrincipals`,
//! `request.auth.*` conditions) evaluated on the claims `Authenticator::authenticate` produced,
//! read independently from `../shared/reference/authz-semantics.md` §5, §6.5, §8, §9, §14,
//! `jwt.md` §3.6 / §4.2 and `known-bypasses.md` §F (F1, F8, F10, F11).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod jwt_support;

use jwt_support::*;
use meshguard_core::authn::jwt::JwtFailure;
use meshguard_core::plugin::engine::Engine;
use serde_json::{json, Value};

/// RequestAuthentication for [`ISS`], [`KC_ISS`] and `foo` (all RS256 `rsa-1`) plus policies.
fn engine_with(rule_extra: Value, policies: Vec<Value>) -> Engine {
    let mut resources = vec![ra_rules(vec![
        rule(ISS, &jwks_rsa(), rule_extra.clone()),
        rule(KC_ISS, &jwks_rsa(), rule_extra.clone()),
        rule("foo", &jwks_rsa(), rule_extra.clone()),
        rule("https://ex.com", &jwks_rsa(), rule_extra.clone()),
        rule("https://x", &jwks_rsa(), rule_extra),
    ])];
    resources.extend(policies);
    load_ok(&cfg(resources))
}

fn allow(rule: Value) -> Engine {
    engine_with(
        json!({}),
        vec![ap(NS, "p", json!({"action": "ALLOW", "rules": [rule]}))],
    )
}

fn deny(rule: Value) -> Engine {
    engine_with(
        json!({}),
        vec![ap(NS, "p", json!({"action": "DENY", "rules": [rule]}))],
    )
}

fn from(source: Value) -> Value {
    json!({"from": [{"source": source}]})
}

fn when(key: &str, values: &[&str]) -> Value {
    json!({"when": [{"key": key, "values": values}]})
}

fn when_not(key: &str, not_values: &[&str]) -> Value {
    json!({"when": [{"key": key, "notValues": not_values}]})
}

/// A request carrying a valid RS256 token with `iss`, `sub` and extra claims.
fn with_token(iss: &str, sub: &str, extra: Value) -> Req {
    Req::get("/api").bearer(&rs256(&keys().rsa, payload(iss, sub, extra)))
}

/// A request carrying a valid token with exactly this payload (plus a 1 h expiry).
fn with_payload(mut p: Value) -> Req {
    p["exp"] = json!(NOW + 3600);
    Req::get("/api").bearer(&rs256(&keys().rsa, p))
}

fn no_token() -> Req {
    Req::get("/api")
}

// =========================================================================================
// requestPrincipals (authz-semantics §6.5)
// =========================================================================================

fn principal_allows(pattern: &str, req: &Req) -> bool {
    allowed(&allow(from(json!({ "requestPrincipals": [pattern] }))), req)
}

#[test]
fn request_principal_exact_iss_slash_sub() {
    let pattern = format!("{ISS}/alice");
    assert!(principal_allows(
        &pattern,
        &with_token(ISS, "alice", json!({}))
    ));
    assert!(!principal_allows(
        &pattern,
        &with_token(ISS, "bob", json!({}))
    ));
    assert!(!principal_allows(
        &pattern,
        &with_token(ISS, "alice2", json!({}))
    ));
    assert!(!principal_allows(
        &pattern,
        &with_token(ISS2_CONFIGURED, "alice", json!({}))
    ));
    assert!(!principal_allows(&pattern, &no_token()));
}

/// An issuer that is configured (so the token verifies) but differs from [`ISS`].
const ISS2_CONFIGURED: &str = KC_ISS;

#[test]
fn request_principal_with_keycloak_issuer_containing_slashes() {
    // split at the LAST '/': iss "https://kc.example.com/realms/demo", sub "alice"
    let pattern = format!("{KC_ISS}/alice");
    assert!(principal_allows(
        &pattern,
        &with_token(KC_ISS, "alice", json!({}))
    ));
    assert!(!principal_allows(
        &pattern,
        &with_token(KC_ISS, "bob", json!({}))
    ));
}

#[test]
fn request_principal_issuer_wildcard_subject() {
    let pattern = format!("{ISS}/*");
    assert!(principal_allows(
        &pattern,
        &with_token(ISS, "alice", json!({}))
    ));
    assert!(principal_allows(
        &pattern,
        &with_token(ISS, "bob", json!({}))
    ));
    assert!(!principal_allows(
        &pattern,
        &with_token(KC_ISS, "alice", json!({}))
    ));
    // `*` is `.+`: an empty or missing sub does not match
    assert!(!principal_allows(&pattern, &with_token(ISS, "", json!({}))));
    assert!(!principal_allows(
        &pattern,
        &with_token(ISS, "x", json!({"sub": null}))
    ));
    assert!(!principal_allows(&pattern, &no_token()));
}

#[test]
fn request_principal_star_means_any_valid_jwt_with_iss_and_sub() {
    assert!(principal_allows("*", &with_token(ISS, "alice", json!({}))));
    assert!(principal_allows("*", &with_token(KC_ISS, "bob", json!({}))));
    assert!(!principal_allows("*", &no_token()));
    assert!(!principal_allows(
        "*",
        &with_token(ISS, "x", json!({"sub": null}))
    ));
    assert!(!principal_allows("*", &with_token(ISS, "", json!({}))));
}

#[test]
fn request_principal_any_issuer_exact_subject() {
    assert!(principal_allows(
        "*/alice",
        &with_token(ISS, "alice", json!({}))
    ));
    assert!(principal_allows(
        "*/alice",
        &with_token(KC_ISS, "alice", json!({}))
    ));
    assert!(!principal_allows(
        "*/alice",
        &with_token(ISS, "bob", json!({}))
    ));
    assert!(!principal_allows("*/alice", &no_token()));
}

#[test]
fn request_principal_subject_prefix() {
    let pattern = format!("{ISS}/svc-*");
    assert!(principal_allows(
        &pattern,
        &with_token(ISS, "svc-orders", json!({}))
    ));
    assert!(!principal_allows(
        &pattern,
        &with_token(ISS, "user-alice", json!({}))
    ));
    assert!(!principal_allows(
        &pattern,
        &with_token(KC_ISS, "svc-orders", json!({}))
    ));
}

#[test]
fn request_principal_issuer_suffix() {
    // `*.com/alice`: iss suffix ".com", sub exact "alice"
    assert!(principal_allows(
        "*.com/alice",
        &with_token(ISS, "alice", json!({}))
    ));
    assert!(principal_allows(
        "*example.com/alice",
        &with_token(ISS, "alice", json!({}))
    ));
    assert!(!principal_allows(
        "*.org/alice",
        &with_token(ISS, "alice", json!({}))
    ));
    assert!(!principal_allows(
        "*.com/alice",
        &with_token(ISS, "bob", json!({}))
    ));
}

#[test]
fn request_principal_without_slash_suffix_applies_to_sub() {
    // `*@ex.com` (no '/'): iss `.+`, sub suffix "@ex.com" (sic)
    assert!(principal_allows(
        "*@ex.com",
        &with_token(ISS, "alice@ex.com", json!({}))
    ));
    assert!(!principal_allows(
        "*@ex.com",
        &with_token(ISS, "alice@other.com", json!({}))
    ));
}

#[test]
fn request_principal_without_slash_prefix_applies_to_iss() {
    // `pre*` (no '/'): iss prefix, sub `.+`
    assert!(principal_allows(
        "fo*",
        &with_token("foo", "alice", json!({}))
    ));
    assert!(!principal_allows(
        "fo*",
        &with_token(ISS, "alice", json!({}))
    ));
    assert!(!principal_allows("fo*", &with_token("foo", "", json!({}))));
    // a URL issuer always contains '/', so `https://issuer*` is split at its last '/':
    // iss exact "https:/", sub prefix "issuer" -- it never matches an `https://issuer...` token
    assert!(!principal_allows(
        "https://issuer*",
        &with_token(ISS, "alice", json!({}))
    ));
}

#[test]
fn request_principal_without_slash_or_star_is_iss_with_empty_sub() {
    // `foo`: iss exact "foo", sub exact ""
    assert!(principal_allows("foo", &with_token("foo", "", json!({}))));
    assert!(!principal_allows(
        "foo",
        &with_token("foo", "alice", json!({}))
    ));
}

#[test]
fn request_principal_both_wildcards_compares_sub_literally() {
    // `*@ex.com/*`: iss suffix "@ex.com"... here with a configured issuer `https://ex.com`
    // the pattern `*ex.com/*` is iss suffix "ex.com" and sub LITERAL "*".
    assert!(!principal_allows(
        "*ex.com/*",
        &with_token("https://ex.com", "alice", json!({}))
    ));
    assert!(principal_allows(
        "*ex.com/*",
        &with_token("https://ex.com", "*", json!({}))
    ));
}

#[test]
fn subject_containing_a_slash_cannot_be_matched_exactly() {
    // known-bypasses F10: `https://x/a/b` splits into iss `https://x/a`, sub `b`.
    let req = with_token("https://x", "a/b", json!({}));
    assert!(!principal_allows("https://x/a/b", &req));
    assert!(principal_allows("https://x/*", &req));
}

#[test]
fn request_auth_principal_condition_behaves_like_request_principals() {
    let e = allow(when("request.auth.principal", &[&format!("{ISS}/alice")]));
    assert!(allowed(&e, &with_token(ISS, "alice", json!({}))));
    assert!(!allowed(&e, &with_token(ISS, "bob", json!({}))));
    assert!(!allowed(&e, &no_token()));
}

#[test]
fn authorization_sees_the_request_as_authentication_left_it() {
    // As Istio's RBAC after `jwt_authn`: the verified claim header is there (the client's copy
    // removed), the token header is gone (no forwardOriginalToken).
    let claim_header = |rule: Value| {
        engine_with(
            json!({"outputClaimToHeaders": [{"header": "x-sub", "claim": "sub"}]}),
            vec![ap(NS, "p", json!({"action": "ALLOW", "rules": [rule]}))],
        )
    };
    let spoofed = with_token(ISS, "alice", json!({})).header("x-sub", "mallory");
    assert!(allowed(
        &claim_header(when("request.headers[x-sub]", &["alice"])),
        &spoofed
    ));
    assert!(!allowed(
        &claim_header(when("request.headers[x-sub]", &["mallory"])),
        &spoofed
    ));
    assert!(!allowed(
        &claim_header(when("request.headers[authorization]", &["*"])),
        &spoofed
    ));
    let forwarded = engine_with(
        json!({"forwardOriginalToken": true}),
        vec![ap(
            NS,
            "p",
            json!({"action": "ALLOW", "rules": [when("request.headers[authorization]", &["*"])]}),
        )],
    );
    assert!(allowed(&forwarded, &with_token(ISS, "alice", json!({}))));
}

#[test]
fn not_request_principals_star_is_the_require_jwt_idiom() {
    // DENY notRequestPrincipals ["*"]: a request without JWT matches (absent attribute) and
    // is denied (403 from RBAC); a valid token passes.
    let e = deny(from(json!({"notRequestPrincipals": ["*"]})));
    let d = decide(&e, &no_token()).unwrap();
    assert!(!d.is_allowed());
    assert!(allowed(&e, &with_token(ISS, "alice", json!({}))));
    // token in an unconfigured location is "no token" too (known-bypasses F1)
    let elsewhere = Req::get("/api").header("x-token", &good_token());
    assert!(!allowed(&e, &elsewhere));
}

#[test]
fn allow_request_principals_star_denies_requests_without_token() {
    let e = allow(from(json!({"requestPrincipals": ["*"]})));
    assert!(!allowed(&e, &no_token()));
    assert!(allowed(&e, &with_token(ISS, "alice", json!({}))));
}

#[test]
fn invalid_token_is_rejected_before_authorization() {
    let e = allow(json!({}));
    let expired = Req::get("/api").bearer(&rs256(
        &keys().rsa,
        payload(ISS, "alice", json!({"exp": NOW - 3600})),
    ));
    assert_eq!(decide(&e, &expired).unwrap_err(), JwtFailure::Expired);
}

#[test]
fn not_request_principals_specific_value() {
    let e = deny(from(json!({"notRequestPrincipals": [format!("{ISS}/*")]})));
    assert!(allowed(&e, &with_token(ISS, "alice", json!({}))));
    assert!(!allowed(&e, &with_token(KC_ISS, "alice", json!({}))));
    assert!(!allowed(&e, &no_token()));
}

#[test]
fn cors_preflight_reaches_authorization_without_identity() {
    // known-bypasses F8: the preflight skips JWT validation, so a requestPrincipals ALLOW
    // denies it and a DENY notRequestPrincipals ["*"] denies it.
    let preflight = Req::new("OPTIONS", "/api")
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "POST")
        .bearer(&rs256(
            &keys().rsa,
            payload(ISS, "alice", json!({"exp": NOW - 3600})),
        ));
    let e = allow(from(json!({"requestPrincipals": ["*"]})));
    assert!(!allowed(&e, &preflight));
    let e = deny(from(json!({"notRequestPrincipals": ["*"]})));
    assert!(!allowed(&e, &preflight));
}

// =========================================================================================
// request.auth.claims (authz-semantics §8, jwt.md §4.2)
// =========================================================================================

fn kc() -> Req {
    with_payload(json!({
        "iss": KC_ISS, "sub": "alice", "aud": ["orders-api", "account"], "azp": "web-app",
        "scope": "openid profile orders.write",
        "realm_access": {"roles": ["default-roles-demo", "admin"]},
        "resource_access": {"orders-api": {"roles": ["orders.read", "orders.write"]},
                            "my.client": {"roles": ["x"]}},
        "groups": ["group-1", "group-2"],
        "group_str": "eng ops",
        "level": 5,
        "email_verified": true,
        "org": {"name": "acme"},
        "https://example.com/tenant": "t1",
        "empty": "",
    }))
}

fn claim_allows(key: &str, values: &[&str], req: &Req) -> bool {
    allowed(&allow(when(key, values)), req)
}

#[test]
fn nested_claim_list_matches_any_element() {
    assert!(claim_allows(
        "request.auth.claims[realm_access][roles]",
        &["admin"],
        &kc()
    ));
    assert!(!claim_allows(
        "request.auth.claims[realm_access][roles]",
        &["superuser"],
        &kc()
    ));
    assert!(claim_allows(
        "request.auth.claims[realm_access][roles]",
        &["superuser", "admin"],
        &kc()
    ));
    assert!(claim_allows(
        "request.auth.claims[resource_access][orders-api][roles]",
        &["orders.write"],
        &kc()
    ));
    assert!(claim_allows(
        "request.auth.claims[resource_access][my.client][roles]",
        &["x"],
        &kc()
    ));
    assert!(!claim_allows(
        "request.auth.claims[resource_access][account][roles]",
        &["orders.write"],
        &kc()
    ));
    assert!(claim_allows(
        "request.auth.claims[groups]",
        &["group-2"],
        &kc()
    ));
}

#[test]
fn claim_values_support_prefix_suffix_and_presence() {
    assert!(claim_allows(
        "request.auth.claims[realm_access][roles]",
        &["adm*"],
        &kc()
    ));
    assert!(claim_allows(
        "request.auth.claims[realm_access][roles]",
        &["*-demo"],
        &kc()
    ));
    assert!(claim_allows(
        "request.auth.claims[realm_access][roles]",
        &["*"],
        &kc()
    ));
    assert!(claim_allows(
        "request.auth.claims[org][name]",
        &["*"],
        &kc()
    ));
    // `*` is `.+`: an empty string claim is not "present"
    assert!(!claim_allows("request.auth.claims[empty]", &["*"], &kc()));
    // case-sensitive
    assert!(!claim_allows(
        "request.auth.claims[realm_access][roles]",
        &["Admin"],
        &kc()
    ));
}

#[test]
fn string_claim_matches_directly() {
    assert!(claim_allows(
        "request.auth.claims[org][name]",
        &["acme"],
        &kc()
    ));
    assert!(claim_allows("request.auth.claims[sub]", &["alice"], &kc()));
    assert!(claim_allows(
        "request.auth.claims[https://example.com/tenant]",
        &["t1"],
        &kc()
    ));
}

#[test]
fn scope_is_split_on_spaces() {
    assert!(claim_allows(
        "request.auth.claims[scope]",
        &["orders.write"],
        &kc()
    ));
    assert!(claim_allows(
        "request.auth.claims[scope]",
        &["openid"],
        &kc()
    ));
    assert!(!claim_allows(
        "request.auth.claims[scope]",
        &["orders.read"],
        &kc()
    ));
    // after the split the whole string no longer matches
    assert!(!claim_allows(
        "request.auth.claims[scope]",
        &["openid profile orders.write"],
        &kc()
    ));
    // the Istio integration example: ["append","write"] matches "write read"
    let req = with_token(ISS, "alice", json!({"scope": "write read"}));
    assert!(claim_allows(
        "request.auth.claims[scope]",
        &["append", "write"],
        &req
    ));
}

#[test]
fn permission_claim_is_split_too() {
    let req = with_token(
        ISS,
        "alice",
        json!({"permission": "read:orders write:orders"}),
    );
    assert!(claim_allows(
        "request.auth.claims[permission]",
        &["write:orders"],
        &req
    ));
}

#[test]
fn scope_given_as_a_list_is_matched_as_a_list() {
    let req = with_token(ISS, "alice", json!({"scope": ["a", "b c"]}));
    assert!(claim_allows("request.auth.claims[scope]", &["b c"], &req));
    assert!(!claim_allows("request.auth.claims[scope]", &["b"], &req));
}

#[test]
fn space_delimited_claims_splits_only_the_listed_claims() {
    let policy = ap(
        NS,
        "p",
        json!({"action": "ALLOW", "rules": [when("request.auth.claims[group_str]", &["ops"])]}),
    );
    let plain = engine_with(json!({}), vec![policy.clone()]);
    assert!(!allowed(&plain, &kc()));
    let split = engine_with(json!({"spaceDelimitedClaims": ["group_str"]}), vec![policy]);
    assert!(allowed(&split, &kc()));
    // not listed: the whole string still matches
    let whole = ap(
        NS,
        "p",
        json!({"action": "ALLOW", "rules": [when("request.auth.claims[group_str]", &["eng ops"])]}),
    );
    assert!(allowed(&engine_with(json!({}), vec![whole]), &kc()));
    // scope keeps being split when spaceDelimitedClaims is set
    let scope = ap(
        NS,
        "p",
        json!({"action": "ALLOW", "rules": [when("request.auth.claims[scope]", &["profile"])]}),
    );
    assert!(allowed(
        &engine_with(json!({"spaceDelimitedClaims": ["group_str"]}), vec![scope]),
        &kc()
    ));
}

#[test]
fn number_and_bool_claims_never_match_strings() {
    // authz-semantics §8, known-bypasses F11
    assert!(!claim_allows("request.auth.claims[level]", &["5"], &kc()));
    assert!(!claim_allows("request.auth.claims[level]", &["*"], &kc()));
    assert!(!claim_allows(
        "request.auth.claims[email_verified]",
        &["true"],
        &kc()
    ));
    assert!(!claim_allows(
        "request.auth.claims[email_verified]",
        &["*"],
        &kc()
    ));
}

#[test]
fn object_claims_never_match() {
    assert!(!claim_allows("request.auth.claims[org]", &["*"], &kc()));
    assert!(!claim_allows(
        "request.auth.claims[realm_access]",
        &["admin"],
        &kc()
    ));
}

#[test]
fn list_of_non_strings_never_matches() {
    let req = with_token(ISS, "alice", json!({"ids": [1, 2, true]}));
    assert!(!claim_allows("request.auth.claims[ids]", &["1"], &req));
    assert!(!claim_allows("request.auth.claims[ids]", &["*"], &req));
}

#[test]
fn missing_nested_claim_never_matches_and_not_values_holds() {
    assert!(!claim_allows(
        "request.auth.claims[realm_access][groups]",
        &["*"],
        &kc()
    ));
    assert!(!claim_allows(
        "request.auth.claims[nope][roles]",
        &["admin"],
        &kc()
    ));
    // walking through a non-object is "missing" too
    assert!(!claim_allows("request.auth.claims[sub][x]", &["*"], &kc()));
    // notValues on a missing claim: the condition is true (DENY fires)
    let e = deny(when_not("request.auth.claims[nope][roles]", &["admin"]));
    assert!(!allowed(&e, &kc()));
    let e = allow(when_not("request.auth.claims[nope][roles]", &["admin"]));
    assert!(allowed(&e, &kc()));
}

#[test]
fn not_values_on_a_present_claim() {
    let e = deny(when_not(
        "request.auth.claims[realm_access][roles]",
        &["admin"],
    ));
    assert!(allowed(&e, &kc())); // has admin: notValues false, DENY does not fire
    let non_admin = with_token(KC_ISS, "bob", json!({"realm_access": {"roles": ["user"]}}));
    assert!(!allowed(&e, &non_admin));
    // and without any token the claim is absent: DENY fires
    assert!(!allowed(&e, &no_token()));
}

#[test]
fn claim_conditions_never_match_without_a_token() {
    assert!(!claim_allows(
        "request.auth.claims[realm_access][roles]",
        &["*"],
        &no_token()
    ));
    assert!(!claim_allows("request.auth.audiences", &["*"], &no_token()));
    assert!(!claim_allows("request.auth.presenter", &["*"], &no_token()));
    assert!(!claim_allows("request.auth.principal", &["*"], &no_token()));
}

#[test]
fn separate_conditions_are_anded_values_are_ored() {
    let rule = json!({"when": [
        {"key": "request.auth.claims[realm_access][roles]", "values": ["admin"]},
        {"key": "request.auth.claims[scope]", "values": ["orders.read", "orders.write"]},
    ]});
    let e = allow(rule);
    assert!(allowed(&e, &kc()));
    let no_scope = with_token(
        KC_ISS,
        "alice",
        json!({"realm_access": {"roles": ["admin"]}, "scope": "openid"}),
    );
    assert!(!allowed(&e, &no_scope));
}

// =========================================================================================
// request.auth.audiences / request.auth.presenter (authz-semantics §8, §14)
// =========================================================================================

#[test]
fn audiences_condition_matches_any_aud_element_or_string() {
    assert!(claim_allows(
        "request.auth.audiences",
        &["orders-api"],
        &kc()
    ));
    assert!(claim_allows("request.auth.audiences", &["account"], &kc()));
    assert!(!claim_allows("request.auth.audiences", &["billing"], &kc()));
    let single = with_token(ISS, "alice", json!({"aud": "orders-api"}));
    assert!(claim_allows(
        "request.auth.audiences",
        &["orders-api"],
        &single
    ));
    assert!(claim_allows(
        "request.auth.audiences",
        &["orders-*"],
        &single
    ));
    let none = with_token(ISS, "alice", json!({}));
    assert!(!claim_allows("request.auth.audiences", &["*"], &none));
}

#[test]
fn presenter_condition_matches_azp() {
    assert!(claim_allows("request.auth.presenter", &["web-app"], &kc()));
    assert!(!claim_allows(
        "request.auth.presenter",
        &["mobile-app"],
        &kc()
    ));
    let none = with_token(ISS, "alice", json!({}));
    assert!(!claim_allows("request.auth.presenter", &["*"], &none));
}

// =========================================================================================
// A realistic Keycloak setup (jwt.md §4)
// =========================================================================================

#[test]
fn keycloak_admin_only_policy() {
    let policies = vec![
        ap(
            NS,
            "require-jwt",
            json!({"action": "DENY",
                "rules": [{"from": [{"source": {"notRequestPrincipals": ["*"]}}]}]}),
        ),
        ap(
            NS,
            "admins",
            json!({"action": "ALLOW", "rules": [{
                "from": [{"source": {"requestPrincipals": [format!("{KC_ISS}/*")]}}],
                "to": [{"operation": {"methods": ["POST"], "paths": ["/orders*"]}}],
                "when": [{"key": "request.auth.claims[realm_access][roles]", "values": ["admin"]},
                         {"key": "request.auth.presenter", "values": ["web-app"]}],
            }]}),
        ),
    ];
    let e = engine_with(json!({"audiences": ["orders-api"]}), policies);
    let token = rs256(
        &keys().rsa,
        json!({"iss": KC_ISS, "sub": "alice", "aud": "orders-api", "azp": "web-app",
            "exp": NOW + 60,
               "realm_access": {"roles": ["admin"]}}),
    );
    assert!(allowed(&e, &Req::new("POST", "/orders/1").bearer(&token)));
    assert!(!allowed(&e, &Req::new("GET", "/orders/1").bearer(&token)));
    assert!(!allowed(&e, &Req::new("POST", "/orders/1")));
    let user = rs256(
        &keys().rsa,
        json!({"iss": KC_ISS, "sub": "bob", "aud": "orders-api", "azp": "web-app", "exp": NOW + 60,
               "realm_access": {"roles": ["user"]}}),
    );
    assert!(!allowed(&e, &Req::new("POST", "/orders/1").bearer(&user)));
    let other_aud = rs256(
        &keys().rsa,
        json!({"iss": KC_ISS, "sub": "alice", "aud": "account", "azp": "web-app", "exp": NOW + 60,
               "realm_access": {"roles": ["admin"]}}),
    );
    assert_eq!(
        decide(&e, &Req::new("POST", "/orders/1").bearer(&other_aud)).unwrap_err(),
        JwtFailure::AudienceNotAllowed
    );
}

#[test]
fn claim_key_syntax_errors_are_rejected_at_load() {
    for key in [
        "request.auth.claims",
        "request.auth.claims[]",
        "request.auth.claims[a][]",
        "request.auth.claimsx[a]",
    ] {
        let config = cfg(vec![ap(
            NS,
            "p",
            json!({"action": "ALLOW", "rules": [when(key, &["x"])]}),
        )]);
        let e = load_err(&config);
        assert!(
            e.path
                .to_string()
                .starts_with("resources[0].spec.rules[0].when[0]"),
            "{key}: {e}"
        );
    }
}
