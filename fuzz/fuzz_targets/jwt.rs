//! `jwt`: token parsing, JWKS parsing and end-user authentication on hostile input.
//!
//! The first byte selects the case:
//! * `jwt::parse` on an arbitrary string;
//! * a structurally valid compact JWS (base64url header and payload from fuzzed JSON, a
//!   signature that is a correct HS256 MAC under the fixed key, random bytes, or empty): parse,
//!   `check_time`, `check_audience`, then `KeySet::verify` with the fixed HS256 key set;
//! * `KeySet::parse` on arbitrary text and on a structured JWKS with fuzzed key material (then
//!   verifying a token with it);
//! * `Authenticator::authenticate` (fixed inline HS256 providers: `Authorization: Bearer`, a
//!   prefix-less header, the `access_token` query parameter, a `session` cookie, output headers)
//!   on fuzzed header, cookie and query values that often carry a correctly signed token; a
//!   verified token's claims then go through `Engine::decide_with_claims`.
//!
//! Verified tokens must be the correctly signed ones: authentication succeeding for a token whose
//! signature was not made with the key is a finding.
#![no_main]

#[path = "common.rs"]
mod common;

use std::sync::OnceLock;

use arbitrary::{Result, Unstructured};
use common::*;
use jwt_simple::reexports::ct_codecs::{Base64UrlSafeNoPadding, Encoder};
use libfuzzer_sys::fuzz_target;
use meshguard_core::authn::authenticator::{AuthnState, Outcome};
use meshguard_core::plugin::plugin_config::{load, NodeInfo};
use meshguard_core::plugin::engine::Engine;
use meshguard_core::authn::jwt::{self, JwksSource, KeySet};
use meshguard_core::request::request_view::{Headers, StaticConnection};
use serde_json::{json, Map, Value};

/// The HS256 secret of the fixed providers (32 bytes).
const SECRET: &[u8] = b"secret-key-for-fuzzing-32-bytes!";
const NOW: u64 = 1_800_000_000;
const ISS: &str = "https://issuer.example.com";
const ISS2: &str = "iss2";

fn b64(bytes: &[u8]) -> String {
    Base64UrlSafeNoPadding::encode_to_string(bytes).unwrap_or_default()
}

fn hs_jwks(kid: &str) -> String {
    json!({"keys": [{"kty": "oct", "alg": "HS256", "kid": kid, "k": b64(SECRET)}]}).to_string()
}

fn keyset() -> &'static KeySet {
    static KEYS: OnceLock<KeySet> = OnceLock::new();
    KEYS.get_or_init(|| KeySet::parse(&hs_jwks("hs-1"), JwksSource::Inline).expect("fixed JWKS"))
}

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let config = json!({
            "workload": {"namespace": "foo", "labels": {"app": "b"}},
            "resources": [
                {"apiVersion": "security.istio.io/v1", "kind": "RequestAuthentication",
                 "metadata": {"name": "ra", "namespace": "foo"},
                 "spec": {"jwtRules": [
                    {"issuer": ISS, "jwks": hs_jwks("hs-1"),
                     "audiences": ["aud1", "https://aud2/"],
                     "fromHeaders": [{"name": "authorization", "prefix": "Bearer "},
                                     {"name": "x-jwt"}],
                     "fromParams": ["access_token"],
                     "fromCookies": ["session"],
                     "outputPayloadToHeader": "x-jwt-payload",
                     "outputClaimToHeaders": [{"header": "x-sub", "claim": "sub"},
                                              {"header": "x-nested", "claim": "a.b"}],
                     "spaceDelimitedClaims": ["roles"]},
                    {"issuer": ISS2, "jwks": hs_jwks("hs-2"), "forwardOriginalToken": true}
                 ]}},
                {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
                 "metadata": {"name": "jwt-allow", "namespace": "foo"},
                 "spec": {"rules": [
                    {"from": [{"source": {"requestPrincipals": [format!("{ISS}/*")]}}],
                     "when": [{"key": "request.auth.claims[roles]", "values": ["admin"]},
                              {"key": "request.auth.audiences", "values": ["aud1"]}]},
                    {"when": [{"key": "request.auth.claims[a][b]", "values": ["x*"]},
                              {"key": "request.auth.presenter", "notValues": ["bad"]}]}
                 ]}}
            ]
        });
        load(config.to_string().as_bytes(), &NodeInfo::default())
            .expect("the fixed authentication config loads")
            .0
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let mut u = Unstructured::new(rest);
    let _ = match selector % 5 {
        0 => {
            let text = String::from_utf8_lossy(rest);
            if let Ok(t) = jwt::parse(&text) {
                let _ = t.check_time(NOW);
                let _ = keyset().verify(&t);
            }
            Ok(())
        }
        1 => structured_token(&mut u),
        2 => {
            let text = String::from_utf8_lossy(rest);
            let _ = KeySet::parse(&text, JwksSource::Inline);
            let _ = KeySet::parse(&text, JwksSource::Remote);
            Ok(())
        }
        3 => structured_jwks(&mut u),
        _ => authenticate(&mut u),
    };
});

/// A compact JWS and whether its signature is a correct HS256 MAC under [`SECRET`].
fn token(u: &mut Unstructured<'_>) -> Result<(String, bool)> {
    let header = if u.ratio(1, 8)? {
        short_bytes(u, 48)?
    } else {
        let mut h = Map::new();
        if u.ratio(7, 8)? {
            h.insert(
                "alg".into(),
                match u.int_in_range(0..=7)? {
                    0..=4 => json!("HS256"),
                    5 => json!(pick(
                        u,
                        &["RS256", "ES256", "EdDSA", "HS512", "none", "hs256"]
                    )?),
                    6 => json!(u.arbitrary::<i32>()?),
                    _ => Value::Null,
                },
            );
        }
        if u.ratio(1, 2)? {
            h.insert(
                "kid".into(),
                if u.ratio(7, 8)? {
                    json!(pick(u, &["hs-1", "hs-2", "", "other"])?)
                } else {
                    json!(1)
                },
            );
        }
        if u.ratio(1, 3)? {
            h.insert("typ".into(), json!(pick(u, &["JWT", "at+jwt", "", "x"])?));
        }
        if u.ratio(1, 16)? {
            h.insert("crit".into(), json!(["exp"]));
        }
        serde_json::to_vec(&Value::Object(h)).unwrap_or_default()
    };
    let payload = if u.ratio(1, 8)? {
        short_bytes(u, 64)?
    } else {
        serde_json::to_vec(&payload(u)?).unwrap_or_default()
    };
    let signing_input = format!("{}.{}", b64(&header), b64(&payload));
    let (signature, valid) = match u.int_in_range(0..=5)? {
        0..=3 => (
            b64(&hmac_sha256::HMAC::mac(signing_input.as_bytes(), SECRET)),
            true,
        ),
        4 => (b64(&short_bytes(u, 40)?), false),
        _ => (pick(u, &["", "!", "AA", "a.b"])?, false),
    };
    let mut text = format!("{signing_input}.{signature}");
    if u.ratio(1, 16)? {
        // Envoy reads the rest of the value after the token start: trailing junk is kept.
        text.push_str(&pick(u, &[" ", ",x", ".", "=="])?);
    }
    Ok((text, valid))
}

fn timestamp(u: &mut Unstructured<'_>) -> Result<Value> {
    Ok(match u.int_in_range(0..=7)? {
        0..=2 => json!(NOW + u.int_in_range(0..=7200)? - 3600),
        3 => json!(u.arbitrary::<u64>()?),
        4 => json!(u.arbitrary::<i64>()?),
        5 => {
            let f: f64 = u.arbitrary()?;
            if f.is_finite() {
                json!(f)
            } else {
                json!(1e300)
            }
        }
        6 => json!(pick(u, &["1800000000", "", "x"])?),
        _ => json!(*u.choose(&[
            18_446_744_073_709_551_615u64,
            9_223_372_036_854_775_807,
            4_294_967_296,
            0
        ])?),
    })
}

fn payload(u: &mut Unstructured<'_>) -> Result<Value> {
    let mut p = Map::new();
    if u.ratio(7, 8)? {
        p.insert(
            "iss".into(),
            if u.ratio(7, 8)? {
                json!(pick(u, &[ISS, ISS2, "", "other"])?)
            } else {
                json!(5)
            },
        );
    }
    if u.ratio(3, 4)? {
        p.insert(
            "sub".into(),
            if u.ratio(7, 8)? {
                json!(pick(u, &["alice", "", "a/b"])?)
            } else {
                json!([])
            },
        );
    }
    for name in ["exp", "nbf", "iat"] {
        if u.ratio(1, 2)? {
            p.insert(name.into(), timestamp(u)?);
        }
    }
    if u.ratio(1, 2)? {
        p.insert(
            "aud".into(),
            match u.int_in_range(0..=3)? {
                0 => json!(pick(
                    u,
                    &["aud1", "http://aud2", "https://aud2/", "aud3", ""]
                )?),
                1 => json!(list(u, 3, |u| pick(u, &["aud1", "aud2", "x"]))?),
                2 => json!(["aud1", 7]),
                _ => json!({"a": 1}),
            },
        );
    }
    if u.ratio(1, 3)? {
        p.insert(
            "roles".into(),
            json!(pick(u, &["admin user", "admin", "  ", ""])?),
        );
    }
    if u.ratio(1, 3)? {
        p.insert("a".into(), json!({"b": pick(u, &["x1", "y", ""])?}));
    }
    if u.ratio(1, 4)? {
        p.insert("azp".into(), json!(pick(u, &["bad", "client"])?));
    }
    if u.ratio(1, 8)? {
        p.insert("jti".into(), json!(null));
    }
    Ok(Value::Object(p))
}

fn structured_token(u: &mut Unstructured<'_>) -> Result<()> {
    let (text, _) = token(u)?;
    debug("token", &text);
    let now = if u.ratio(3, 4)? {
        NOW
    } else {
        u.int_in_range(0..=1u64 << 34)?
    };
    if let Ok(t) = jwt::parse(&text) {
        let _ = t.check_time(now);
        let allowed = list(u, 2, |u| pick(u, &["aud1", "https://aud2/", "aud2", ""]))?;
        let _ = t.check_audience(&allowed);
        let _ = keyset().verify(&t);
    }
    Ok(())
}

fn structured_jwks(u: &mut Unstructured<'_>) -> Result<()> {
    let keys = list(u, 3, |u| {
        let mut k = Map::new();
        let kty = pick(u, &["oct", "RSA", "EC", "OKP", "oct "])?;
        k.insert("kty".into(), json!(kty));
        if u.ratio(1, 2)? {
            k.insert(
                "crv".into(),
                json!(pick(u, &["P-256", "P-384", "Ed25519", "P-521"])?),
            );
        }
        if u.ratio(1, 2)? {
            k.insert(
                "alg".into(),
                json!(pick(
                    u,
                    &["HS256", "RS256", "PS384", "ES256", "ES384", "EdDSA", "none"]
                )?),
            );
        }
        if u.ratio(1, 4)? {
            k.insert("use".into(), json!(pick(u, &["sig", "enc", ""])?));
        }
        if u.ratio(1, 2)? {
            k.insert("kid".into(), json!(pick(u, &["hs-1", "k"])?));
        }
        for field in ["k", "n", "e", "x", "y"] {
            if u.ratio(1, 2)? {
                let material = match field {
                    "k" if u.ratio(1, 2)? => SECRET.to_vec(),
                    "e" if u.ratio(1, 2)? => vec![1, 0, 1],
                    _ => short_bytes(u, 96)?,
                };
                k.insert(field.into(), json!(b64(&material)));
            }
        }
        Ok(Value::Object(k))
    })?;
    let doc = json!({ "keys": keys }).to_string();
    debug("jwks", &doc);
    let source = if u.arbitrary()? {
        JwksSource::Inline
    } else {
        JwksSource::Remote
    };
    if let Ok(set) = KeySet::parse(&doc, source) {
        let _ = set.len();
        let (text, _) = token(u)?;
        if let Ok(t) = jwt::parse(&text) {
            let _ = set.verify(&t);
        }
    }
    Ok(())
}

fn authenticate(u: &mut Unstructured<'_>) -> Result<()> {
    let engine = engine();
    let mut headers: Vec<(String, Vec<u8>)> = Vec::new();
    let mut signed: Vec<String> = Vec::new();
    let method = pick(u, &["GET", "OPTIONS", "POST"])?;
    headers.push((":method".into(), method.into_bytes()));
    let mut path = pick(u, &["/", "/p", "/p#f"])?;
    for _ in 0..u.int_in_range(0..=4)? {
        let (tok, valid) = token(u)?;
        if valid {
            signed.push(tok.clone());
        }
        match u.int_in_range(0..=5)? {
            0 => {
                let prefix = pick(
                    u,
                    &["Bearer ", "bearer ", "Bearer  ", "xBearer ", "Basic ", ""],
                )?;
                headers.push((
                    "authorization".into(),
                    format!("{prefix}{tok}").into_bytes(),
                ));
            }
            1 => headers.push(("x-jwt".into(), tok.into_bytes())),
            2 => {
                let sep = if path.contains('?') { "&" } else { "?" };
                let name = pick(u, &["access_token", "access_token_x", "token"])?;
                path.push_str(&format!("{sep}{name}={tok}"));
            }
            3 => {
                let before = pick(u, &["", "a=1; ", "a=1;", "session=; "])?;
                headers.push((
                    "cookie".into(),
                    format!("{before}session={tok}").into_bytes(),
                ));
            }
            4 => headers.push((
                pick(
                    u,
                    &[
                        "authorization",
                        "cookie",
                        "x-jwt",
                        "origin",
                        "access-control-request-method",
                        "x-sub",
                    ],
                )?,
                short_bytes(u, 64)?,
            )),
            _ => path.push_str(&pick(
                u,
                &["#access_token=x", "?", "&", "=", "access_token="],
            )?),
        }
    }
    headers.push((":path".into(), path.into_bytes()));
    debug("headers", &headers);
    let now = if u.ratio(7, 8)? {
        NOW
    } else {
        u.int_in_range(0..=1u64 << 34)?
    };
    let mut state = AuthnState::new(u.int_in_range(0..=2)?);
    let mut edits = Vec::new();
    let h = Headers::new(&headers);
    for _ in 0..2 {
        // Twice: the second run may be served from the cache and must agree.
        edits.clear();
        let outcome = engine
            .authenticator()
            .authenticate(h, now, &mut state, &mut edits);
        match &outcome {
            Outcome::Verified(claims) => {
                debug("verified", claims);
                assert!(
                    !signed.is_empty(),
                    "a token verified although none carried a correct signature: {headers:?}"
                );
                let _ = engine.decide_with_claims(h, &StaticConnection::default(), Some(claims));
            }
            Outcome::NoToken | Outcome::Rejected(_) => {}
        }
        let again = engine
            .authenticator()
            .authenticate(h, now, &mut state, &mut Vec::new());
        assert_eq!(outcome, again, "the cache changed the outcome: {headers:?}");
    }
    Ok(())
}
