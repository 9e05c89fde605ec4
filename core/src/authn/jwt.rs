//! JSON Web Tokens as Envoy's `jwt_authn` checks them: parsing, the cheap checks, JWKS keys,
//! and the signature (through jwt-simple).
//!
//! Order and texts mirror Envoy (`source/common/jwt/{jwt,verify,status,check_audience}.cc`,
//! `jwt_authn/authenticator.cc`): parse, then issuer, then time (60 s skew: `nbf` against
//! `now + 60`, `exp` against `now - 60`, `iat` ignored), then audience (both sides stripped of
//! `http://` / `https://` and one trailing `/`), then key selection by `kid` and `alg`, and only
//! then the signature. Garbage, expired and wrong-audience tokens therefore never cost a
//! signature check. Each failure carries Envoy's exact status text and HTTP code (401, or 403
//! for a disallowed audience).
//!
//! Differences that come from jwt-simple's key import: RSA moduli must be 2048-4096 bits with
//! `e = 65537`; other RSA keys in a JWKS are skipped (Envoy would accept them).

use jwt_simple::prelude::*;
use serde_json::{Map, Value};

/// Clock skew for `exp` and `nbf`, Envoy's `kClockSkewInSecond`.
pub const CLOCK_SKEW_SECS: u64 = 60;
/// Tokens larger than this are rejected as malformed before any decoding.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// Why a token was rejected, with Envoy's status text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtFailure {
    BadFormat,
    HeaderBadBase64,
    HeaderBadJson,
    HeaderBadAlg,
    HeaderNotImplementedAlg,
    HeaderKidNotString,
    PayloadBadBase64,
    PayloadBadJson,
    PayloadIssNotString,
    PayloadSubNotString,
    PayloadIatNotInteger,
    PayloadNbfNotInteger,
    PayloadExpNotInteger,
    PayloadIatOutOfRange,
    PayloadNbfOutOfRange,
    PayloadExpOutOfRange,
    PayloadJtiNotString,
    PayloadAudNotStringOrList,
    SignatureBadBase64,
    UnknownIssuer,
    Expired,
    NotYetValid,
    AudienceNotAllowed,
    VerificationFails,
    KidAlgMismatch,
    NoValidKeys,
    JwksFetchFailed,
}

impl JwtFailure {
    /// The body Envoy sends (`getStatusString`).
    pub fn message(self) -> &'static str {
        use JwtFailure::*;
        match self {
            BadFormat => {
                "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections"
            }
            HeaderBadBase64 => "Jwt header is an invalid Base64url encoded",
            HeaderBadJson => "Jwt header is an invalid JSON",
            HeaderBadAlg => "Jwt header [alg] field is required and must be a string",
            HeaderNotImplementedAlg => "Jwt header [alg] is not supported",
            HeaderKidNotString => "Jwt header [kid] field is not a string",
            PayloadBadBase64 => "Jwt payload is an invalid Base64url encoded",
            PayloadBadJson => "Jwt payload is an invalid JSON",
            PayloadIssNotString => "Jwt payload [iss] field is not a string",
            PayloadSubNotString => "Jwt payload [sub] field is not a string",
            PayloadIatNotInteger => "Jwt payload [iat] field is not an integer",
            PayloadNbfNotInteger => "Jwt payload [nbf] field is not an integer",
            PayloadExpNotInteger => "Jwt payload [exp] field is not an integer",
            PayloadIatOutOfRange => "Jwt payload [iat] field is not a positive 64 bit integer",
            PayloadNbfOutOfRange => "Jwt payload [nbf] field is not a positive 64 bit integer",
            PayloadExpOutOfRange => "Jwt payload [exp] field is not a positive 64 bit integer",
            PayloadJtiNotString => "Jwt payload [jti] field is not a string",
            PayloadAudNotStringOrList => "Jwt payload [aud] field is not a string or string list",
            SignatureBadBase64 => "Jwt signature is an invalid Base64url encoded",
            UnknownIssuer => "Jwt issuer is not configured",
            Expired => "Jwt is expired",
            NotYetValid => "Jwt not yet valid",
            AudienceNotAllowed => "Audiences in Jwt are not allowed",
            VerificationFails => "Jwt verification fails",
            KidAlgMismatch => "Jwks doesn't have key to match kid or alg from Jwt",
            NoValidKeys => "Jwks doesn't have any valid public key",
            JwksFetchFailed => "Jwks remote fetch is failed",
        }
    }

    /// 403 for a disallowed audience, 401 for everything else (`jwt_authn/filter.cc`).
    pub fn http_status(self) -> u32 {
        if self == JwtFailure::AudienceNotAllowed {
            403
        } else {
            401
        }
    }

    /// A short label for logs and metrics.
    pub fn reason(self) -> &'static str {
        use JwtFailure::*;
        match self {
            UnknownIssuer => "unknown_issuer",
            Expired => "expired",
            NotYetValid => "not_yet_valid",
            AudienceNotAllowed => "audience",
            VerificationFails => "signature",
            KidAlgMismatch | NoValidKeys => "no_matching_key",
            JwksFetchFailed => "jwks_unavailable",
            _ => "malformed",
        }
    }
}

/// The algorithms Envoy supports and jwt-simple can verify here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    Rs256,
    Rs384,
    Rs512,
    Ps256,
    Ps384,
    Ps512,
    Es256,
    Es384,
    EdDsa,
    Hs256,
    Hs384,
    Hs512,
}

impl Alg {
    fn parse(name: &str) -> Option<Alg> {
        Some(match name {
            "RS256" => Alg::Rs256,
            "RS384" => Alg::Rs384,
            "RS512" => Alg::Rs512,
            "PS256" => Alg::Ps256,
            "PS384" => Alg::Ps384,
            "PS512" => Alg::Ps512,
            "ES256" => Alg::Es256,
            "ES384" => Alg::Es384,
            "EdDSA" => Alg::EdDsa,
            "HS256" => Alg::Hs256,
            "HS384" => Alg::Hs384,
            "HS512" => Alg::Hs512,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Alg::Rs256 => "RS256",
            Alg::Rs384 => "RS384",
            Alg::Rs512 => "RS512",
            Alg::Ps256 => "PS256",
            Alg::Ps384 => "PS384",
            Alg::Ps512 => "PS512",
            Alg::Es256 => "ES256",
            Alg::Es384 => "ES384",
            Alg::EdDsa => "EdDSA",
            Alg::Hs256 => "HS256",
            Alg::Hs384 => "HS384",
            Alg::Hs512 => "HS512",
        }
    }
}

/// A token after parsing, before any trust decision.
#[derive(Debug, Clone)]
pub struct ParsedToken {
    alg: Alg,
    kid: Option<String>,
    /// The header `typ`; Envoy ignores it, so it is passed through to jwt-simple as "expected".
    typ: Option<String>,
    pub payload: Map<String, Value>,
    pub issuer: Option<String>,
    pub audiences: Vec<String>,
    pub expires: Option<u64>,
    not_before: Option<u64>,
}

fn b64(segment: &str) -> Option<Vec<u8>> {
    Base64UrlSafeNoPadding::decode_to_vec(segment, None).ok()
}

/// Envoy `GetUInt64`: a JSON number, truncated; negative or >= 2^64 is out of range.
fn timestamp(
    payload: &Map<String, Value>,
    name: &str,
    not_integer: JwtFailure,
    out_of_range: JwtFailure,
) -> Result<Option<u64>, JwtFailure> {
    match payload.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => {
            if let Some(u) = n.as_u64() {
                return Ok(Some(u));
            }
            match n.as_f64() {
                Some(f) if (0.0..18_446_744_073_709_551_616.0).contains(&f) => Ok(Some(f as u64)),
                _ => Err(out_of_range),
            }
        }
        Some(_) => Err(not_integer),
    }
}

/// Parses a compact JWS with Envoy's checks and error texts.
pub fn parse(token: &str) -> Result<ParsedToken, JwtFailure> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(JwtFailure::BadFormat);
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtFailure::BadFormat);
    };
    // Envoy splits with SkipEmpty: an empty segment leaves fewer than three sections.
    if header.is_empty() || payload.is_empty() || signature.is_empty() {
        return Err(JwtFailure::BadFormat);
    }
    let header: Value = serde_json::from_slice(&b64(header).ok_or(JwtFailure::HeaderBadBase64)?)
        .map_err(|_| JwtFailure::HeaderBadJson)?;
    let header = header.as_object().ok_or(JwtFailure::HeaderBadJson)?;
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or(JwtFailure::HeaderBadAlg)?;
    let alg = Alg::parse(alg).ok_or(JwtFailure::HeaderNotImplementedAlg)?;
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(k)) => Some(k.clone()),
        Some(_) => return Err(JwtFailure::HeaderKidNotString),
    };
    let typ = header
        .get("typ")
        .and_then(Value::as_str)
        .map(str::to_string);
    let payload: Value = serde_json::from_slice(&b64(payload).ok_or(JwtFailure::PayloadBadBase64)?)
        .map_err(|_| JwtFailure::PayloadBadJson)?;
    let Value::Object(payload) = payload else {
        return Err(JwtFailure::PayloadBadJson);
    };
    for (name, failure) in [
        ("iss", JwtFailure::PayloadIssNotString),
        ("sub", JwtFailure::PayloadSubNotString),
        ("jti", JwtFailure::PayloadJtiNotString),
    ] {
        if payload.get(name).is_some_and(|v| !v.is_string()) {
            return Err(failure);
        }
    }
    use JwtFailure::*;
    timestamp(&payload, "iat", PayloadIatNotInteger, PayloadIatOutOfRange)?;
    let not_before = timestamp(&payload, "nbf", PayloadNbfNotInteger, PayloadNbfOutOfRange)?;
    let expires = timestamp(&payload, "exp", PayloadExpNotInteger, PayloadExpOutOfRange)?;
    let audiences = match payload.get("aud") {
        None => Vec::new(),
        Some(Value::String(a)) => vec![a.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or(JwtFailure::PayloadAudNotStringOrList)?,
        Some(_) => return Err(JwtFailure::PayloadAudNotStringOrList),
    };
    // Envoy's base64url decoder skips whitespace (measured with Envoy 1.40: a signature with a
    // space in it fails verification, one with a character outside the alphabet does not parse).
    let compact: String = signature
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    if b64(&compact).is_none() {
        return Err(JwtFailure::SignatureBadBase64);
    }
    let issuer = payload
        .get("iss")
        .and_then(Value::as_str)
        .map(str::to_string);
    Ok(ParsedToken {
        alg,
        kid,
        typ,
        payload,
        issuer,
        audiences,
        expires,
        not_before,
    })
}

impl ParsedToken {
    /// Envoy's time constraint with the 60 s skew.
    pub fn check_time(&self, now: u64) -> Result<(), JwtFailure> {
        if self
            .not_before
            .is_some_and(|nbf| now.saturating_add(CLOCK_SKEW_SECS) < nbf)
        {
            return Err(JwtFailure::NotYetValid);
        }
        if self
            .expires
            .is_some_and(|exp| now > exp.saturating_add(CLOCK_SKEW_SECS))
        {
            return Err(JwtFailure::Expired);
        }
        Ok(())
    }

    /// Envoy `checkAudience`: an empty allow list accepts anything; otherwise some token
    /// audience must be allowed after sanitizing both sides.
    pub fn check_audience(&self, allowed: &[String]) -> Result<(), JwtFailure> {
        if allowed.is_empty() {
            return Ok(());
        }
        let ok = self.audiences.iter().any(|aud| {
            allowed
                .iter()
                .any(|a| sanitize_audience(a) == sanitize_audience(aud))
        });
        if ok {
            Ok(())
        } else {
            Err(JwtFailure::AudienceNotAllowed)
        }
    }
}

fn sanitize_audience(aud: &str) -> &str {
    let aud = aud
        .strip_prefix("http://")
        .or_else(|| aud.strip_prefix("https://"))
        .unwrap_or(aud);
    aud.strip_suffix('/').unwrap_or(aud)
}

/// One public (or, for inline JWKS only, symmetric) key from a JWKS.
#[derive(Debug, Clone)]
pub struct Jwk {
    kid: Option<String>,
    alg: Option<Alg>,
    material: KeyMaterial,
}

#[derive(Debug, Clone)]
enum KeyMaterial {
    Rsa { n: Vec<u8>, e: Vec<u8> },
    P256(Vec<u8>),
    P384(Vec<u8>),
    Ed25519(Vec<u8>),
    Oct(Vec<u8>),
}

impl KeyMaterial {
    fn fits(&self, alg: Alg) -> bool {
        matches!(
            (self, alg),
            (
                KeyMaterial::Rsa { .. },
                Alg::Rs256 | Alg::Rs384 | Alg::Rs512 | Alg::Ps256 | Alg::Ps384 | Alg::Ps512
            ) | (KeyMaterial::P256(_), Alg::Es256)
                | (KeyMaterial::P384(_), Alg::Es384)
                | (KeyMaterial::Ed25519(_), Alg::EdDsa)
                | (KeyMaterial::Oct(_), Alg::Hs256 | Alg::Hs384 | Alg::Hs512)
        )
    }
}

/// A parsed JWKS: the usable signing keys, in document order.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    keys: Vec<Jwk>,
}

/// Whether a JWKS may carry symmetric (`oct`) keys: only an inline one, never a fetched one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwksSource {
    Inline,
    Remote,
}

impl KeySet {
    /// Parses a JWKS document. Entries with `use` other than `sig`, unknown key types or
    /// unusable material are skipped; a set with no usable key is an error.
    pub fn parse(json: &str, source: JwksSource) -> Result<KeySet, String> {
        let doc: Value =
            serde_json::from_str(json).map_err(|e| format!("JWKS is not valid JSON: {e}"))?;
        let entries = doc
            .get("keys")
            .and_then(Value::as_array)
            .ok_or("JWKS has no \"keys\" array")?;
        let keys: Vec<Jwk> = entries
            .iter()
            .filter_map(|e| parse_jwk(e, source))
            .collect();
        if keys.is_empty() {
            return Err("JWKS has no usable signing key".to_string());
        }
        Ok(KeySet { keys })
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Envoy `verifyJwtWithoutTimeChecking`: try every key whose `kid` and `alg` fit; the first
    /// that verifies wins.
    pub fn verify(&self, token: &ParsedToken, raw: &str, now: u64) -> Result<(), JwtFailure> {
        let mut tried = false;
        for key in &self.keys {
            if let (Some(want), Some(have)) = (&token.kid, &key.kid) {
                if want != have {
                    continue;
                }
            }
            if key.alg.is_some_and(|a| a != token.alg) || !key.material.fits(token.alg) {
                continue;
            }
            tried = true;
            if verify_signature(&key.material, token, raw, now) {
                return Ok(());
            }
        }
        if tried {
            Err(JwtFailure::VerificationFails)
        } else {
            Err(JwtFailure::KidAlgMismatch)
        }
    }
}

fn field<'v>(entry: &'v Value, name: &str) -> Option<&'v str> {
    entry.get(name).and_then(Value::as_str)
}

fn parse_jwk(entry: &Value, source: JwksSource) -> Option<Jwk> {
    if field(entry, "use").is_some_and(|u| u != "sig") {
        return None;
    }
    let alg = match field(entry, "alg") {
        None => None,
        Some(name) => Some(Alg::parse(name)?),
    };
    let material = match (field(entry, "kty")?, field(entry, "crv")) {
        ("RSA", _) => KeyMaterial::Rsa {
            n: b64(field(entry, "n")?)?,
            e: b64(field(entry, "e")?)?,
        },
        ("EC", Some("P-256")) => KeyMaterial::P256(ec_point(entry)?),
        ("EC", Some("P-384")) => KeyMaterial::P384(ec_point(entry)?),
        ("OKP", Some("Ed25519")) => KeyMaterial::Ed25519(b64(field(entry, "x")?)?),
        ("oct", _) if source == JwksSource::Inline => KeyMaterial::Oct(b64(field(entry, "k")?)?),
        _ => return None,
    };
    if alg.is_some_and(|a| !material.fits(a)) || !key_imports(&material) {
        return None;
    }
    Some(Jwk {
        kid: field(entry, "kid").map(str::to_string),
        alg,
        material,
    })
}

/// SEC1 uncompressed point `04 || x || y`.
fn ec_point(entry: &Value) -> Option<Vec<u8>> {
    let mut point = vec![0x04];
    point.extend(b64(field(entry, "x")?)?);
    point.extend(b64(field(entry, "y")?)?);
    Some(point)
}

/// Rejects material jwt-simple cannot import (weak RSA, off-curve points) at load time.
fn key_imports(material: &KeyMaterial) -> bool {
    match material {
        KeyMaterial::Rsa { n, e } => RS256PublicKey::from_components(n, e).is_ok(),
        KeyMaterial::P256(p) => ES256PublicKey::from_bytes(p).is_ok(),
        KeyMaterial::P384(p) => ES384PublicKey::from_bytes(p).is_ok(),
        KeyMaterial::Ed25519(x) => Ed25519PublicKey::from_bytes(x).is_ok(),
        KeyMaterial::Oct(k) => !k.is_empty(),
    }
}

/// jwt-simple re-checks the claims; ours already ran with Envoy's rules, so pin its clock to
/// ours, give it a day of tolerance (coarsetime's fixed-point seconds overflow far beyond that)
/// and no issuer/audience constraints: only the signature can fail here.
fn signature_only(now: u64, typ: Option<&str>) -> VerificationOptions {
    VerificationOptions {
        // jwt-simple otherwise rejects a `typ` other than JWT / *+JWT, which Envoy accepts.
        required_signature_type: typ.map(str::to_string),
        accept_future: true,
        time_tolerance: Some(Duration::from_days(1)),
        artificial_time: Some(UnixTimeStamp::from_secs(now)),
        max_token_length: Some(MAX_TOKEN_LEN),
        ..VerificationOptions::default()
    }
}

fn verify_signature(material: &KeyMaterial, token: &ParsedToken, raw: &str, now: u64) -> bool {
    let alg = token.alg;
    let o = Some(signature_only(now, token.typ.as_deref()));
    let ok = match (material, alg) {
        (KeyMaterial::Rsa { n, e }, alg) => match alg {
            Alg::Rs256 => RS256PublicKey::from_components(n, e)
                .and_then(|k| k.verify_token::<NoCustomClaims>(raw, o))
                .is_ok(),
            Alg::Rs384 => RS384PublicKey::from_components(n, e)
                .and_then(|k| k.verify_token::<NoCustomClaims>(raw, o))
                .is_ok(),
            Alg::Rs512 => RS512PublicKey::from_components(n, e)
                .and_then(|k| k.verify_token::<NoCustomClaims>(raw, o))
                .is_ok(),
            Alg::Ps256 => PS256PublicKey::from_components(n, e)
                .and_then(|k| k.verify_token::<NoCustomClaims>(raw, o))
                .is_ok(),
            Alg::Ps384 => PS384PublicKey::from_components(n, e)
                .and_then(|k| k.verify_token::<NoCustomClaims>(raw, o))
                .is_ok(),
            Alg::Ps512 => PS512PublicKey::from_components(n, e)
                .and_then(|k| k.verify_token::<NoCustomClaims>(raw, o))
                .is_ok(),
            _ => false,
        },
        (KeyMaterial::P256(p), Alg::Es256) => ES256PublicKey::from_bytes(p)
            .and_then(|k| k.verify_token::<NoCustomClaims>(raw, o))
            .is_ok(),
        (KeyMaterial::P384(p), Alg::Es384) => ES384PublicKey::from_bytes(p)
            .and_then(|k| k.verify_token::<NoCustomClaims>(raw, o))
            .is_ok(),
        (KeyMaterial::Ed25519(x), Alg::EdDsa) => Ed25519PublicKey::from_bytes(x)
            .and_then(|k| k.verify_token::<NoCustomClaims>(raw, o))
            .is_ok(),
        (KeyMaterial::Oct(k), Alg::Hs256) => HS256Key::from_bytes(k)
            .verify_token::<NoCustomClaims>(raw, o)
            .is_ok(),
        (KeyMaterial::Oct(k), Alg::Hs384) => HS384Key::from_bytes(k)
            .verify_token::<NoCustomClaims>(raw, o)
            .is_ok(),
        (KeyMaterial::Oct(k), Alg::Hs512) => HS512Key::from_bytes(k)
            .verify_token::<NoCustomClaims>(raw, o)
            .is_ok(),
        _ => false,
    };
    log::trace!("meshguard: {} signature check: {ok}", alg.name());
    ok
}
