//! JSON Web Tokens and JWKS as Envoy's `jwt_authn` reads and checks them: parsing, the cheap
//! checks, JWKS keys, and the signature.
//!
//! Mirrors Envoy 1.40 `source/common/jwt/{jwt,verify,jwks,struct_utils,status}.cc` and
//! `check_audience.cc`:
//!
//! * a token is split on `.` with empty pieces skipped and must leave exactly three sections
//!   (`.a.b.c` and `a..b.c` are tokens; the signed data is `header.payload` of the sections);
//! * each section is decoded with abseil's `WebSafeBase64Unescape` ([`base64url`]): whitespace
//!   is skipped, `=` padding is optional, trailing bits need not be zero;
//! * header and payload are JSON as protobuf reads a `Struct` ([`crate::authn::jwt_json`]):
//!   duplicate keys and nesting beyond 100 levels are invalid JSON, numbers are doubles;
//! * header `alg` must be a string naming an algorithm Envoy implements; `kid`, if present,
//!   a string (`""` means no kid); other header fields are not looked at;
//! * payload `iss`, `sub`, `jti` strings, `aud` a string or list of strings, `iat`/`nbf`/`exp`
//!   numbers in `[0, 2^64)` (truncated); `exp: 0` means no expiry;
//! * time with a 60 s skew (`nbf` against `now + 60`, `exp` against `now - 60`), then audience
//!   (both sides stripped of `http(s)://` and one trailing `/`), then the keys: every JWK whose
//!   `kid` (when both have one) and `alg` (when the JWK has one) fit is tried in order; the key
//!   type, not the token's `alg`, picks the primitive, and the token's `alg` only the hash:
//!   SHA-384/512 for the key type's own 384/512 algorithms, SHA-256 for any other `alg` (an
//!   Ed25519 signature of the wrong length ends the search at once);
//! * JWKS entries are accepted and refused as Envoy does (an RSA key with `alg` starting `RS`
//!   or `PS` and `e` 3 or 65537, an EC key whose `alg`/`crv` agree, defaulting to P-256; `use`
//!   is not looked at).
//!
//! Keys are imported once, when the JWKS is parsed; a [`KeySet`] holds ready verifying keys.
//! Deliberate differences (README): P-521 keys are kept but never verify (no P-521 code in
//! the module), a fetched JWKS never yields symmetric keys, and a token longer than
//! [`MAX_TOKEN_LEN`] is malformed.

use std::rc::Rc;

use ed25519_compact::{PublicKey as Ed25519Key, Signature as Ed25519Signature};
use meshguard_crypto::p256_verify::P256PublicKey;
use meshguard_crypto::rsa_verify::{Digest, RsaPublicKey};
use meshguard_crypto_p384::p384_verify::P384PublicKey;

use crate::authn::jwt_json;
use crate::request::json_value::{JsonObject, JsonValue};

/// Clock skew for `exp` and `nbf`, Envoy's `kClockSkewInSecond`.
pub const CLOCK_SKEW_SECS: u64 = 60;
/// Tokens larger than this are malformed (Envoy's default request header limit is 60 KiB, so
/// no token Envoy accepts by default is longer).
pub const MAX_TOKEN_LEN: usize = 64 * 1024;

/// Why a token was rejected, with Envoy's status text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtFailure {
    Missing,
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
    Ed25519WrongLength,
    KidAlgMismatch,
    NoValidKeys,
    JwksFetchFailed,
}

impl JwtFailure {
    /// The body Envoy sends (`getStatusString`).
    pub fn message(self) -> &'static str {
        use JwtFailure::*;
        match self {
            Missing => "Jwt is missing",
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
            Ed25519WrongLength => "Jwt ED25519 signature is wrong length",
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
            VerificationFails | Ed25519WrongLength => "signature",
            KidAlgMismatch | NoValidKeys => "no_matching_key",
            JwksFetchFailed => "jwks_unavailable",
            _ => "malformed",
        }
    }
}

/// The algorithms Envoy implements (`isImplemented`).
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
    Es512,
    EdDsa,
    Hs256,
    Hs384,
    Hs512,
}

/// The hash an algorithm name selects (Envoy: `*384` and `*512`, else SHA-256).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha256 => hmac_sha256::Hash::hash(data).to_vec(),
            Hash::Sha384 => hmac_sha512::sha384::Hash::hash(data).to_vec(),
            Hash::Sha512 => hmac_sha512::Hash::hash(data).to_vec(),
        }
    }

    fn rsa(self) -> Digest {
        match self {
            Hash::Sha256 => Digest::Sha256,
            Hash::Sha384 => Digest::Sha384,
            Hash::Sha512 => Digest::Sha512,
        }
    }

    fn hmac(self, data: &[u8], key: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha256 => hmac_sha256::HMAC::mac(data, key).to_vec(),
            Hash::Sha384 => hmac_sha512::sha384::HMAC::mac(data, key).to_vec(),
            Hash::Sha512 => hmac_sha512::HMAC::mac(data, key).to_vec(),
        }
    }
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
            "ES512" => Alg::Es512,
            "EdDSA" => Alg::EdDsa,
            "HS256" => Alg::Hs256,
            "HS384" => Alg::Hs384,
            "HS512" => Alg::Hs512,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Alg::Rs256 => "RS256",
            Alg::Rs384 => "RS384",
            Alg::Rs512 => "RS512",
            Alg::Ps256 => "PS256",
            Alg::Ps384 => "PS384",
            Alg::Ps512 => "PS512",
            Alg::Es256 => "ES256",
            Alg::Es384 => "ES384",
            Alg::Es512 => "ES512",
            Alg::EdDsa => "EdDSA",
            Alg::Hs256 => "HS256",
            Alg::Hs384 => "HS384",
            Alg::Hs512 => "HS512",
        }
    }

    /// The digest Envoy's `verifyJwtWithoutTimeChecking` uses with a key whose algorithms start
    /// with `family` (`ES`, `RS`/`PS`, `HS`): SHA-384 or SHA-512 for that family's 384 and 512
    /// algorithms, SHA-256 for any other (an `RS384` token checked against an EC key without
    /// `alg` is hashed with SHA-256).
    fn hash_for(self, family: &[&str]) -> Hash {
        if family.iter().any(|f| self.name().starts_with(f)) {
            self.hash()
        } else {
            Hash::Sha256
        }
    }

    fn hash(self) -> Hash {
        let name = self.name();
        if name.ends_with("384") {
            Hash::Sha384
        } else if name.ends_with("512") {
            Hash::Sha512
        } else {
            Hash::Sha256
        }
    }
}

/// abseil `WebSafeBase64Unescape`, which Envoy uses for every token section and JWK field:
/// the URL-safe alphabet; ASCII whitespace anywhere is skipped; the end may carry no padding
/// or exactly the padding the length calls for (`=` or `.`, whitespace between allowed); a
/// single dangling character is an error; the unused low bits of the last character are
/// ignored.
pub fn base64url(text: &[u8]) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        } as u32)
    }
    // abseil's isspace: space, \t, \n, \v, \f, \r
    let space = |c: u8| matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r');
    let pad = |c: u8| c == b'=' || c == b'.';
    let mut out = Vec::with_capacity(text.len() / 4 * 3 + 3);
    let (mut acc, mut state) = (0u32, 0usize);
    let mut i = 0;
    while let Some(&c) = text.get(i) {
        match value(c) {
            Some(v) => {
                acc = (acc << 6) | v;
                state += 1;
                if state == 4 {
                    out.extend_from_slice(&[(acc >> 16) as u8, (acc >> 8) as u8, acc as u8]);
                    (acc, state) = (0, 0);
                }
                i += 1;
            }
            None if space(c) => i += 1,
            None if pad(c) => break,
            None => return None,
        }
    }
    let expected = match state {
        0 => 0,
        1 => return None,
        2 => {
            out.push((acc >> 4) as u8);
            2
        }
        _ => {
            out.extend_from_slice(&[(acc >> 10) as u8, (acc >> 2) as u8]);
            1
        }
    };
    let mut equals = 0;
    for &c in text.get(i..).unwrap_or_default() {
        if pad(c) {
            equals += 1;
        } else if !space(c) {
            return None;
        }
    }
    (equals == 0 || equals == expected).then_some(out)
}

/// A parsed token, before any trust decision.
#[derive(Debug, Clone)]
pub struct ParsedToken {
    alg: Alg,
    kid: Option<String>,
    /// `header.payload` as the token carries them: what the signature covers.
    signed: String,
    /// Where the payload section starts in `signed`.
    payload_at: usize,
    signature: Vec<u8>,
    /// Shared with the claims authorization sees (and the token cache): never copied.
    pub payload: Rc<JsonObject>,
    /// `iss`, empty when absent (Envoy's `iss_`).
    pub issuer: String,
    pub audiences: Vec<String>,
    /// `exp`; 0 when absent or 0 (no expiry).
    pub expires: u64,
    not_before: u64,
}

/// Envoy `GetUInt64`: a JSON number (a double), truncated; below 0 or from 2^64 on is out of
/// range; any other JSON type is the wrong type.
fn timestamp(
    payload: &JsonObject,
    name: &str,
    not_integer: JwtFailure,
    out_of_range: JwtFailure,
) -> Result<u64, JwtFailure> {
    match payload.get(name) {
        None => Ok(0),
        Some(JsonValue::Number(d)) => {
            let d = *d;
            if (0.0..18_446_744_073_709_551_616.0).contains(&d) {
                Ok(d as u64)
            } else {
                Err(out_of_range)
            }
        }
        Some(_) => Err(not_integer),
    }
}

fn string_field(
    object: &JsonObject,
    name: &str,
    wrong: JwtFailure,
) -> Result<Option<String>, JwtFailure> {
    match object.get(name) {
        None => Ok(None),
        Some(JsonValue::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(wrong),
    }
}

/// Parses a compact JWS with Envoy's checks, in Envoy's order, with Envoy's error texts.
pub fn parse(token: &str) -> Result<ParsedToken, JwtFailure> {
    use JwtFailure::*;
    if token.len() > MAX_TOKEN_LEN {
        return Err(BadFormat);
    }
    let mut sections = token.split('.').filter(|s| !s.is_empty());
    let (Some(header), Some(payload), Some(signature), None) = (
        sections.next(),
        sections.next(),
        sections.next(),
        sections.next(),
    ) else {
        return Err(BadFormat);
    };
    let header_json = jwt_json::parse_object(&base64url(header.as_bytes()).ok_or(HeaderBadBase64)?)
        .ok_or(HeaderBadJson)?;
    let alg = match header_json.get("alg") {
        Some(JsonValue::String(a)) => Alg::parse(a).ok_or(HeaderNotImplementedAlg)?,
        _ => return Err(HeaderBadAlg),
    };
    let kid = string_field(&header_json, "kid", HeaderKidNotString)?.filter(|k| !k.is_empty());
    let payload_json =
        jwt_json::parse_object(&base64url(payload.as_bytes()).ok_or(PayloadBadBase64)?)
            .ok_or(PayloadBadJson)?;
    let issuer = string_field(&payload_json, "iss", PayloadIssNotString)?.unwrap_or_default();
    string_field(&payload_json, "sub", PayloadSubNotString)?;
    timestamp(
        &payload_json,
        "iat",
        PayloadIatNotInteger,
        PayloadIatOutOfRange,
    )?;
    let not_before = timestamp(
        &payload_json,
        "nbf",
        PayloadNbfNotInteger,
        PayloadNbfOutOfRange,
    )?;
    let expires = timestamp(
        &payload_json,
        "exp",
        PayloadExpNotInteger,
        PayloadExpOutOfRange,
    )?;
    string_field(&payload_json, "jti", PayloadJtiNotString)?;
    let audiences = match payload_json.get("aud") {
        None => Vec::new(),
        Some(JsonValue::String(a)) => vec![a.clone()],
        Some(JsonValue::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or(PayloadAudNotStringOrList)?,
        Some(_) => return Err(PayloadAudNotStringOrList),
    };
    let signature = base64url(signature.as_bytes()).ok_or(SignatureBadBase64)?;
    Ok(ParsedToken {
        alg,
        kid,
        signed: format!("{header}.{payload}"),
        payload_at: header.len() + 1,
        signature,
        payload: Rc::new(payload_json),
        issuer,
        audiences,
        expires,
        not_before,
    })
}

impl ParsedToken {
    /// The payload section as the token carries it (Envoy's `forward_payload_header` value).
    pub fn payload_segment(&self) -> &str {
        self.signed.get(self.payload_at..).unwrap_or_default()
    }

    /// Envoy `verifyTimeConstraint` with the 60 s skew; `exp` 0 means no expiry.
    pub fn check_time(&self, now: u64) -> Result<(), JwtFailure> {
        if now.saturating_add(CLOCK_SKEW_SECS) < self.not_before {
            return Err(JwtFailure::NotYetValid);
        }
        if self.expires != 0 && now > self.expires.saturating_add(CLOCK_SKEW_SECS) {
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

/// One key of a JWKS, imported.
#[derive(Debug, Clone)]
pub struct Jwk {
    /// `None` for an absent, empty or non-string `kid`.
    kid: Option<String>,
    /// `None` for an absent, empty or non-string `alg`.
    alg: Option<String>,
    key: PublicKey,
}

#[derive(Debug, Clone)]
enum PublicKey {
    Rsa(RsaPublicKey),
    P256(P256PublicKey),
    P384(P384PublicKey),
    /// A P-521 key Envoy would use; kept for kid/alg selection, never verifies here.
    P521,
    Ed25519(Ed25519Key),
    Oct(Vec<u8>),
}

/// A parsed JWKS: the usable keys, in document order, imported once.
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
    /// Parses a JWKS document as Envoy's `Jwks::createFrom` does: entries Envoy refuses are
    /// skipped; a document that is not a `{"keys": [...]}` object, or leaves no key, is an
    /// error.
    pub fn parse(json: &str, source: JwksSource) -> Result<KeySet, String> {
        let doc = jwt_json::parse_object(json.as_bytes()).ok_or("JWKS is not valid JSON")?;
        let entries = match doc.get("keys") {
            Some(JsonValue::Array(entries)) => entries,
            Some(_) => return Err("JWKS \"keys\" is not a list".to_string()),
            None => return Err("JWKS has no \"keys\" list".to_string()),
        };
        let keys: Vec<Jwk> = entries
            .iter()
            .filter_map(JsonValue::as_object)
            .filter_map(|e| parse_jwk(e, source))
            .collect();
        if keys.is_empty() {
            return Err("JWKS has no usable key".to_string());
        }
        Ok(KeySet { keys })
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Envoy `verifyJwtWithoutTimeChecking`.
    pub fn verify(&self, token: &ParsedToken) -> Result<(), JwtFailure> {
        let mut matched = false;
        let data = token.signed.as_bytes();
        let sig = token.signature.as_slice();
        for jwk in &self.keys {
            if let (Some(want), Some(have)) = (&token.kid, &jwk.kid) {
                if want != have {
                    continue;
                }
            }
            if jwk.alg.as_deref().is_some_and(|a| a != token.alg.name()) {
                continue;
            }
            matched = true;
            let ok = match &jwk.key {
                PublicKey::Rsa(key) => {
                    let hash = token.alg.hash_for(&["RS", "PS"]);
                    let digest = hash.digest(data);
                    match token.alg.name().get(..2) {
                        Some("RS") => key.verify_pkcs1v15(hash.rsa(), &digest, sig),
                        Some("PS") => key.verify_pss(hash.rsa(), &digest, sig),
                        _ => false,
                    }
                }
                PublicKey::P256(key) => ecdsa_signature(sig, 32).is_some_and(|rs| {
                    let (r, s) = rs.split_at(rs.len() / 2);
                    key.verify(&token.alg.hash_for(&["ES"]).digest(data), r, s)
                }),
                PublicKey::P384(key) => ecdsa_signature(sig, 48).is_some_and(|rs| {
                    let (r, s) = rs.split_at(rs.len() / 2);
                    key.verify(&token.alg.hash_for(&["ES"]).digest(data), r, s)
                }),
                PublicKey::P521 => false,
                PublicKey::Oct(secret) => {
                    let mac = token.alg.hash_for(&["HS"]).hmac(data, secret);
                    mac.len() == sig.len() && constant_time_eq(&mac, sig)
                }
                PublicKey::Ed25519(key) => {
                    let Ok(signature) = Ed25519Signature::from_slice(sig) else {
                        return Err(JwtFailure::Ed25519WrongLength);
                    };
                    key.verify(data, &signature).is_ok()
                }
            };
            log::trace!("meshguard: {} signature check: {ok}", token.alg.name());
            if ok {
                return Ok(());
            }
        }
        if matched {
            Err(JwtFailure::VerificationFails)
        } else {
            Err(JwtFailure::KidAlgMismatch)
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Envoy's ECDSA signature reading: the first half of the bytes is `r`, the second `s`, each a
/// big-endian number of any length (`BN_bin2bn`); a number too large for the curve fails.
fn ecdsa_signature(sig: &[u8], size: usize) -> Option<Vec<u8>> {
    let half = sig.len() / 2;
    fixed_width(&[sig.get(..half)?, sig.get(half..2 * half)?], size)
}

/// Big-endian numbers of any length, each left-padded to `size` bytes, concatenated; `None`
/// when one does not fit.
fn fixed_width(numbers: &[&[u8]], size: usize) -> Option<Vec<u8>> {
    let mut out = vec![0u8; numbers.len() * size];
    for (i, number) in numbers.iter().enumerate() {
        let digits = strip_zeros(number);
        let end = (i + 1) * size;
        out.get_mut(end.checked_sub(digits.len())?..end)?
            .copy_from_slice(digits);
    }
    Some(out)
}

fn strip_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    bytes.get(first..).unwrap_or_default()
}

/// A JWK string member; a missing or non-string member is `None`.
fn member<'v>(entry: &'v JsonObject, name: &str) -> Option<&'v str> {
    entry.get(name).and_then(JsonValue::as_str)
}

/// A big-endian number from a base64url JWK member (leading zero bytes allowed).
fn number(entry: &JsonObject, name: &str) -> Option<Vec<u8>> {
    base64url(member(entry, name)?.as_bytes())
}

/// Envoy `extractJwk`, returning `None` for every entry Envoy refuses.
fn parse_jwk(entry: &JsonObject, source: JwksSource) -> Option<Jwk> {
    let kid = member(entry, "kid").filter(|k| !k.is_empty());
    let alg = member(entry, "alg").filter(|a| !a.is_empty());
    let key = match member(entry, "kty")? {
        "RSA" => {
            if alg.is_some_and(|a| !a.starts_with("RS") && !a.starts_with("PS")) {
                return None;
            }
            // Envoy: `e` 3 or 65537; BoringSSL `RSA_check_key`: an odd modulus of 512 to
            // 16384 bits (`rsa_verify`).
            PublicKey::Rsa(RsaPublicKey::new(
                &number(entry, "n")?,
                &number(entry, "e")?,
            )?)
        }
        "EC" => {
            if alg.is_some_and(|a| !a.starts_with("ES")) {
                return None;
            }
            let crv = match entry.get("crv") {
                None => None,
                Some(JsonValue::String(c)) => Some(c.as_str()).filter(|c| !c.is_empty()),
                Some(_) => return None,
            };
            if let (Some(a), Some(c)) = (alg, crv) {
                if !matches!(
                    (a, c),
                    ("ES256", "P-256") | ("ES384", "P-384") | ("ES512", "P-521")
                ) {
                    return None;
                }
            }
            let curve = match (alg, crv) {
                (Some("ES256"), _) | (_, Some("P-256")) | (None, None) => 256,
                (Some("ES384"), _) | (_, Some("P-384")) => 384,
                (Some("ES512"), _) | (_, Some("P-521")) => 521,
                _ => return None,
            };
            let (x, y) = (number(entry, "x")?, number(entry, "y")?);
            match curve {
                256 => PublicKey::P256(P256PublicKey::new(&x, &y)?),
                384 => PublicKey::P384(P384PublicKey::new(&x, &y)?),
                _ => PublicKey::P521,
            }
        }
        "oct" if source == JwksSource::Inline => {
            if alg.is_some_and(|a| !matches!(a, "HS256" | "HS384" | "HS512")) {
                return None;
            }
            let k = number(entry, "k").filter(|k| !k.is_empty())?;
            PublicKey::Oct(k)
        }
        "OKP" => {
            if alg.is_some_and(|a| a != "EdDSA") || member(entry, "crv")? != "Ed25519" {
                return None;
            }
            PublicKey::Ed25519(Ed25519Key::from_slice(&number(entry, "x")?).ok()?)
        }
        _ => return None,
    };
    Some(Jwk {
        kid: kid.map(str::to_string),
        alg: alg.map(str::to_string),
        key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_follows_abseil() {
        assert_eq!(base64url(b"YWJj").unwrap(), b"abc");
        assert_eq!(base64url(b"YWI").unwrap(), b"ab");
        assert_eq!(base64url(b"YWI=").unwrap(), b"ab");
        assert_eq!(base64url(b"YQ==").unwrap(), b"a");
        assert!(base64url(b"YQ=").is_none());
        assert!(base64url(b"YQ===").is_none());
        assert_eq!(base64url(b" Y W\tJ j \n").unwrap(), b"abc");
        assert_eq!(
            base64url(b"YR").unwrap(),
            b"a",
            "non-zero trailing bits are ignored"
        );
        assert!(base64url(b"Y").is_none());
        assert!(base64url(b"YW+j").is_none());
        assert!(base64url(b"YW=j").is_none());
        assert_eq!(base64url(b"").unwrap(), b"");
        assert_eq!(base64url(b"YWI= ").unwrap(), b"ab");
    }

    #[test]
    fn empty_sections_are_skipped_when_splitting() {
        let h = "eyJhbGciOiJIUzI1NiJ9";
        let p = "eyJzdWIiOiJhIn0";
        for token in [
            format!(".{h}.{p}.c2ln"),
            format!("{h}..{p}.c2ln"),
            format!("{h}.{p}.c2ln.."),
        ] {
            let t = parse(&token).unwrap();
            assert_eq!(t.signed, format!("{h}.{p}"));
            assert_eq!(t.payload_segment(), p);
        }
        assert_eq!(parse("a.b").unwrap_err(), JwtFailure::BadFormat);
        assert_eq!(parse("..").unwrap_err(), JwtFailure::BadFormat);
        assert_eq!(parse("a.b.c.d").unwrap_err(), JwtFailure::BadFormat);
    }

    #[test]
    fn timestamps_are_doubles_in_the_unsigned_range_and_exp_zero_never_expires() {
        let tok = |claims: &str| {
            let h = "eyJhbGciOiJIUzI1NiJ9";
            let p = ct_codecs_b64(claims.as_bytes());
            parse(&format!("{h}.{p}.c2ln"))
        };
        assert_eq!(tok(r#"{"exp":0}"#).unwrap().expires, 0);
        assert!(tok(r#"{"exp":0}"#)
            .unwrap()
            .check_time(4_000_000_000)
            .is_ok());
        assert!(tok(r#"{"exp":-0}"#)
            .unwrap()
            .check_time(4_000_000_000)
            .is_ok());
        assert_eq!(tok(r#"{"exp":1.9}"#).unwrap().expires, 1);
        assert_eq!(
            tok(r#"{"exp":18446744073709551615}"#).unwrap_err(),
            JwtFailure::PayloadExpOutOfRange
        );
        assert_eq!(
            tok(r#"{"nbf":-1}"#).unwrap_err(),
            JwtFailure::PayloadNbfOutOfRange
        );
        assert_eq!(
            tok(r#"{"iat":"1"}"#).unwrap_err(),
            JwtFailure::PayloadIatNotInteger
        );
        assert_eq!(
            tok(r#"{"exp":null}"#).unwrap_err(),
            JwtFailure::PayloadExpNotInteger
        );
        assert_eq!(
            tok(r#"{"iss":null}"#).unwrap_err(),
            JwtFailure::PayloadIssNotString
        );
        assert_eq!(
            tok(r#"{"a":1,"a":2}"#).unwrap_err(),
            JwtFailure::PayloadBadJson
        );
    }

    #[test]
    fn header_fields_other_than_alg_and_kid_are_not_checked() {
        let p = "eyJzdWIiOiJhIn0";
        let tok = |header: &str| parse(&format!("{}.{p}.c2ln", ct_codecs_b64(header.as_bytes())));
        assert!(tok(r#"{"alg":"RS256","typ":1,"crit":"x","x5c":"y","jwk":2}"#).is_ok());
        assert!(tok(r#"{"alg":"RS256","kid":""}"#).unwrap().kid.is_none());
        assert_eq!(
            tok(r#"{"alg":"RS256","kid":null}"#).unwrap_err(),
            JwtFailure::HeaderKidNotString
        );
        assert_eq!(
            tok(r#"{"alg":"none"}"#).unwrap_err(),
            JwtFailure::HeaderNotImplementedAlg
        );
        assert_eq!(tok(r#"{"alg":1}"#).unwrap_err(), JwtFailure::HeaderBadAlg);
        assert!(tok(r#"{"alg":"ES512"}"#).is_ok());
    }

    #[test]
    fn ecdsa_halves_are_numbers_of_any_length() {
        let mut sig = vec![0u8; 64];
        sig[31] = 1;
        sig[63] = 2;
        let a = ecdsa_signature(&sig, 32).unwrap();
        assert_eq!(a, sig);
        let mut long = vec![0u8; 66];
        long[32] = 1;
        long[65] = 2;
        assert_eq!(ecdsa_signature(&long, 32).unwrap(), a);
        let mut short = vec![0u8; 2];
        short[0] = 1;
        short[1] = 2;
        assert_eq!(ecdsa_signature(&short, 32).unwrap(), a);
        assert!(ecdsa_signature(&[0xff; 66], 32).is_none());
    }

    #[test]
    fn jwks_entries_are_accepted_and_refused_as_envoy_does() {
        let ec = concat!(
            r#"{"kty":"EC","x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4","#,
            r#""y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"}"#
        );
        let set = |entries: &str| {
            KeySet::parse(&format!(r#"{{"keys":[{entries}]}}"#), JwksSource::Inline)
        };
        assert_eq!(set(ec).unwrap().len(), 1, "EC without crv or alg is P-256");
        let with = |extra: &str| set(&ec.replace("\"kty\"", &format!("{extra},\"kty\"")));
        assert!(with(r#""alg":"ES256""#).is_ok());
        assert!(
            with(r#""alg":"ES384""#).is_err(),
            "an ES384 alg reads the point as P-384"
        );
        assert!(with(r#""alg":"ES256","crv":"P-384""#).is_err());
        assert!(with(r#""alg":"","use":"enc""#).is_ok());
        assert!(with(r#""alg":"RS256""#).is_err());
        assert!(set(r#"{"kty":"oct","k":"c2VjcmV0"}"#).is_ok());
        assert!(KeySet::parse(
            r#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#,
            JwksSource::Remote
        )
        .is_err());
        assert!(set(r#"{"kty":"oct","k":""}"#).is_err());
        assert!(set(
            r#"{"kty":"OKP","crv":"Ed25519","x":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}"#
        )
        .is_ok());
        assert!(set(r#"{"kty":"OKP","x":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}"#).is_err());
        assert!(KeySet::parse(r#"{"keys":[1,"x"]}"#, JwksSource::Inline).is_err());
        assert!(KeySet::parse(r#"{"keys":{}}"#, JwksSource::Inline).is_err());
    }

    #[test]
    fn an_oct_key_without_alg_macs_other_algorithms_with_sha256_as_envoy_does() {
        // verify.cc: an oct key uses SHA-384/512 only for HS384/HS512, SHA-256 for any other alg.
        let keys = KeySet::parse(
            r#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#,
            JwksSource::Inline,
        )
        .unwrap();
        for (alg, right, wrong) in [
            ("HS256", Hash::Sha256, Hash::Sha384),
            ("HS384", Hash::Sha384, Hash::Sha256),
            ("HS512", Hash::Sha512, Hash::Sha256),
            ("RS384", Hash::Sha256, Hash::Sha384),
            ("ES512", Hash::Sha256, Hash::Sha512),
        ] {
            let header = format!(r#"{{"alg":"{alg}"}}"#);
            let signed = format!(
                "{}.{}",
                ct_codecs_b64(header.as_bytes()),
                ct_codecs_b64(br#"{"sub":"a"}"#)
            );
            let token = |hash: Hash| {
                let mac = hash.hmac(signed.as_bytes(), b"secret");
                parse(&format!("{signed}.{}", ct_codecs_b64(&mac))).unwrap()
            };
            assert_eq!(keys.verify(&token(right)), Ok(()), "{alg}");
            assert_eq!(
                keys.verify(&token(wrong)),
                Err(JwtFailure::VerificationFails),
                "{alg}"
            );
        }
    }

    fn ct_codecs_b64(data: &[u8]) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for chunk in data.chunks(3) {
            let n = chunk.iter().fold(0u32, |a, b| (a << 8) | *b as u32) << (8 * (3 - chunk.len()));
            for i in 0..=chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out
    }
}
