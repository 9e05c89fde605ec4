//! Envoy 1.40 `jwt_authn` semantics of meshguard's own verifier, natively: malformed values at a
//! location are bad tokens, several tokens are verified last-extracted first and the first
//! failure wins, outputs are appended per good token, query tokens leave the path, and several
//! rules (also with one issuer) are tried as istiod's requirement tree does. Each was measured
//! against Envoy (tests/e2e/test_jwt_parity.py compares the same shapes in a real Envoy).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod jwt_support;

use jwt_support::*;
use meshguard_core::authn::authenticator::HeaderEdit;
use serde_json::json;

fn appended(edits: &[HeaderEdit], name: &str) -> Vec<String> {
    edits
        .iter()
        .filter_map(|e| match e {
            HeaderEdit::Append(h, v) if h == name => Some(v.clone()),
            _ => None,
        })
        .collect()
}

fn set_path(edits: &[HeaderEdit]) -> Option<String> {
    edits.iter().find_map(|e| match e {
        HeaderEdit::SetPath(p) => Some(p.clone()),
        _ => None,
    })
}

fn sub_engine(extra: serde_json::Value) -> meshguard_core::plugin::engine::Engine {
    let mut fields = json!({"outputClaimToHeaders": [{"header": "x-sub", "claim": "sub"}]});
    for (k, v) in extra.as_object().unwrap() {
        fields[k] = v.clone();
    }
    rsa_engine(fields)
}

fn token_for(sub: &str) -> String {
    rs256(&keys().rsa, payload(ISS, sub, json!({})))
}

#[test]
fn a_malformed_value_at_a_configured_location_is_a_bad_token_not_a_missing_one() {
    let engine = rsa_engine(json!({}));
    for value in ["Bearer !!!", "Bearer ", "Bearer *", "Bearer .."] {
        let run = authenticate(&engine, &Req::get("/").header("authorization", value));
        assert_rejected(&run.outcome, BAD_FORMAT, 401);
    }
    for query in ["access_token=", "access_token", "access_token=!!!"] {
        let run = authenticate(&engine, &Req::get(&format!("/p?{query}")));
        assert_rejected(&run.outcome, BAD_FORMAT, 401);
    }
    // junk before a token where no prefix skips it: the junk is part of the header section
    let custom = authn_engine(vec![rule(
        ISS,
        &jwks_rsa(),
        json!({"fromHeaders": [{"name": "x-raw"}], "fromCookies": ["session"]}),
    )]);
    for req in [
        Req::get("/").header("x-raw", &format!("!{}", good_token())),
        Req::get("/").header("cookie", &format!("session=!{}", good_token())),
    ] {
        assert_rejected(
            &authenticate(&custom, &req).outcome,
            "Jwt header is an invalid Base64url encoded",
            401,
        );
    }
    for req in [
        Req::get("/").header("x-raw", ""),
        Req::get("/").header("cookie", "a=1; session="),
    ] {
        assert_rejected(&authenticate(&custom, &req).outcome, BAD_FORMAT, 401);
    }
    // a bad token next to a good one fails the request
    let req = Req::get("/p?access_token=!!").bearer(&good_token());
    assert_rejected(&authenticate(&engine, &req).outcome, BAD_FORMAT, 401);
}

#[test]
fn several_good_tokens_append_outputs_and_the_first_extracted_one_is_the_identity() {
    let engine = sub_engine(json!({}));
    let req =
        Req::get(&format!("/p?access_token={}", token_for("bob"))).bearer(&token_for("alice"));
    let run = authenticate(&engine, &req);
    assert_verified(&run.outcome);
    // the parameter (extracted second) is verified first, the header last: alice decides
    assert_eq!(claim(&run.outcome, &["sub"]), Some(json!("alice")));
    assert_eq!(appended(&run.edits, "x-sub"), vec!["bob", "alice"]);
    assert_eq!(set_path(&run.edits).as_deref(), Some("/p"));
    assert!(run
        .edits
        .contains(&HeaderEdit::Remove("authorization".into())));
}

#[test]
fn the_last_extracted_bad_token_names_the_failure() {
    let engine = rsa_engine(json!({}));
    let expired = rs256(
        &keys().rsa,
        payload(ISS, "alice", json!({"exp": NOW - 3600})),
    );
    let req = Req::get("/p?access_token=zz").bearer(&expired);
    assert_rejected(&authenticate(&engine, &req).outcome, BAD_FORMAT, 401);
    let req = Req::get(&format!("/p?access_token={expired}")).header("authorization", "Bearer zz");
    assert_rejected(&authenticate(&engine, &req).outcome, EXPIRED, 401);
}

#[test]
fn header_locations_are_read_in_name_order_and_every_value_counts() {
    let engine = authn_engine(vec![rule(
        ISS,
        &jwks_rsa(),
        json!({"forwardOriginalToken": true,
               "fromHeaders": [{"name": "x-tok", "prefix": "Tok "}, {"name": "x-raw"}],
               "outputClaimToHeaders": [{"header": "x-sub", "claim": "sub"}]}),
    )]);
    // x-raw sorts before x-tok: x-raw is extracted first, verified last, and decides
    let req = Req::get("/")
        .header("x-tok", &format!("Tok {}", token_for("bob")))
        .header("x-raw", &token_for("alice"));
    let run = authenticate(&engine, &req);
    assert_eq!(claim(&run.outcome, &["sub"]), Some(json!("alice")));
    assert_eq!(appended(&run.edits, "x-sub"), vec!["bob", "alice"]);
    // two values of one header are two tokens
    let req = Req::get("/")
        .header("x-raw", &token_for("carol"))
        .header("x-raw", &token_for("dave"));
    let run = authenticate(&engine, &req);
    assert_eq!(claim(&run.outcome, &["sub"]), Some(json!("carol")));
}

#[test]
fn query_and_cookie_tokens_are_found_as_envoy_parses_them() {
    let engine = authn_engine(vec![rule(
        ISS,
        &jwks_rsa(),
        json!({"fromParams": ["tok"], "fromCookies": ["session"]}),
    )]);
    let t = good_token();
    let encoded = t.replace('.', "%2E");
    for req in [
        Req::get(&format!("/p?t%6Fk={encoded}")),
        Req::get("/").header("cookie", &format!("session=\"{t}\"")),
        Req::get("/")
            .header("cookie", "a=1")
            .header("cookie", &format!("b=2;   session={t}")),
    ] {
        assert_verified(&authenticate(&engine, &req).outcome);
    }
    let run = authenticate(&engine, &Req::get(&format!("/p?z=%41&tok={t}&b=1&b=0")));
    assert_eq!(set_path(&run.edits).as_deref(), Some("/p?b=1&b=0&z=A"));
}

#[test]
fn claim_headers_are_formatted_as_envoy_prints_them() {
    let engine = rsa_engine(json!({"outputClaimToHeaders": [
        {"header": "x-n", "claim": "n"}, {"header": "x-f", "claim": "f"},
        {"header": "x-e", "claim": "e"}, {"header": "x-l", "claim": "l"}]}));
    let tok = rs256(
        &keys().rsa,
        payload(
            ISS,
            "alice",
            json!({"n": 12345678901234567890u64, "f": 1.5, "e": "", "l": ["a"]}),
        ),
    );
    let run = authenticate(&engine, &Req::get("/").bearer(&tok));
    assert_eq!(appended(&run.edits, "x-n"), vec!["12345678901234567168"]);
    assert_eq!(appended(&run.edits, "x-f"), vec!["1.500000"]);
    assert!(
        appended(&run.edits, "x-e").is_empty(),
        "an empty string adds nothing"
    );
    assert_eq!(appended(&run.edits, "x-l"), vec!["WyJhIl0="]);
}

#[test]
fn a_whitespace_only_space_delimited_claim_stays_a_string_a_deny_star_matches() {
    let engine = load_ok(&cfg(vec![
        ra_rules(vec![rule(ISS, &jwks_rsa(), json!({}))]),
        ap(
            NS,
            "deny-scope",
            json!({"action": "DENY", "rules": [
            {"when": [{"key": "request.auth.claims[scope]", "values": ["*"]}]}]}),
        ),
    ]));
    for scope in [" ", "   ", "read"] {
        let tok = rs256(&keys().rsa, payload(ISS, "alice", json!({"scope": scope})));
        assert!(
            !allowed(&engine, &Req::get("/").bearer(&tok)),
            "scope {scope:?}"
        );
    }
    let tok = rs256(&keys().rsa, payload(ISS, "alice", json!({"scope": ""})));
    assert!(allowed(&engine, &Req::get("/").bearer(&tok)));
}

#[test]
fn several_rules_are_tried_in_turn_even_with_one_issuer() {
    let k = keys();
    let engine = authn_engine(vec![
        rule(ISS, &jwks_rsa(), json!({})),
        rule(ISS, &jwks(&[ec_jwk(&k.ec, "ec-1")]), json!({})),
    ]);
    let ec = es256(&k.ec, payload(ISS, "bob", json!({})));
    assert_verified(&authenticate(&engine, &Req::get("/").bearer(&ec)).outcome);
    assert_verified(&authenticate(&engine, &Req::get("/").bearer(&good_token())).outcome);
    // a token of the second issuer that fails is answered with its own failure, not
    // "issuer not configured" (allow_missing covers every rule's locations)
    let engine = authn_engine(vec![
        rule(ISS, &jwks_rsa(), json!({})),
        rule(ISS2, &jwks(&[ec_jwk(&k.ec, "ec-1")]), json!({})),
    ]);
    let expired = es256(&k.ec, payload(ISS2, "bob", json!({"exp": NOW - 3600})));
    assert_rejected(
        &authenticate(&engine, &Req::get("/").bearer(&expired)).outcome,
        EXPIRED,
        401,
    );
}
