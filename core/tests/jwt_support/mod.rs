//! Helpers for the JWT tests (`jwt_authn.rs`, `jwt_authz.rs`): keys generated at test time
//! with jwt-simple, JWKS documents built from the public keys, tokens signed with chosen
//! claims (or forged by hand for malformed cases), RequestAuthentication / AuthorizationPolicy
//! resources, and a request builder that runs `Authenticator::authenticate` and the engine.
//!
//! All times are relative to the fixed [`NOW`] passed to `authenticate`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    dead_code
)]

use std::cell::RefCell;
use std::sync::OnceLock;

use jwt_simple::prelude::*;
use meshguard_core::authn::authenticator::{AuthnState, HeaderEdit, Outcome};
use meshguard_core::authn::jwt::JwtFailure;
use meshguard_core::error::ConfigError;
use meshguard_core::plugin::engine::{Decision, Engine};
use meshguard_core::plugin::plugin_config::{load, NodeInfo};
use meshguard_core::plugin::request_pipeline::{decide_request, PipelineRequest, Side, Stage};
use meshguard_core::request::request_view::{Headers, StaticConnection};
use serde_json::{json, Map, Value};

/// The fixed "now" (2027-01-15) every test passes to `authenticate`.
pub const NOW: u64 = 1_800_000_000;
/// The workload namespace.
pub const NS: &str = "foo";

pub const ISS: &str = "https://issuer.example.com";
pub const ISS2: &str = "https://other.example.com";
pub const KC_ISS: &str = "https://kc.example.com/realms/demo";

// ---------------------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------------------

/// Keys shared by all tests of one binary (RSA generation is the slow part).
pub struct Keys {
    /// RS256, kid `rsa-1`.
    pub rsa: RS256KeyPair,
    /// Another RSA key with the *same* kid `rsa-1` (for bad-signature tests).
    pub rsa_impostor: RS256KeyPair,
    /// A second RSA key, kid `rsa-2`.
    pub rsa2: RS256KeyPair,
    /// PS256, kid `ps-1`.
    pub ps: PS256KeyPair,
    /// ES256, kid `ec-1`.
    pub ec: ES256KeyPair,
    /// Ed25519, kid `ed-1`.
    pub ed: Ed25519KeyPair,
    /// HS256 secret, kid `hs-1`.
    pub hs: HS256Key,
}

pub fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| Keys {
        rsa: RS256KeyPair::generate(2048).unwrap().with_key_id("rsa-1"),
        rsa_impostor: RS256KeyPair::generate(2048).unwrap().with_key_id("rsa-1"),
        rsa2: RS256KeyPair::generate(2048).unwrap().with_key_id("rsa-2"),
        ps: PS256KeyPair::generate(2048).unwrap().with_key_id("ps-1"),
        ec: ES256KeyPair::generate().with_key_id("ec-1"),
        ed: Ed25519KeyPair::generate().with_key_id("ed-1"),
        hs: HS256Key::generate().with_key_id("hs-1"),
    })
}

pub fn b64(bytes: &[u8]) -> String {
    Base64UrlSafeNoPadding::encode_to_string(bytes).unwrap()
}

pub fn b64_json(v: &Value) -> String {
    b64(serde_json::to_string(v).unwrap().as_bytes())
}

pub fn unb64(s: &str) -> Vec<u8> {
    Base64UrlSafeNoPadding::decode_to_vec(s, None).unwrap()
}

fn jwk_value(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

/// RSA public JWK built from the components `n`, `e` (no `alg`, no `use`).
pub fn rsa_jwk_components(kp: &RS256KeyPair, kid: Option<&str>) -> Value {
    let c = kp.public_key().to_components();
    let mut v = json!({"kty": "RSA", "n": b64(&c.n), "e": b64(&c.e)});
    if let Some(kid) = kid {
        v["kid"] = json!(kid);
    }
    v
}

/// The RS256 public key as jwt-simple exports it (`alg: RS256`, `use: sig`, `kid`).
pub fn rsa_jwk(kp: &RS256KeyPair) -> Value {
    jwk_value(&kp.public_key().to_jwk())
}

/// The PS256 public key (`alg: PS256`).
pub fn ps_jwk(kp: &PS256KeyPair) -> Value {
    jwk_value(&kp.public_key().to_jwk())
}

/// ES256 public JWK from the SEC1 uncompressed point (x, y).
pub fn ec_jwk(kp: &ES256KeyPair, kid: &str) -> Value {
    let point = kp.public_key().public_key().to_bytes_uncompressed();
    assert_eq!(point.len(), 65);
    assert_eq!(point[0], 4);
    json!({"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": kid,
           "x": b64(&point[1..33]), "y": b64(&point[33..65])})
}

/// Ed25519 public JWK (`OKP`).
pub fn ed_jwk(kp: &Ed25519KeyPair, kid: &str) -> Value {
    json!({"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "kid": kid,
           "x": b64(&kp.public_key().to_bytes())})
}

/// HS256 secret as an inline `oct` JWK.
pub fn oct_jwk(key: &HS256Key, kid: &str) -> Value {
    json!({"kty": "oct", "alg": "HS256", "kid": kid, "k": b64(&key.to_bytes())})
}

/// A JWKS document (the string RequestAuthentication `jwks` carries).
pub fn jwks(keys: &[Value]) -> String {
    json!({ "keys": keys }).to_string()
}

/// JWKS with every test key (RSA `rsa-1`, PS256, ES256, Ed25519, HS256).
pub fn jwks_all() -> String {
    let k = keys();
    jwks(&[
        rsa_jwk(&k.rsa),
        ps_jwk(&k.ps),
        ec_jwk(&k.ec, "ec-1"),
        ed_jwk(&k.ed, "ed-1"),
        oct_jwk(&k.hs, "hs-1"),
    ])
}

/// JWKS with only the RS256 key `rsa-1`.
pub fn jwks_rsa() -> String {
    jwks(&[rsa_jwk(&keys().rsa)])
}

// ---------------------------------------------------------------------------------------
// Tokens
// ---------------------------------------------------------------------------------------

/// A claims payload for jwt-simple holding exactly `payload` (any JSON object, even claims of
/// the wrong type): every standard field is left unset and the whole object goes into the
/// flattened custom claims, so the signed payload is byte-for-byte this JSON.
pub fn claims(payload: Value) -> JWTClaims<Map<String, Value>> {
    let Value::Object(custom) = payload else {
        panic!("a JWT payload must be a JSON object");
    };
    JWTClaims {
        issued_at: None,
        expires_at: None,
        invalid_before: None,
        issuer: None,
        subject: None,
        audiences: None,
        jwt_id: None,
        nonce: None,
        custom,
    }
}

/// A standard payload: `iss`, `sub`, `iat = NOW - 10`, `exp = NOW + 3600`, merged with `extra`
/// (a `null` in `extra` removes the claim).
pub fn payload(iss: &str, sub: &str, extra: Value) -> Value {
    let mut p = json!({"iss": iss, "sub": sub, "iat": NOW - 10, "exp": NOW + 3600});
    for (k, v) in extra.as_object().unwrap() {
        if v.is_null() {
            p.as_object_mut().unwrap().remove(k);
        } else {
            p[k] = v.clone();
        }
    }
    p
}

pub fn rs256(kp: &RS256KeyPair, payload: Value) -> String {
    kp.sign(claims(payload)).unwrap()
}

pub fn ps256(kp: &PS256KeyPair, payload: Value) -> String {
    kp.sign(claims(payload)).unwrap()
}

pub fn es256(kp: &ES256KeyPair, payload: Value) -> String {
    kp.sign(claims(payload)).unwrap()
}

pub fn eddsa(kp: &Ed25519KeyPair, payload: Value) -> String {
    kp.sign(claims(payload)).unwrap()
}

pub fn hs256(key: &HS256Key, payload: Value) -> String {
    key.authenticate(claims(payload)).unwrap()
}

/// The default token: RS256 `rsa-1`, issuer [`ISS`], subject `alice`, valid for an hour.
pub fn good_token() -> String {
    rs256(&keys().rsa, payload(ISS, "alice", json!({})))
}

/// A hand-made token: base64url(header).base64url(payload).signature. The signature is
/// whatever the caller passes (signature checks come after parsing).
pub fn forge(header: &Value, payload: &Value, signature: &str) -> String {
    format!("{}.{}.{}", b64_json(header), b64_json(payload), signature)
}

/// A base64url signature segment that decodes fine but verifies nothing.
pub const FAKE_SIG: &str = "c2lnbmF0dXJl";

// ---------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------

/// A `security.istio.io/v1` RequestAuthentication.
pub fn ra(namespace: &str, name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "security.istio.io/v1",
        "kind": "RequestAuthentication",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    })
}

/// A `security.istio.io/v1` AuthorizationPolicy.
pub fn ap(namespace: &str, name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    })
}

/// A jwtRules entry with an inline JWKS; `extra` fields are merged in.
pub fn rule(issuer: &str, jwks: &str, extra: Value) -> Value {
    let mut r = json!({"issuer": issuer, "jwks": jwks});
    for (k, v) in extra.as_object().unwrap() {
        r[k] = v.clone();
    }
    r
}

/// RequestAuthentication `ra` in the workload namespace with these rules.
pub fn ra_rules(rules: Vec<Value>) -> Value {
    ra(NS, "ra", json!({ "jwtRules": rules }))
}

/// A plugin configuration for workload `foo` (`app=b, version=v1`).
pub fn cfg(resources: Vec<Value>) -> Value {
    json!({
        "workload": {"namespace": NS, "labels": {"app": "b", "version": "v1"}},
        "resources": resources,
    })
}

pub fn load_ok(config: &Value) -> Engine {
    match load(&serde_json::to_vec(config).unwrap(), &NodeInfo::default()) {
        Ok((engine, _)) => engine,
        Err(e) => panic!("expected the configuration to load, got {e}\nconfig: {config}"),
    }
}

pub fn load_err(config: &Value) -> ConfigError {
    match load(&serde_json::to_vec(config).unwrap(), &NodeInfo::default()) {
        Ok(_) => panic!("expected a configuration error\nconfig: {config}"),
        Err(e) => e,
    }
}

/// An engine with one RequestAuthentication holding `rules` (and no authorization policy).
pub fn authn_engine(rules: Vec<Value>) -> Engine {
    load_ok(&cfg(vec![ra_rules(rules)]))
}

/// An engine with one RS256 rule for [`ISS`] plus `extra` rule fields.
pub fn rsa_engine(extra: Value) -> Engine {
    authn_engine(vec![rule(ISS, &jwks_rsa(), extra)])
}

// ---------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------

/// A request: pseudo-headers plus extra (lower-case) headers.
#[derive(Debug, Clone)]
pub struct Req {
    pub headers: Vec<(String, Vec<u8>)>,
}

impl Req {
    pub fn new(method: &str, path: &str) -> Req {
        Req {
            headers: vec![
                (":method".into(), method.as_bytes().to_vec()),
                (":path".into(), path.as_bytes().to_vec()),
                (":authority".into(), b"example.com".to_vec()),
                (":scheme".into(), b"http".to_vec()),
            ],
        }
    }

    pub fn get(path: &str) -> Req {
        Req::new("GET", path)
    }

    pub fn header(mut self, name: &str, value: &str) -> Req {
        self.headers
            .push((name.to_string(), value.as_bytes().to_vec()));
        self
    }

    /// `Authorization: Bearer <token>`.
    pub fn bearer(self, token: &str) -> Req {
        self.header("authorization", &format!("Bearer {token}"))
    }

    pub fn headers(&self) -> Headers<'_> {
        Headers::new(&self.headers)
    }
}

/// One authentication run: outcome, header edits and the state after it.
pub struct Run {
    pub outcome: Outcome,
    pub edits: Vec<HeaderEdit>,
}

/// Authenticates `req` at `now` with an existing state.
pub fn authenticate_with(engine: &Engine, req: &Req, now: u64, state: &mut AuthnState) -> Run {
    let mut edits = Vec::new();
    let outcome = engine
        .authenticator()
        .authenticate(req.headers(), now, state, &mut edits);
    Run { outcome, edits }
}

/// Authenticates `req` at [`NOW`] with a fresh state.
pub fn authenticate(engine: &Engine, req: &Req) -> Run {
    let mut state = AuthnState::new(engine.settings().jwt_cache_size);
    authenticate_with(engine, req, NOW, &mut state)
}

/// Authenticates `req` at `now` with a fresh state.
pub fn authenticate_at(engine: &Engine, req: &Req, now: u64) -> Run {
    let mut state = AuthnState::new(engine.settings().jwt_cache_size);
    authenticate_with(engine, req, now, &mut state)
}

/// The claims of a verified outcome, as `serde_json` reads their text, for easy assertions
/// (`None` if not verified; a token's numbers are doubles: `7.0`).
pub fn claim(outcome: &Outcome, path: &[&str]) -> Option<Value> {
    match outcome {
        Outcome::Verified(c) => {
            let path: Vec<Box<str>> = path.iter().map(|p| (*p).into()).collect();
            c.get(&path)
                .map(|v| serde_json::from_str(&v.to_string()).unwrap())
        }
        _ => None,
    }
}

#[track_caller]
pub fn assert_verified(outcome: &Outcome) {
    match outcome {
        Outcome::Verified(_) => {}
        other => panic!("expected Verified, got {other:?}"),
    }
}

#[track_caller]
pub fn assert_no_token(outcome: &Outcome) {
    match outcome {
        Outcome::NoToken => {}
        other => panic!("expected NoToken, got {other:?}"),
    }
}

/// Asserts a rejection with Envoy's exact body text and status code.
#[track_caller]
pub fn assert_rejected(outcome: &Outcome, message: &str, status: u32) {
    match outcome {
        Outcome::Rejected(f) => {
            assert_eq!(f.message(), message, "failure {f:?}");
            assert_eq!(f.http_status(), status, "failure {f:?}");
        }
        other => panic!("expected Rejected({message:?}, {status}), got {other:?}"),
    }
}

pub const EXPIRED: &str = "Jwt is expired";
pub const NOT_YET_VALID: &str = "Jwt not yet valid";
pub const VERIFICATION_FAILS: &str = "Jwt verification fails";
pub const KID_ALG_MISMATCH: &str = "Jwks doesn't have key to match kid or alg from Jwt";
pub const UNKNOWN_ISSUER: &str = "Jwt issuer is not configured";
pub const AUDIENCE_NOT_ALLOWED: &str = "Audiences in Jwt are not allowed";
pub const JWKS_FETCH_FAILED: &str = "Jwks remote fetch is failed";
pub const BAD_FORMAT: &str =
    "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections";

/// A plain connection without peer certificate.
pub fn conn() -> StaticConnection {
    StaticConnection::default()
}

/// Runs `req` through the filter's request pipeline (inbound, at [`NOW`], a fresh token
/// cache): a rejected token never reaches authorization and yields `Err(failure)`.
pub fn decide<'e>(engine: &'e Engine, req: &Req) -> Result<Decision<'e>, JwtFailure> {
    let c = conn();
    let no_payload = || None;
    let request = PipelineRequest {
        headers: req.headers(),
        connection: &c,
        side: Side::Inbound,
        clock: &|| NOW,
        jwt_authn_payload: &no_payload,
    };
    let cache = RefCell::new(AuthnState::new(engine.settings().jwt_cache_size));
    match decide_request(engine, &request, &cache).stage {
        Stage::TokenRejected(f) => Err(f),
        Stage::Authorized { decision, .. } => Ok(decision),
        other => panic!("the pipeline stopped before authentication: {other:?}"),
    }
}

/// True when authentication passes and authorization allows.
pub fn allowed(engine: &Engine, req: &Req) -> bool {
    match decide(engine, req) {
        Ok(d) => d.is_allowed(),
        Err(f) => panic!("authentication rejected the request: {f:?}"),
    }
}
