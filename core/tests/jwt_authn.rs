//! RequestAuthentication / Envoy `jwt_authn` behaviour, read independently from the references:
//! `../shared/reference/jwt.md` §2-§4, `authz-semantics.md` §14, `known-bypasses.md` §F, and
//! Envoy's `source/common/jwt/{jwt.cc,struct_utils.cc,status.cc}` and
//! `jwt_authn/authenticator.cc` where the references summarise them.
//!
//! Every rejection is checked with Envoy's exact status text and HTTP code.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod jwt_support;

use std::collections::HashSet;

use jwt_simple::prelude::*;
use jwt_support::*;
use meshguard_core::authn::authenticator::{AuthnState, HeaderEdit, Outcome};
use meshguard_core::authn::jwt::{JwksSource, KeySet};
use meshguard_core::authn::request_authentication::Keys;
use serde_json::{json, Value};

fn set(edits: &[HeaderEdit], name: &str) -> Option<String> {
    edits.iter().find_map(|e| match e {
        HeaderEdit::Append(h, v) if h == name => Some(v.clone()),
        _ => None,
    })
}

fn removes(edits: &[HeaderEdit], name: &str) -> bool {
    edits
        .iter()
        .any(|e| matches!(e, HeaderEdit::Remove(h) if h == name))
}

// =========================================================================================
// Algorithms and claims (jwt.md §3.1 supported algorithms, §4 Keycloak tokens)
// =========================================================================================

#[test]
fn rs256_token_verifies_and_claims_are_visible() {
    let engine = authn_engine(vec![rule(ISS, &jwks_all(), json!({}))]);
    let token = rs256(
        &keys().rsa,
        payload(ISS, "alice", json!({"email": "alice@example.com"})),
    );
    let run = authenticate(&engine, &Req::get("/").bearer(&token));
    assert_verified(&run.outcome);
    assert_eq!(claim(&run.outcome, &["iss"]), Some(json!(ISS)));
    assert_eq!(claim(&run.outcome, &["sub"]), Some(json!("alice")));
    assert_eq!(
        claim(&run.outcome, &["email"]),
        Some(json!("alice@example.com"))
    );
    // a Struct holds doubles, as Envoy's payload metadata does
    assert_eq!(
        claim(&run.outcome, &["exp"]),
        Some(json!((NOW + 3600) as f64))
    );
}

#[test]
fn ps256_token_verifies() {
    let engine = authn_engine(vec![rule(ISS, &jwks_all(), json!({}))]);
    let token = ps256(&keys().ps, payload(ISS, "alice", json!({})));
    assert_verified(&authenticate(&engine, &Req::get("/").bearer(&token)).outcome);
}

#[test]
fn es256_token_verifies() {
    let engine = authn_engine(vec![rule(ISS, &jwks_all(), json!({}))]);
    let token = es256(&keys().ec, payload(ISS, "alice", json!({})));
    assert_verified(&authenticate(&engine, &Req::get("/").bearer(&token)).outcome);
}

#[test]
fn eddsa_token_verifies() {
    let engine = authn_engine(vec![rule(ISS, &jwks_all(), json!({}))]);
    let token = eddsa(&keys().ed, payload(ISS, "alice", json!({})));
    assert_verified(&authenticate(&engine, &Req::get("/").bearer(&token)).outcome);
}

#[test]
fn hs256_token_verifies_with_inline_oct_key() {
    let engine = authn_engine(vec![rule(ISS, &jwks_all(), json!({}))]);
    let token = hs256(&keys().hs, payload(ISS, "alice", json!({})));
    assert_verified(&authenticate(&engine, &Req::get("/").bearer(&token)).outcome);
}

#[test]
fn hs256_token_with_another_secret_fails_verification() {
    let engine = authn_engine(vec![rule(ISS, &jwks_all(), json!({}))]);
    let other = HS256Key::generate().with_key_id("hs-1");
    let token = hs256(&other, payload(ISS, "alice", json!({})));
    assert_rejected(
        &authenticate(&engine, &Req::get("/").bearer(&token)).outcome,
        VERIFICATION_FAILS,
        401,
    );
}

#[test]
fn rsa_jwk_without_alg_and_kid_is_tried_for_a_token_with_kid() {
    // verify.cc: a key is skipped only if both sides have a kid and they differ, or the JWK
    // has an alg different from the token's.
    let k = keys();
    let engine = authn_engine(vec![rule(
        ISS,
        &jwks(&[rsa_jwk_components(&k.rsa, None)]),
        json!({}),
    )]);
    let token = good_token();
    assert_verified(&authenticate(&engine, &Req::get("/").bearer(&token)).outcome);
    // A PS256 token (kid `ps-1`, another RSA key) is tried against this kid-less, alg-less
    // RSA key (same key family) and fails on the signature, not on key selection.
    let ps = ps256(&k.ps, payload(ISS, "alice", json!({})));
    let run = authenticate(&engine, &Req::get("/").bearer(&ps));
    assert_rejected(&run.outcome, VERIFICATION_FAILS, 401);
    // An EdDSA token passes key selection too (the JWK has neither kid nor alg); an RSA key
    // verifies only RS*/PS* signatures, so it fails on the signature (verify.cc).
    let ed = eddsa(&k.ed, payload(ISS, "alice", json!({})));
    assert_rejected(
        &authenticate(&engine, &Req::get("/").bearer(&ed)).outcome,
        VERIFICATION_FAILS,
        401,
    );
}

#[test]
fn token_without_kid_tries_every_key_in_order() {
    let signer = ES256KeyPair::generate();
    let decoy = ES256KeyPair::generate();
    let set = jwks(&[
        ec_jwk(&decoy, "decoy"),
        rsa_jwk(&keys().rsa),
        ec_jwk(&signer, "real"),
    ]);
    let engine = authn_engine(vec![rule(ISS, &set, json!({}))]);
    let token = es256(&signer, payload(ISS, "alice", json!({})));
    assert!(Token::decode_metadata(&token).unwrap().key_id().is_none());
    assert_verified(&authenticate(&engine, &Req::get("/").bearer(&token)).outcome);
}

#[test]
fn header_typ_at_jwt_is_accepted() {
    let k = keys();
    let engine = authn_engine(vec![rule(ISS, &jwks_all(), json!({}))]);
    let opts = HeaderOptions {
        signature_type: Some("at+jwt".into()),
        ..HeaderOptions::default()
    };
    let token = k
        .rsa
        .sign_with_options(claims(payload(ISS, "alice", json!({}))), &opts)
        .unwrap();
    assert_verified(&authenticate(&engine, &Req::get("/").bearer(&token)).outcome);
}

#[test]
fn header_typ_is_not_checked_by_envoy() {
    // Envoy's Jwt::parseFromString reads only `alg` and `kid` from the header (jwt.cc);
    // `typ` is free-form (RFC 7515 §4.1.9). A correctly signed token with `typ: JOSE` verifies.
    let k = keys();
    let engine = authn_engine(vec![rule(ISS, &jwks_all(), json!({}))]);
    let opts = HeaderOptions {
        signature_type: Some("JOSE".into()),
        ..HeaderOptions::default()
    };
    let token = k
        .rsa
        .sign_with_options(claims(payload(ISS, "alice", json!({}))), &opts)
        .unwrap();
    assert_verified(&authenticate(&engine, &Req::get("/").bearer(&token)).outcome);
}

fn keycloak_payload(aud: Value) -> Value {
    json!({
        "exp": NOW + 300, "iat": NOW - 10, "jti": "1c9e2a3b-0000-4000-8000-000000000001",
        "iss": KC_ISS,
        "aud": aud,
        "sub": "f1b8a6c2-3d7e-4a2b-9c11-2b7e5d9a0f33",
        "typ": "Bearer",
        "azp": "web-app",
        "sid": "5c3a1e0e-aaaa-bbbb-cccc-000000000000",
        "acr": "1",
        "allowed-origins": ["https://app.example.com"],
        "scope": "openid profile orders.write",
        "email_verified": true,
        "preferred_username": "alice",
        "realm_access": {"roles": ["default-roles-demo", "offline_access", "admin"]},
        "resource_access": {"orders-api": {"roles": ["orders.read", "orders.write"]},
                            "account": {"roles": ["manage-account"]}}
    })
}

fn keycloak_jwks() -> String {
    // Keycloak publishes an RSA-OAEP `enc` key next to the RS256 `sig` key (jwt.md §4.1).
    let enc_key = RS256KeyPair::generate(2048).unwrap();
    let mut enc = rsa_jwk_components(&enc_key, Some("enc-key"));
    enc["use"] = json!("enc");
    enc["alg"] = json!("RSA-OAEP");
    let mut sig = rsa_jwk(&keys().rsa);
    sig["x5t"] = json!("c29tZS10aHVtYnByaW50");
    jwks(&[enc, sig])
}

#[test]
fn keycloak_token_with_string_audience() {
    let engine = authn_engine(vec![rule(
        KC_ISS,
        &keycloak_jwks(),
        json!({"audiences": ["orders-api"]}),
    )]);
    let token = rs256(&keys().rsa, keycloak_payload(json!("orders-api")));
    let run = authenticate(&engine, &Req::get("/orders").bearer(&token));
    assert_verified(&run.outcome);
    assert_eq!(claim(&run.outcome, &["aud"]), Some(json!("orders-api")));
    assert_eq!(claim(&run.outcome, &["azp"]), Some(json!("web-app")));
    // scope is split into a list for authorization (Istio always lists `scope`, `permission`)
    assert_eq!(
        claim(&run.outcome, &["scope"]),
        Some(json!(["openid", "profile", "orders.write"]))
    );
    assert_eq!(
        claim(&run.outcome, &["realm_access", "roles"]),
        Some(json!(["default-roles-demo", "offline_access", "admin"]))
    );
    assert_eq!(
        claim(&run.outcome, &["resource_access", "orders-api", "roles"]),
        Some(json!(["orders.read", "orders.write"]))
    );
    assert_eq!(claim(&run.outcome, &["email_verified"]), Some(json!(true)));
}

#[test]
fn keycloak_token_with_list_audience() {
    let engine = authn_engine(vec![rule(
        KC_ISS,
        &keycloak_jwks(),
        json!({"audiences": ["orders-api"]}),
    )]);
    let token = rs256(
        &keys().rsa,
        keycloak_payload(json!(["orders-api", "account"])),
    );
    let run = authenticate(&engine, &Req::get("/").bearer(&token));
    assert_verified(&run.outcome);
    let aud: HashSet<String> =
        serde_json::from_value(claim(&run.outcome, &["aud"]).unwrap()).unwrap();
    assert_eq!(
        aud,
        HashSet::from(["orders-api".to_string(), "account".to_string()])
    );
}

#[test]
fn keycloak_token_for_another_client_is_forbidden() {
    let engine = authn_engine(vec![rule(
        KC_ISS,
        &keycloak_jwks(),
        json!({"audiences": ["orders-api"]}),
    )]);
    let token = rs256(&keys().rsa, keycloak_payload(json!("account")));
    assert_rejected(
        &authenticate(&engine, &Req::get("/").bearer(&token)).outcome,
        AUDIENCE_NOT_ALLOWED,
        403,
    );
}

// =========================================================================================
// Token locations (jwt.md §3.3, authz-semantics §14, known-bypasses F1/F14)
// =========================================================================================

#[test]
fn no_token_passes_without_identity() {
    let engine = rsa_engine(json!({}));
    let run = authenticate(&engine, &Req::get("/"));
    assert_no_token(&run.outcome);
    assert!(run.edits.is_empty(), "{:?}", run.edits);
}

#[test]
fn no_request_authentication_means_no_token() {
    let engine = load_ok(&cfg(vec![]));
    assert!(engine.authenticator().is_empty());
    let run = authenticate(&engine, &Req::get("/").bearer(&good_token()));
    assert_no_token(&run.outcome);
}

#[test]
fn default_locations_are_bearer_header_and_access_token_param() {
    let engine = rsa_engine(json!({}));
    let token = good_token();
    assert_verified(&authenticate(&engine, &Req::get("/").bearer(&token)).outcome);
    assert_verified(&authenticate(&engine, &Req::get(&format!("/x?access_token={token}"))).outcome);
    assert_verified(
        &authenticate(
            &engine,
            &Req::get(&format!("/x?a=1&access_token={token}&b=2")),
        )
        .outcome,
    );
}

#[test]
fn default_locations_do_not_include_other_headers_params_or_cookies() {
    let engine = rsa_engine(json!({}));
    let token = good_token();
    for req in [
        Req::get("/").header("x-jwt-assertion", &token),
        Req::get("/").header("x-auth", &format!("Bearer {token}")),
        Req::get(&format!("/?token={token}")),
        Req::get(&format!("/?my_access_token={token}")),
        Req::get("/").header("cookie", &format!("access_token={token}")),
    ] {
        assert_no_token(&authenticate(&engine, &req).outcome);
    }
}

#[test]
fn invalid_token_in_unconfigured_location_is_ignored() {
    // Even garbage or an expired token is "missing" when it is somewhere not configured.
    let engine = rsa_engine(json!({"fromHeaders": [{"name": "x-jwt", "prefix": "Bearer "}]}));
    let expired = rs256(
        &keys().rsa,
        payload(ISS, "alice", json!({"exp": NOW - 3600})),
    );
    assert_no_token(&authenticate(&engine, &Req::get("/").bearer(&expired)).outcome);
    assert_no_token(
        &authenticate(&engine, &Req::get(&format!("/?access_token={expired}"))).outcome,
    );
}

#[test]
fn lower_case_bearer_does_not_match_the_prefix() {
    let engine = rsa_engine(json!({}));
    let token = good_token();
    let run = authenticate(
        &engine,
        &Req::get("/").header("authorization", &format!("bearer {token}")),
    );
    assert_no_token(&run.outcome);
    let run = authenticate(
        &engine,
        &Req::get("/").header("authorization", &format!("BEARER {token}")),
    );
    assert_no_token(&run.outcome);
    let run = authenticate(
        &engine,
        &Req::get("/").header("authorization", &format!("Bearer{token}")),
    );
    assert_no_token(&run.outcome);
}

#[test]
fn token_after_double_space_is_still_extracted() {
    // extractor.cc skips to the first base64url-or-dot character after the prefix.
    let engine = rsa_engine(json!({}));
    let run = authenticate(
        &engine,
        &Req::get("/").header("authorization", &format!("Bearer  {}", good_token())),
    );
    assert_verified(&run.outcome);
}

#[test]
fn custom_header_with_prefix() {
    let engine =
        rsa_engine(json!({"fromHeaders": [{"name": "X-Jwt-Assertion", "prefix": "Token "}]}));
    let token = good_token();
    assert_verified(
        &authenticate(
            &engine,
            &Req::get("/").header("x-jwt-assertion", &format!("Token {token}")),
        )
        .outcome,
    );
    // without the prefix: not found
    assert_no_token(
        &authenticate(&engine, &Req::get("/").header("x-jwt-assertion", &token)).outcome,
    );
    // default locations are replaced
    assert_no_token(&authenticate(&engine, &Req::get("/").bearer(&token)).outcome);
    assert_no_token(&authenticate(&engine, &Req::get(&format!("/?access_token={token}"))).outcome);
}

#[test]
fn custom_header_without_prefix_takes_the_raw_value() {
    let engine = rsa_engine(json!({"fromHeaders": [{"name": "x-jwt-assertion"}]}));
    let run = authenticate(
        &engine,
        &Req::get("/").header("x-jwt-assertion", &good_token()),
    );
    assert_verified(&run.outcome);
}

#[test]
fn custom_query_parameter() {
    let engine = rsa_engine(json!({"fromParams": ["jwt"]}));
    let token = good_token();
    assert_verified(&authenticate(&engine, &Req::get(&format!("/a?x=1&jwt={token}"))).outcome);
    assert_no_token(&authenticate(&engine, &Req::get(&format!("/a?access_token={token}"))).outcome);
    assert_no_token(&authenticate(&engine, &Req::get("/a").bearer(&token)).outcome);
}

#[test]
fn custom_cookie() {
    let engine = rsa_engine(json!({"fromCookies": ["session"]}));
    let token = good_token();
    let req = Req::get("/").header("cookie", &format!("theme=dark; session={token}; lang=en"));
    assert_verified(&authenticate(&engine, &req).outcome);
    assert_no_token(
        &authenticate(
            &engine,
            &Req::get("/").header("cookie", &format!("other={token}")),
        )
        .outcome,
    );
}

#[test]
fn garbage_in_a_configured_location_is_rejected_not_ignored() {
    let engine = rsa_engine(json!({}));
    let run = authenticate(
        &engine,
        &Req::get("/").header("authorization", "Bearer abc"),
    );
    assert_rejected(&run.outcome, BAD_FORMAT, 401);
}

// =========================================================================================
// Time (jwt.md §3.2 step 3: 60 s skew, exp optional, iat ignored; known-bypasses F12)
// =========================================================================================

fn rsa_at(extra: Value) -> String {
    rs256(&keys().rsa, payload(ISS, "alice", extra))
}

#[test]
fn expired_more_than_60_seconds_ago_is_401() {
    let engine = rsa_engine(json!({}));
    for exp in [NOW - 61, NOW - 3600] {
        let run = authenticate(&engine, &Req::get("/").bearer(&rsa_at(json!({"exp": exp}))));
        assert_rejected(&run.outcome, EXPIRED, 401);
    }
}

#[test]
fn expiry_within_the_60_second_skew_is_valid() {
    let engine = rsa_engine(json!({}));
    for exp in [NOW - 59, NOW - 60, NOW, NOW + 1] {
        let run = authenticate(&engine, &Req::get("/").bearer(&rsa_at(json!({"exp": exp}))));
        assert_verified(&run.outcome);
    }
}

#[test]
fn nbf_more_than_60_seconds_ahead_is_401() {
    let engine = rsa_engine(json!({}));
    let run = authenticate(
        &engine,
        &Req::get("/").bearer(&rsa_at(json!({"nbf": NOW + 61}))),
    );
    assert_rejected(&run.outcome, NOT_YET_VALID, 401);
    for nbf in [NOW + 60, NOW + 59, NOW, NOW - 100] {
        let run = authenticate(&engine, &Req::get("/").bearer(&rsa_at(json!({"nbf": nbf}))));
        assert_verified(&run.outcome);
    }
}

#[test]
fn missing_exp_is_valid() {
    let engine = rsa_engine(json!({}));
    let run = authenticate(
        &engine,
        &Req::get("/").bearer(&rsa_at(json!({"exp": null}))),
    );
    assert_verified(&run.outcome);
    assert_eq!(claim(&run.outcome, &["exp"]), None);
}

#[test]
fn iat_in_the_future_is_ignored() {
    let engine = rsa_engine(json!({}));
    for iat in [NOW + 3600, NOW + 86_400 * 365] {
        let run = authenticate(&engine, &Req::get("/").bearer(&rsa_at(json!({"iat": iat}))));
        assert_verified(&run.outcome);
    }
}

#[test]
fn exp_of_the_wrong_type_is_a_parse_error() {
    let engine = rsa_engine(json!({}));
    let header = json!({"alg": "RS256", "kid": "rsa-1", "typ": "JWT"});
    let cases = [
        (
            "exp",
            json!("1800003600"),
            "Jwt payload [exp] field is not an integer",
        ),
        (
            "exp",
            json!(true),
            "Jwt payload [exp] field is not an integer",
        ),
        (
            "nbf",
            json!("0"),
            "Jwt payload [nbf] field is not an integer",
        ),
        (
            "iat",
            json!([1]),
            "Jwt payload [iat] field is not an integer",
        ),
    ];
    for (name, value, message) in cases {
        let mut p = payload(ISS, "alice", json!({}));
        p[name] = value;
        let token = rs256(&keys().rsa, p.clone());
        assert_eq!(
            serde_json::from_slice::<Value>(&unb64(token.split('.').nth(1).unwrap())).unwrap(),
            p
        );
        assert_rejected(
            &authenticate(&engine, &Req::get("/").bearer(&token)).outcome,
            message,
            401,
        );
        // and with a garbage signature (the parse error comes first either way)
        let token = forge(&header, &p, FAKE_SIG);
        assert_rejected(
            &authenticate(&engine, &Req::get("/").bearer(&token)).outcome,
            message,
            401,
        );
    }
}

#[test]
fn negative_nbf_is_rejected_as_out_of_range() {
    // Envoy jwt.cc: GetUInt64 returns OUT_OF_RANGE for a negative number (struct_utils.cc),
    // which is JwtPayloadParseErrorNbfOutOfRange: 401 "Jwt payload [nbf] field is not a
    // positive 64 bit integer" (status.cc). known-bypasses F12 (negative exp/nbf/iat).
    let engine = rsa_engine(json!({}));
    let token = rsa_at(json!({"nbf": -1}));
    assert_rejected(
        &authenticate(&engine, &Req::get("/").bearer(&token)).outcome,
        "Jwt payload [nbf] field is not a positive 64 bit integer",
        401,
    );
}

#[test]
fn negative_iat_is_rejected_as_out_of_range() {
    // jwt.cc checks iat's type and range although it never compares iat with the clock:
    // JwtPayloadParseErrorIatOutOfRange.
    let engine = rsa_engine(json!({}));
    let token = rsa_at(json!({"iat": -1}));
    assert_rejected(
        &authenticate(&engine, &Req::get("/").bearer(&token)).outcome,
        "Jwt payload [iat] field is not a positive 64 bit integer",
        401,
    );
}

#[test]
fn fractional_exp_is_accepted_like_envoy() {
    // struct_utils.cc GetUInt64 reads the protobuf number (a double) and truncates it; only a
    // non-number is WRONG_TYPE and only a negative or >= 2^64 value is OUT_OF_RANGE. So
    // `exp: 1800003600.5` is a valid expiry in Envoy.
    let engine = rsa_engine(json!({}));
    let token = rsa_at(json!({"exp": (NOW + 3600) as f64 + 0.5}));
    assert_verified(&authenticate(&engine, &Req::get("/").bearer(&token)).outcome);
}

#[test]
fn negative_exp_is_rejected_as_out_of_range() {
    // Same source as above: JwtPayloadParseErrorExpOutOfRange.
    let engine = rsa_engine(json!({}));
    let token = rsa_at(json!({"exp": -5}));
    assert_rejected(
        &authenticate(&engine, &Req::get("/").bearer(&token)).outcome,
        "Jwt payload [exp] field is not a positive 64 bit integer",
        401,
    );
}

// =========================================================================================
// Signature and keys (jwt.md §1.3, §3.2 step 6; known-bypasses F4/F6)
// =========================================================================================

#[test]
fn token_signed_by_another_key_with_the_same_kid_fails_verification() {
    let engine = rsa_engine(json!({}));
    let token = rs256(&keys().rsa_impostor, payload(ISS, "alice", json!({})));
    assert_rejected(
        &authenticate(&engine, &Req::get("/").bearer(&token)).outcome,
        VERIFICATION_FAILS,
        401,
    );
}

#[test]
fn tampered_payload_fails_verification() {
    let engine = rsa_engine(json!({}));
    let token = good_token();
    let parts: Vec<&str> = token.split('.').collect();
    let evil = b64_json(&payload(ISS, "admin", json!({})));
    let forged = format!("{}.{}.{}", parts[0], evil, parts[2]);
    assert_rejected(
        &authenticate(&engine, &Req::get("/").bearer(&forged)).outcome,
        VERIFICATION_FAILS,
        401,
    );
}

#[test]
fn unknown_kid_is_a_kid_alg_mismatch() {
    let engine = rsa_engine(json!({}));
    let token = rs256(&keys().rsa2, payload(ISS, "alice", json!({})));
    assert_rejected(
        &authenticate(&engine, &Req::get("/").bearer(&token)).outcome,
        KID_ALG_MISMATCH,
        401,
    );
}

#[test]
fn key_rotation_picks_the_key_by_kid() {
    let k = keys();
    let engine = authn_engine(vec![rule(
        ISS,
        &jwks(&[rsa_jwk(&k.rsa), rsa_jwk(&k.rsa2)]),
        json!({}),
    )]);
    for kp in [&k.rsa, &k.rsa2] {
        let token = rs256(kp, payload(ISS, "alice", json!({})));
        assert_verified(&authenticate(&engine, &Req::get("/").bearer(&token)).outcome);
    }
}

#[test]
fn alg_none_is_never_accepted() {
    let engine = authn_engine(vec![rule(ISS, &jwks_all(), json!({}))]);
    let p = payload(ISS, "admin", json!({}));
    for header in [
        json!({"alg": "none"}),
        json!({"alg": "none", "kid": "rsa-1"}),
        json!({"alg": "None"}),
    ] {
        let token = forge(&header, &p, FAKE_SIG);
        let run = authenticate(&engine, &Req::get("/").bearer(&token));
        assert_rejected(&run.outcome, "Jwt header [alg] is not supported", 401);
        // the classic unsigned form with an empty third segment
        let unsigned = format!("{}.{}.", b64_json(&header), b64_json(&p));
        match authenticate(&engine, &Req::get("/").bearer(&unsigned)).outcome {
            Outcome::Rejected(f) => assert_eq!(f.http_status(), 401),
            other => panic!("unsigned alg none token: {other:?}"),
        }
    }
}

#[test]
fn empty_signature_segment_is_bad_format() {
    // Envoy jwt.cc: `absl::StrSplit(jwt, '.', absl::SkipEmpty())` must give exactly 3
    // sections, so `header.payload.` is JwtBadFormat.
    let engine = rsa_engine(json!({}));
    let token = good_token();
    let without_sig = format!("{}.", token.rsplit_once('.').unwrap().0);
    assert_rejected(
        &authenticate(&engine, &Req::get("/").bearer(&without_sig)).outcome,
        BAD_FORMAT,
        401,
    );
}

#[test]
fn unsupported_or_missing_alg_in_header() {
    let engine = rsa_engine(json!({}));
    let p = payload(ISS, "alice", json!({}));
    let cases = [
        (
            json!({"typ": "JWT"}),
            "Jwt header [alg] field is required and must be a string",
        ),
        (
            json!({"alg": 256}),
            "Jwt header [alg] field is required and must be a string",
        ),
        (json!({"alg": "RS1"}), "Jwt header [alg] is not supported"),
        (json!({"alg": "rs256"}), "Jwt header [alg] is not supported"),
        (
            json!({"alg": "RS256", "kid": 7}),
            "Jwt header [kid] field is not a string",
        ),
    ];
    for (header, message) in cases {
        let token = forge(&header, &p, FAKE_SIG);
        assert_rejected(
            &authenticate(&engine, &Req::get("/").bearer(&token)).outcome,
            message,
            401,
        );
    }
}

#[test]
fn hs256_signed_with_the_rsa_public_key_is_never_accepted() {
    // The classic algorithm-confusion attack: the RSA public key bytes used as an HMAC secret.
    let k = keys();
    let engine = rsa_engine(json!({}));
    let pem = k.rsa.public_key().to_pem().unwrap();
    let der = k.rsa.public_key().to_der().unwrap();
    let n = k.rsa.public_key().to_components().n;
    for secret in [pem.into_bytes(), der, n] {
        for kid in [Some("rsa-1"), None] {
            let mut key = HS256Key::from_bytes(&secret);
            if let Some(kid) = kid {
                key = key.with_key_id(kid);
            }
            let token = hs256(&key, payload(ISS, "admin", json!({})));
            let run = authenticate(&engine, &Req::get("/").bearer(&token));
            assert_rejected(&run.outcome, KID_ALG_MISMATCH, 401);
        }
    }
}

#[test]
fn token_alg_must_match_the_jwk_alg() {
    // JWKS has RSA key `rsa-1` with alg RS256. A token claiming PS256 with kid rsa-1: skipped.
    let k = keys();
    let engine = rsa_engine(json!({}));
    let ps = PS256KeyPair::from_der(&k.rsa.to_der().unwrap())
        .unwrap()
        .with_key_id("rsa-1");
    let token = ps256(&ps, payload(ISS, "alice", json!({})));
    assert_rejected(
        &authenticate(&engine, &Req::get("/").bearer(&token)).outcome,
        KID_ALG_MISMATCH,
        401,
    );
    // Without alg on the JWK, the same RSA key verifies PS256 (Envoy tries it).
    let engine = authn_engine(vec![rule(
        ISS,
        &jwks(&[rsa_jwk_components(&k.rsa, Some("rsa-1"))]),
        json!({}),
    )]);
    assert_verified(&authenticate(&engine, &Req::get("/").bearer(&token)).outcome);
}

#[test]
fn jwk_use_is_not_looked_at_as_in_envoy() {
    // Envoy's jwks.cc never reads `use`: an `enc` key with a signing alg verifies, and a
    // Keycloak RSA-OAEP key (alg `RSA-OAEP`) is kept but never matches a signing alg.
    let k = keys();
    let mut enc = rsa_jwk_components(&k.rsa2, Some("rsa-2"));
    enc["use"] = json!("enc");
    let mut oaep = rsa_jwk(&k.rsa);
    oaep["alg"] = json!("RSA-OAEP");
    oaep["kid"] = json!("oaep");
    let engine = authn_engine(vec![rule(
        ISS,
        &jwks(&[enc, oaep, rsa_jwk(&k.rsa)]),
        json!({}),
    )]);
    let token = rs256(&k.rsa2, payload(ISS, "alice", json!({})));
    assert_verified(&authenticate(&engine, &Req::get("/").bearer(&token)).outcome);
    let engine = authn_engine(vec![rule(
        ISS,
        &jwks(&[{
            let mut o = rsa_jwk(&k.rsa2);
            o["alg"] = json!("RSA-OAEP");
            o
        }]),
        json!({}),
    )]);
    assert_rejected(
        &authenticate(&engine, &Req::get("/").bearer(&token)).outcome,
        KID_ALG_MISMATCH,
        401,
    );
}

#[test]
fn malformed_tokens_get_envoy_texts() {
    let engine = rsa_engine(json!({}));
    let header = json!({"alg": "RS256", "kid": "rsa-1"});
    let p = payload(ISS, "alice", json!({}));
    let h = b64_json(&header);
    let pl = b64_json(&p);
    let cases: Vec<(String, &str)> = vec![
        (format!("{h}.{pl}"), BAD_FORMAT),
        (format!("{h}.{pl}.{FAKE_SIG}.{FAKE_SIG}"), BAD_FORMAT),
        ("abc".to_string(), BAD_FORMAT),
        (
            format!("A.{pl}.{FAKE_SIG}"),
            "Jwt header is an invalid Base64url encoded",
        ),
        (
            format!("{}.{pl}.{FAKE_SIG}", b64(b"not json")),
            "Jwt header is an invalid JSON",
        ),
        (
            format!("{}.{pl}.{FAKE_SIG}", b64(b"[\"RS256\"]")),
            "Jwt header is an invalid JSON",
        ),
        (
            format!("{h}.A.{FAKE_SIG}"),
            "Jwt payload is an invalid Base64url encoded",
        ),
        (
            format!("{h}.{}.{FAKE_SIG}", b64(b"{\"iss\":")),
            "Jwt payload is an invalid JSON",
        ),
        (
            format!("{h}.{pl}.A"),
            "Jwt signature is an invalid Base64url encoded",
        ),
        (
            forge(&header, &json!({"iss": 5}), FAKE_SIG),
            "Jwt payload [iss] field is not a string",
        ),
        (
            forge(&header, &json!({"iss": ISS, "sub": {"a": 1}}), FAKE_SIG),
            "Jwt payload [sub] field is not a string",
        ),
        (
            forge(&header, &json!({"iss": ISS, "jti": 1}), FAKE_SIG),
            "Jwt payload [jti] field is not a string",
        ),
        (
            forge(&header, &json!({"iss": ISS, "aud": 1}), FAKE_SIG),
            "Jwt payload [aud] field is not a string or string list",
        ),
        (
            forge(&header, &json!({"iss": ISS, "aud": ["a", 1]}), FAKE_SIG),
            "Jwt payload [aud] field is not a string or string list",
        ),
    ];
    for (token, message) in cases {
        let run = authenticate(&engine, &Req::get("/").bearer(&token));
        match &run.outcome {
            Outcome::Rejected(f) => {
                assert_eq!(f.message(), message, "token {token}");
                assert_eq!(f.http_status(), 401);
            }
            other => panic!("token {token}: expected {message:?}, got {other:?}"),
        }
    }
}

#[test]
fn huge_token_is_rejected_not_crashing() {
    let engine = rsa_engine(json!({}));
    let big = "a".repeat(200_000);
    let p = payload(ISS, "alice", json!({"pad": big}));
    let token = forge(&json!({"alg": "RS256", "kid": "rsa-1"}), &p, FAKE_SIG);
    match authenticate(&engine, &Req::get("/").bearer(&token)).outcome {
        Outcome::Rejected(f) => assert_eq!(f.http_status(), 401),
        other => panic!("{other:?}"),
    }
}

// =========================================================================================
// Issuer (jwt.md §3.2 step 2, §3.3; known-bypasses F2)
// =========================================================================================

#[test]
fn issuer_not_configured_is_401_not_missing() {
    let engine = rsa_engine(json!({}));
    let token = rs256(
        &keys().rsa,
        payload("https://evil.example.com", "alice", json!({})),
    );
    assert_rejected(
        &authenticate(&engine, &Req::get("/").bearer(&token)).outcome,
        UNKNOWN_ISSUER,
        401,
    );
    let no_iss = rs256(&keys().rsa, payload(ISS, "alice", json!({"iss": null})));
    assert_rejected(
        &authenticate(&engine, &Req::get("/").bearer(&no_iss)).outcome,
        UNKNOWN_ISSUER,
        401,
    );
}

#[test]
fn issuer_comparison_is_exact() {
    let engine = rsa_engine(json!({}));
    for iss in [
        format!("{ISS}/"),
        ISS.to_uppercase(),
        ISS.replace("https", "http"),
    ] {
        let token = rs256(&keys().rsa, payload(&iss, "alice", json!({})));
        assert_rejected(
            &authenticate(&engine, &Req::get("/").bearer(&token)).outcome,
            UNKNOWN_ISSUER,
            401,
        );
    }
}

#[test]
fn several_issuers_each_use_their_own_keys() {
    let k = keys();
    let engine = authn_engine(vec![
        rule(ISS, &jwks_rsa(), json!({})),
        rule(ISS2, &jwks(&[ec_jwk(&k.ec, "ec-1")]), json!({})),
    ]);
    let t1 = good_token();
    let t2 = es256(&k.ec, payload(ISS2, "bob", json!({})));
    assert_verified(&authenticate(&engine, &Req::get("/").bearer(&t1)).outcome);
    let run = authenticate(&engine, &Req::get("/").bearer(&t2));
    assert_verified(&run.outcome);
    assert_eq!(claim(&run.outcome, &["sub"]), Some(json!("bob")));
    // ISS2 token signed with ISS's key: ISS2's JWKS has no such kid
    let cross = rs256(&k.rsa, payload(ISS2, "bob", json!({})));
    assert_rejected(
        &authenticate(&engine, &Req::get("/").bearer(&cross)).outcome,
        KID_ALG_MISMATCH,
        401,
    );
}

#[test]
fn token_in_one_providers_location_with_another_providers_issuer_is_rejected() {
    // extractor.cc JwtIssuerChecker: a location only accepts the issuers that configured it.
    let k = keys();
    let engine = authn_engine(vec![
        rule(ISS, &jwks_rsa(), json!({"fromHeaders": [{"name": "x-a"}]})),
        rule(ISS2, &jwks_rsa(), json!({"fromHeaders": [{"name": "x-b"}]})),
    ]);
    let iss2_token = rs256(&k.rsa, payload(ISS2, "bob", json!({})));
    assert_verified(&authenticate(&engine, &Req::get("/").header("x-b", &iss2_token)).outcome);
    let run = authenticate(&engine, &Req::get("/").header("x-a", &iss2_token));
    assert_rejected(&run.outcome, UNKNOWN_ISSUER, 401);
}

// =========================================================================================
// Audience (jwt.md §3.2 step 4; known-bypasses F9)
// =========================================================================================

#[test]
fn audience_not_allowed_is_403() {
    let engine = rsa_engine(json!({"audiences": ["orders-api"]}));
    let token = rsa_at(json!({"aud": "billing-api"}));
    assert_rejected(
        &authenticate(&engine, &Req::get("/").bearer(&token)).outcome,
        AUDIENCE_NOT_ALLOWED,
        403,
    );
    let list = rsa_at(json!({"aud": ["billing-api", "account"]}));
    assert_rejected(
        &authenticate(&engine, &Req::get("/").bearer(&list)).outcome,
        AUDIENCE_NOT_ALLOWED,
        403,
    );
}

#[test]
fn token_without_aud_fails_a_configured_audience_list() {
    let engine = rsa_engine(json!({"audiences": ["orders-api"]}));
    let token = rsa_at(json!({}));
    assert_rejected(
        &authenticate(&engine, &Req::get("/").bearer(&token)).outcome,
        AUDIENCE_NOT_ALLOWED,
        403,
    );
}

#[test]
fn any_allowed_audience_in_the_list_is_enough() {
    let engine = rsa_engine(json!({"audiences": ["a", "orders-api"]}));
    let token = rsa_at(json!({"aud": ["account", "orders-api"]}));
    assert_verified(&authenticate(&engine, &Req::get("/").bearer(&token)).outcome);
}

#[test]
fn audiences_are_sanitized_on_both_sides() {
    // check_audience.cc: strip http:// or https:// and one trailing '/'.
    let cases = [
        ("https://api.example.com/", "api.example.com"),
        ("api.example.com", "https://api.example.com/"),
        ("http://api.example.com", "https://api.example.com"),
        ("https://api.example.com", "api.example.com/"),
    ];
    for (allowed, aud) in cases {
        let engine = rsa_engine(json!({ "audiences": [allowed] }));
        let token = rsa_at(json!({ "aud": aud }));
        let run = authenticate(&engine, &Req::get("/").bearer(&token));
        assert!(
            matches!(run.outcome, Outcome::Verified(_)),
            "allowed {allowed} aud {aud}: {:?}",
            run.outcome
        );
    }
    // only one trailing slash is stripped, and the comparison stays exact otherwise
    for (allowed, aud) in [
        ("api.example.com", "api.example.com//"),
        ("api.example.com", "API.example.com"),
    ] {
        let engine = rsa_engine(json!({ "audiences": [allowed] }));
        let token = rsa_at(json!({ "aud": aud }));
        assert_rejected(
            &authenticate(&engine, &Req::get("/").bearer(&token)).outcome,
            AUDIENCE_NOT_ALLOWED,
            403,
        );
    }
}

#[test]
fn empty_audiences_accept_any_audience_or_none() {
    for extra in [json!({}), json!({"audiences": []})] {
        let engine = rsa_engine(extra);
        for aud in [json!("anything"), json!(["x", "y"]), Value::Null] {
            let token = rsa_at(json!({ "aud": aud }));
            assert_verified(&authenticate(&engine, &Req::get("/").bearer(&token)).outcome);
        }
    }
}

// =========================================================================================
// Several tokens (jwt.md §3.2 step 8; authz-semantics §14; known-bypasses F7)
// =========================================================================================

#[test]
fn valid_and_expired_tokens_in_two_locations_are_rejected() {
    let engine = rsa_engine(json!({}));
    let good = good_token();
    let expired = rsa_at(json!({"exp": NOW - 3600}));
    let req = Req::get(&format!("/?access_token={expired}")).bearer(&good);
    assert_rejected(&authenticate(&engine, &req).outcome, EXPIRED, 401);
    let req = Req::get(&format!("/?access_token={good}")).bearer(&expired);
    assert_rejected(&authenticate(&engine, &req).outcome, EXPIRED, 401);
}

#[test]
fn valid_token_plus_garbage_in_a_repeated_header_is_rejected() {
    let engine = rsa_engine(json!({}));
    let req = Req::get("/")
        .bearer(&good_token())
        .header("authorization", "Bearer x.y");
    assert_rejected(&authenticate(&engine, &req).outcome, BAD_FORMAT, 401);
}

#[test]
fn two_valid_tokens_are_verified() {
    let engine = rsa_engine(json!({"fromParams": ["a", "b"]}));
    let t1 = good_token();
    let t2 = rsa_at(json!({"sub": "bob"}));
    let run = authenticate(&engine, &Req::get(&format!("/?a={t1}&b={t2}")));
    assert_verified(&run.outcome);
}

#[test]
fn two_valid_tokens_for_two_providers_are_verified() {
    let k = keys();
    let engine = authn_engine(vec![
        rule(ISS, &jwks_rsa(), json!({"fromHeaders": [{"name": "x-a"}]})),
        rule(
            ISS2,
            &jwks(&[ec_jwk(&k.ec, "ec-1")]),
            json!({"fromHeaders": [{"name": "x-b"}]}),
        ),
    ]);
    let req = Req::get("/")
        .header("x-a", &good_token())
        .header("x-b", &es256(&k.ec, payload(ISS2, "bob", json!({}))));
    assert_verified(&authenticate(&engine, &req).outcome);
}

// =========================================================================================
// CORS preflight (jwt.md §3.1; authz-semantics §14; known-bypasses F8)
// =========================================================================================

#[test]
fn cors_preflight_skips_validation_even_with_an_expired_token() {
    let engine = rsa_engine(json!({}));
    let expired = rsa_at(json!({"exp": NOW - 3600}));
    let req = Req::new("OPTIONS", "/orders")
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "POST")
        .bearer(&expired);
    assert_no_token(&authenticate(&engine, &req).outcome);
    // even garbage
    let req = Req::new("OPTIONS", "/orders")
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "POST")
        .header("authorization", "Bearer garbage");
    assert_no_token(&authenticate(&engine, &req).outcome);
}

#[test]
fn options_without_origin_or_request_method_is_validated() {
    let engine = rsa_engine(json!({}));
    let expired = rsa_at(json!({"exp": NOW - 3600}));
    let no_origin = Req::new("OPTIONS", "/orders")
        .header("access-control-request-method", "POST")
        .bearer(&expired);
    assert_rejected(&authenticate(&engine, &no_origin).outcome, EXPIRED, 401);
    let no_method = Req::new("OPTIONS", "/orders")
        .header("origin", "https://app.example.com")
        .bearer(&expired);
    assert_rejected(&authenticate(&engine, &no_method).outcome, EXPIRED, 401);
    let empty_origin = Req::new("OPTIONS", "/orders")
        .header("origin", "")
        .header("access-control-request-method", "POST")
        .bearer(&expired);
    assert_rejected(&authenticate(&engine, &empty_origin).outcome, EXPIRED, 401);
    // a GET with the CORS headers is not a preflight
    let get = Req::get("/orders")
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "POST")
        .bearer(&expired);
    assert_rejected(&authenticate(&engine, &get).outcome, EXPIRED, 401);
}

// =========================================================================================
// Cache (jwt.md §3.5 "JWT cache")
// =========================================================================================

#[test]
fn second_verification_is_a_cache_hit() {
    let engine = rsa_engine(json!({}));
    assert_eq!(engine.settings().jwt_cache_size, 100);
    let mut state = AuthnState::new(engine.settings().jwt_cache_size);
    let req = Req::get("/").bearer(&good_token());
    let first = authenticate_with(&engine, &req, NOW, &mut state);
    assert_verified(&first.outcome);
    assert_eq!((state.cache_hits, state.cache_misses), (0, 1));
    let second = authenticate_with(&engine, &req, NOW + 1, &mut state);
    assert_verified(&second.outcome);
    assert_eq!((state.cache_hits, state.cache_misses), (1, 1));
    // header edits are produced on a hit as well
    assert_eq!(first.edits, second.edits);
}

#[test]
fn cached_token_that_has_since_expired_is_rejected() {
    let engine = rsa_engine(json!({}));
    let mut state = AuthnState::new(100);
    let token = rsa_at(json!({"exp": NOW + 100}));
    let req = Req::get("/").bearer(&token);
    assert_verified(&authenticate_with(&engine, &req, NOW, &mut state).outcome);
    assert_verified(&authenticate_with(&engine, &req, NOW + 160, &mut state).outcome);
    let later = authenticate_with(&engine, &req, NOW + 161, &mut state);
    assert_rejected(&later.outcome, EXPIRED, 401);
}

#[test]
fn rejected_tokens_are_not_cached() {
    let engine = rsa_engine(json!({}));
    let mut state = AuthnState::new(100);
    let bad = rs256(&keys().rsa_impostor, payload(ISS, "alice", json!({})));
    let req = Req::get("/").bearer(&bad);
    for _ in 0..2 {
        assert_rejected(
            &authenticate_with(&engine, &req, NOW, &mut state).outcome,
            VERIFICATION_FAILS,
            401,
        );
    }
    assert_eq!(state.cache_hits, 0);
}

#[test]
fn cache_size_zero_disables_the_cache() {
    let mut config = cfg(vec![ra_rules(vec![rule(ISS, &jwks_rsa(), json!({}))])]);
    config["jwtCacheSize"] = json!(0);
    let engine = load_ok(&config);
    assert_eq!(engine.settings().jwt_cache_size, 0);
    let mut state = AuthnState::new(engine.settings().jwt_cache_size);
    let req = Req::get("/").bearer(&good_token());
    for _ in 0..3 {
        assert_verified(&authenticate_with(&engine, &req, NOW, &mut state).outcome);
    }
    assert_eq!((state.cache_hits, state.cache_misses), (0, 3));
}

#[test]
fn a_full_cache_keeps_verifying() {
    let engine = rsa_engine(json!({}));
    let mut state = AuthnState::new(1);
    let tokens: Vec<String> = ["a", "b", "c"]
        .iter()
        .map(|s| rsa_at(json!({ "sub": s })))
        .collect();
    for _ in 0..2 {
        for t in &tokens {
            let run = authenticate_with(&engine, &Req::get("/").bearer(t), NOW, &mut state);
            assert_verified(&run.outcome);
        }
    }
}

#[test]
fn cached_token_still_needs_its_issuer_location() {
    // A token verified by provider A (header x-a) and then sent in provider B's location
    // (x-b, other issuer) must not reuse A's cache entry.
    let engine = authn_engine(vec![
        rule(ISS, &jwks_rsa(), json!({"fromHeaders": [{"name": "x-a"}]})),
        rule(ISS2, &jwks_rsa(), json!({"fromHeaders": [{"name": "x-b"}]})),
    ]);
    let mut state = AuthnState::new(100);
    let token = good_token();
    assert_verified(
        &authenticate_with(
            &engine,
            &Req::get("/").header("x-a", &token),
            NOW,
            &mut state,
        )
        .outcome,
    );
    let run = authenticate_with(
        &engine,
        &Req::get("/").header("x-b", &token),
        NOW,
        &mut state,
    );
    assert_rejected(&run.outcome, UNKNOWN_ISSUER, 401);
}

// =========================================================================================
// Remote JWKS (jwt.md §3.5; known-bypasses F4)
// =========================================================================================

const KC_CERTS: &str = "https://kc.example.com/realms/demo/protocol/openid-connect/certs";

fn remote_engine(extra_config: Value) -> meshguard_core::plugin::engine::Engine {
    let mut config = cfg(vec![ra_rules(vec![
        rule(ISS, &jwks_rsa(), json!({})),
        json!({"issuer": KC_ISS, "jwksUri": KC_CERTS}),
    ])]);
    for (k, v) in extra_config.as_object().unwrap() {
        config[k] = v.clone();
    }
    load_ok(&config)
}

fn remote_index(engine: &meshguard_core::plugin::engine::Engine) -> usize {
    engine
        .authenticator()
        .providers()
        .iter()
        .position(|p| matches!(p.keys, Keys::Remote(_)))
        .unwrap()
}

#[test]
fn remote_jwks_before_fetch_rejects_tokens_but_not_tokenless_requests() {
    let engine = remote_engine(json!({}));
    let token = rs256(&keys().rsa, payload(KC_ISS, "alice", json!({})));
    let mut state = AuthnState::new(100);
    let run = authenticate_with(&engine, &Req::get("/").bearer(&token), NOW, &mut state);
    assert_rejected(&run.outcome, JWKS_FETCH_FAILED, 401);
    assert_no_token(&authenticate_with(&engine, &Req::get("/"), NOW, &mut state).outcome);
    // the inline provider is unaffected
    assert_verified(
        &authenticate_with(
            &engine,
            &Req::get("/").bearer(&good_token()),
            NOW,
            &mut state,
        )
        .outcome,
    );
}

#[test]
fn remote_jwks_after_fetch_verifies() {
    let engine = remote_engine(json!({}));
    let index = remote_index(&engine);
    let mut state = AuthnState::new(100);
    assert!(!state.has_remote_keys(index));
    state.set_remote_keys(
        index,
        KeySet::parse(&keycloak_jwks(), JwksSource::Remote).unwrap(),
    );
    assert!(state.has_remote_keys(index));
    let token = rs256(&keys().rsa, payload(KC_ISS, "alice", json!({})));
    let run = authenticate_with(&engine, &Req::get("/").bearer(&token), NOW, &mut state);
    assert_verified(&run.outcome);
    // a key not in the fetched set
    let other = rs256(&keys().rsa2, payload(KC_ISS, "alice", json!({})));
    let run = authenticate_with(&engine, &Req::get("/").bearer(&other), NOW, &mut state);
    assert_rejected(&run.outcome, KID_ALG_MISMATCH, 401);
}

#[test]
fn remote_jwks_never_accepts_symmetric_keys() {
    let only_oct = jwks(&[oct_jwk(&keys().hs, "hs-1")]);
    assert!(KeySet::parse(&only_oct, JwksSource::Remote).is_err());
    assert!(KeySet::parse(&only_oct, JwksSource::Inline).is_ok());
    // mixed: the oct key is dropped, so an HS256 token finds no key
    let engine = remote_engine(json!({}));
    let index = remote_index(&engine);
    let mut state = AuthnState::new(100);
    let mixed = jwks(&[oct_jwk(&keys().hs, "hs-1"), rsa_jwk(&keys().rsa)]);
    state.set_remote_keys(index, KeySet::parse(&mixed, JwksSource::Remote).unwrap());
    let token = hs256(&keys().hs, payload(KC_ISS, "alice", json!({})));
    let run = authenticate_with(&engine, &Req::get("/").bearer(&token), NOW, &mut state);
    assert_rejected(&run.outcome, KID_ALG_MISMATCH, 401);
}

#[test]
fn jwks_uri_cluster_follows_istio_outbound_naming() {
    let engine = remote_engine(json!({}));
    let p = &engine.authenticator().providers()[remote_index(&engine)];
    let Keys::Remote(r) = &p.keys else { panic!() };
    assert_eq!(r.cluster, "outbound|443||kc.example.com");
    assert_eq!(r.authority, "kc.example.com");
    assert_eq!(r.path, "/realms/demo/protocol/openid-connect/certs");
    assert_eq!(r.uri, KC_CERTS);
    assert_eq!(r.timeout_ms, 5000);
}

#[test]
fn jwks_uri_with_port_and_http() {
    let engine = authn_engine(vec![json!({
        "issuer": KC_ISS, "jwksUri": "http://keycloak.iam.svc.cluster.local:8080/realms/demo/certs",
        "timeout": "1.5s"
    })]);
    let Keys::Remote(r) = &engine.authenticator().providers()[0].keys else {
        panic!()
    };
    assert_eq!(r.cluster, "outbound|8080||keycloak.iam.svc.cluster.local");
    assert_eq!(r.authority, "keycloak.iam.svc.cluster.local:8080");
    assert_eq!(r.path, "/realms/demo/certs");
    assert_eq!(r.timeout_ms, 1500);
}

#[test]
fn jwks_clusters_override_the_cluster_name() {
    let engine = remote_engine(
        json!({"jwksClusters": {KC_CERTS: "keycloak-jwks"}, "jwksRefreshSeconds": 300}),
    );
    let Keys::Remote(r) = &engine.authenticator().providers()[remote_index(&engine)].keys else {
        panic!()
    };
    assert_eq!(r.cluster, "keycloak-jwks");
    assert_eq!(engine.settings().jwks_refresh_seconds, 300);
}

#[test]
fn jwks_refresh_defaults_to_twenty_minutes_and_zero_is_an_error() {
    let engine = remote_engine(json!({}));
    assert_eq!(engine.settings().jwks_refresh_seconds, 1200);
    let mut config = cfg(vec![ra_rules(vec![
        json!({"issuer": KC_ISS, "jwksUri": KC_CERTS}),
    ])]);
    config["jwksRefreshSeconds"] = json!(0);
    let e = load_err(&config);
    assert_eq!(e.path.to_string(), "jwksRefreshSeconds");
}

#[test]
fn jwks_uri_without_issuer_accepts_any_issuer_with_its_keys() {
    // Envoy: no provider with the token's issuer -> the first provider with an empty issuer.
    let engine = authn_engine(vec![json!({"jwksUri": KC_CERTS})]);
    let mut state = AuthnState::new(100);
    state.set_remote_keys(0, KeySet::parse(&jwks_rsa(), JwksSource::Remote).unwrap());
    let token = rs256(
        &keys().rsa,
        payload("https://whoever.example.com", "alice", json!({})),
    );
    assert_verified(
        &authenticate_with(&engine, &Req::get("/").bearer(&token), NOW, &mut state).outcome,
    );
}

// =========================================================================================
// Header edits (jwt.md §3.2 step 7, §3.3 sanitizing; authz-semantics §14; known-bypasses F13)
// =========================================================================================

#[test]
fn authorization_header_is_removed_by_default() {
    let engine = rsa_engine(json!({}));
    let run = authenticate(&engine, &Req::get("/").bearer(&good_token()));
    assert_verified(&run.outcome);
    assert!(removes(&run.edits, "authorization"), "{:?}", run.edits);
}

#[test]
fn forward_original_token_keeps_the_header() {
    let engine = rsa_engine(json!({"forwardOriginalToken": true}));
    let run = authenticate(&engine, &Req::get("/").bearer(&good_token()));
    assert_verified(&run.outcome);
    assert!(!removes(&run.edits, "authorization"), "{:?}", run.edits);
}

#[test]
fn custom_token_header_is_removed_by_default() {
    let engine = rsa_engine(json!({"fromHeaders": [{"name": "X-Jwt-Assertion"}]}));
    let run = authenticate(
        &engine,
        &Req::get("/").header("x-jwt-assertion", &good_token()),
    );
    assert_verified(&run.outcome);
    assert!(removes(&run.edits, "x-jwt-assertion"), "{:?}", run.edits);
    assert!(!removes(&run.edits, "authorization"));
}

#[test]
fn token_from_query_parameter_is_removed_from_the_path_not_a_header() {
    let engine = rsa_engine(json!({}));
    let run = authenticate(
        &engine,
        &Req::get(&format!("/p?z=1&access_token={}&a=%2F", good_token())),
    );
    assert_verified(&run.outcome);
    // Envoy rebuilds the query from the decoded parameters, in name order
    assert_eq!(run.edits, vec![HeaderEdit::SetPath("/p?a=/&z=1".into())]);
}

#[test]
fn output_payload_to_header_carries_the_payload_segment() {
    let engine = rsa_engine(json!({"outputPayloadToHeader": "X-Jwt-Payload"}));
    let token = rsa_at(json!({"email": "alice@example.com"}));
    let run = authenticate(&engine, &Req::get("/").bearer(&token));
    assert_verified(&run.outcome);
    let segment = token.split('.').nth(1).unwrap();
    let value = set(&run.edits, "x-jwt-payload").expect("payload header set");
    assert_eq!(value, segment);
    let decoded: Value = serde_json::from_slice(&unb64(&value)).unwrap();
    assert_eq!(decoded["email"], json!("alice@example.com"));
    assert_eq!(decoded["sub"], json!("alice"));
}

#[test]
fn output_claim_to_headers_copies_primitive_and_nested_claims() {
    let engine = rsa_engine(json!({"outputClaimToHeaders": [
        {"header": "x-user", "claim": "sub"},
        {"header": "X-Tenant", "claim": "org.tenant"},
        {"header": "x-level", "claim": "level"},
        {"header": "x-verified", "claim": "email_verified"},
        {"header": "x-missing", "claim": "nope"},
        {"header": "x-missing-nested", "claim": "org.nope"},
    ]}));
    let token = rsa_at(json!({"org": {"tenant": "acme"}, "level": 5, "email_verified": true}));
    let run = authenticate(&engine, &Req::get("/").bearer(&token));
    assert_verified(&run.outcome);
    assert_eq!(set(&run.edits, "x-user").as_deref(), Some("alice"));
    assert_eq!(set(&run.edits, "x-tenant").as_deref(), Some("acme"));
    assert_eq!(set(&run.edits, "x-level").as_deref(), Some("5"));
    assert_eq!(set(&run.edits, "x-verified").as_deref(), Some("true"));
    assert_eq!(set(&run.edits, "x-missing"), None);
    assert_eq!(set(&run.edits, "x-missing-nested"), None);
}

#[test]
fn output_claim_to_headers_copies_scope_as_the_original_string() {
    // authenticator.cc addJWTClaimToHeader reads `jwt_->payload_pb_`, the token's own payload;
    // only the metadata copy is split (setPayloadMetadata). jwt.md §3.6: "the token and the
    // forwarded payload keep the string".
    let engine =
        rsa_engine(json!({"outputClaimToHeaders": [{"header": "x-scope", "claim": "scope"}]}));
    let token = rsa_at(json!({"scope": "openid profile orders.write"}));
    let run = authenticate(&engine, &Req::get("/").bearer(&token));
    assert_verified(&run.outcome);
    assert_eq!(
        set(&run.edits, "x-scope").as_deref(),
        Some("openid profile orders.write")
    );
}

#[test]
fn incoming_output_headers_are_always_removed() {
    let engine = rsa_engine(json!({
        "outputPayloadToHeader": "x-jwt-payload",
        "outputClaimToHeaders": [{"header": "x-user", "claim": "sub"}],
    }));
    // no token: the spoofed copies are still stripped
    let spoof = Req::get("/")
        .header("x-jwt-payload", "eyJzdWIiOiJhZG1pbiJ9")
        .header("x-user", "admin");
    let run = authenticate(&engine, &spoof);
    assert_no_token(&run.outcome);
    assert!(removes(&run.edits, "x-jwt-payload"), "{:?}", run.edits);
    assert!(removes(&run.edits, "x-user"), "{:?}", run.edits);
    // with a token: removed, then set to the verified values (removal first)
    let run = authenticate(&engine, &spoof.clone().bearer(&good_token()));
    assert_verified(&run.outcome);
    let remove_at = run
        .edits
        .iter()
        .position(|e| *e == HeaderEdit::Remove("x-user".into()))
        .unwrap();
    let set_at = run
        .edits
        .iter()
        .position(|e| *e == HeaderEdit::Append("x-user".into(), "alice".into()))
        .unwrap();
    assert!(remove_at < set_at, "{:?}", run.edits);
    // CORS preflight: also stripped
    let preflight = Req::new("OPTIONS", "/")
        .header("origin", "https://a")
        .header("access-control-request-method", "GET")
        .header("x-user", "admin");
    let run = authenticate(&engine, &preflight);
    assert!(removes(&run.edits, "x-user"), "{:?}", run.edits);
}

// =========================================================================================
// Targeting (authz-semantics §2, §14)
// =========================================================================================

fn providers_for(resource: Value) -> usize {
    load_ok(&cfg(vec![resource]))
        .authenticator()
        .providers()
        .len()
}

#[test]
fn request_authentication_targeting() {
    let rules = json!([{"issuer": ISS, "jwks": jwks_rsa()}]);
    assert_eq!(providers_for(ra(NS, "r", json!({"jwtRules": rules}))), 1);
    assert_eq!(
        providers_for(ra("istio-system", "r", json!({"jwtRules": rules}))),
        1
    );
    assert_eq!(providers_for(ra("bar", "r", json!({"jwtRules": rules}))), 0);
    assert_eq!(
        providers_for(ra(
            NS,
            "r",
            json!({"selector": {"matchLabels": {"app": "b"}}, "jwtRules": rules})
        )),
        1
    );
    assert_eq!(
        providers_for(ra(
            NS,
            "r",
            json!({"selector": {"matchLabels": {"app": "c"}}, "jwtRules": rules})
        )),
        0
    );
    assert_eq!(
        providers_for(ra(
            NS,
            "r",
            json!({"selector": {"matchLabels": {"app": "b", "tier": "x"}}, "jwtRules": rules})
        )),
        0
    );
    assert_eq!(
        providers_for(ra(
            NS,
            "r",
            json!({"targetRef": {"kind": "Gateway", "group": "gateway.networking.k8s.io",
                "name": "gw"}, "jwtRules": rules})
        )),
        0
    );
}

#[test]
fn non_applying_request_authentication_does_not_verify_tokens() {
    let engine = load_ok(&cfg(vec![ra(
        "bar",
        "r",
        json!({"jwtRules": [{"issuer": ISS, "jwks": jwks_rsa()}]}),
    )]));
    let expired = rsa_at(json!({"exp": NOW - 3600}));
    assert_no_token(&authenticate(&engine, &Req::get("/").bearer(&expired)).outcome);
}

#[test]
fn rules_of_several_request_authentications_are_merged() {
    let k = keys();
    let engine = load_ok(&cfg(vec![
        ra(
            NS,
            "a",
            json!({"jwtRules": [{"issuer": ISS, "jwks": jwks_rsa()}]}),
        ),
        ra(
            "istio-system",
            "b",
            json!({"jwtRules": [{"issuer": ISS2, "jwks": jwks(&[ec_jwk(&k.ec, "ec-1")])}]}),
        ),
    ]));
    assert_eq!(engine.authenticator().providers().len(), 2);
    assert_verified(&authenticate(&engine, &Req::get("/").bearer(&good_token())).outcome);
    let t2 = es256(&k.ec, payload(ISS2, "bob", json!({})));
    assert_verified(&authenticate(&engine, &Req::get("/").bearer(&t2)).outcome);
}

#[test]
fn v1beta1_request_authentication_is_accepted() {
    let mut r = ra(
        NS,
        "r",
        json!({"jwtRules": [{"issuer": ISS, "jwks": jwks_rsa()}]}),
    );
    r["apiVersion"] = json!("security.istio.io/v1beta1");
    assert_eq!(providers_for(r), 1);
}

// =========================================================================================
// Configuration errors (authz-semantics §14, §18)
// =========================================================================================

fn rule_error(rule: Value) -> meshguard_core::error::ConfigError {
    load_err(&cfg(vec![ra_rules(vec![rule])]))
}

#[track_caller]
fn assert_error_at(e: &meshguard_core::error::ConfigError, path_prefix: &str) {
    assert!(
        e.path.to_string().starts_with(path_prefix),
        "error path {:?} should start with {path_prefix:?} (reason {})",
        e.path,
        e.reason
    );
}

#[test]
fn unknown_field_in_jwt_rules_is_an_error() {
    let e = rule_error(json!({"issuer": ISS, "jwks": jwks_rsa(), "jwksUrl": "https://x/y"}));
    assert_error_at(&e, "resources[0].spec.jwtRules[0]");
    assert!(e.reason.contains("jwksUrl"), "{e}");
}

#[test]
fn unknown_field_in_spec_or_headers_is_an_error() {
    let e = load_err(&cfg(vec![ra(NS, "r", json!({"rules": []}))]));
    assert_error_at(&e, "resources[0].spec");
    let e = rule_error(
        json!({"issuer": ISS, "jwks": jwks_rsa(), "fromHeaders": [{"name": "x", "prefx": "B "}]}),
    );
    assert_error_at(&e, "resources[0].spec.jwtRules[0].fromHeaders[0]");
}

#[test]
fn empty_issuer_is_an_error() {
    let e = rule_error(json!({"issuer": "", "jwks": jwks_rsa()}));
    assert_error_at(&e, "resources[0].spec.jwtRules[0]");
}

#[test]
fn both_jwks_and_jwks_uri_is_an_error() {
    let e = rule_error(json!({"issuer": ISS, "jwks": jwks_rsa(), "jwksUri": KC_CERTS}));
    assert_error_at(&e, "resources[0].spec.jwtRules[0]");
}

#[test]
fn neither_jwks_nor_jwks_uri_is_an_error() {
    let e = rule_error(json!({"issuer": ISS}));
    assert_error_at(&e, "resources[0].spec.jwtRules[0]");
}

#[test]
fn invalid_jwks_json_is_an_error() {
    for bad in ["not json", "{\"keys\": 5}", "{}", "[]"] {
        let e = rule_error(json!({"issuer": ISS, "jwks": bad}));
        assert_error_at(&e, "resources[0].spec.jwtRules[0].jwks");
    }
}

#[test]
fn jwks_without_a_usable_key_is_an_error() {
    let k = keys();
    let mut oaep = rsa_jwk(&k.rsa);
    oaep["alg"] = json!("ES256");
    let cases = [
        jwks(&[]),
        jwks(&[oaep]),
        jwks(&[json!({"kty": "RSA", "kid": "x", "n": "AQAB", "e": "AQAB"})]), // weak key
        jwks(&[json!({"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"})]), // not on the curve
        jwks(&[json!({"kty": "XYZ", "k": "AAAA"})]),
    ];
    for set in cases {
        let e = rule_error(json!({"issuer": ISS, "jwks": set}));
        assert_error_at(&e, "resources[0].spec.jwtRules[0].jwks");
    }
}

#[test]
fn bad_output_header_names_are_errors() {
    for name in ["x user", "x:user", "", "x/y"] {
        let e = rule_error(json!({"issuer": ISS, "jwks": jwks_rsa(),
                                  "outputClaimToHeaders": [{"header": name, "claim": "sub"}]}));
        assert_error_at(&e, "resources[0].spec.jwtRules[0].outputClaimToHeaders[0]");
    }
    let e = rule_error(
        json!({"issuer": ISS, "jwks": jwks_rsa(), "outputPayloadToHeader": "x payload"}),
    );
    assert_error_at(&e, "resources[0].spec.jwtRules[0].outputPayloadToHeader");
}

#[test]
fn bad_jwks_uri_is_an_error() {
    for uri in [
        "ftp://kc.example.com/certs",
        "kc.example.com/certs",
        "https:///certs",
        "https://kc:notaport/certs",
    ] {
        let e = rule_error(json!({"issuer": ISS, "jwksUri": uri}));
        assert_error_at(&e, "resources[0].spec.jwtRules[0].jwksUri");
    }
}

#[test]
fn bad_timeout_is_an_error() {
    for t in ["5", "-1s", "5m", "abc", "s"] {
        let e = rule_error(json!({"issuer": ISS, "jwksUri": KC_CERTS, "timeout": t}));
        assert_error_at(&e, "resources[0].spec.jwtRules[0].timeout");
    }
}

#[test]
fn empty_list_values_are_errors() {
    for extra in [
        json!({"audiences": [""]}),
        json!({"fromParams": [""]}),
        json!({"fromCookies": [""]}),
        json!({"fromHeaders": [{"name": ""}]}),
        json!({"spaceDelimitedClaims": [""]}),
    ] {
        let e = rule_error(rule(ISS, &jwks_rsa(), extra.clone()));
        assert_error_at(&e, "resources[0].spec.jwtRules[0]");
    }
}
