//! ES384 through a JWKS and `authn::jwt`, as Envoy's `jwt_authn` verifies it: signatures of 96
//! bytes (and the lengths BoringSSL's `BN_bin2bn` split still reads), high-S, other keys, and a
//! P-384 key without `alg` hashing each JWT algorithm as Envoy does. The P-384 arithmetic itself
//! is checked against the `p384` crate in `meshguard-crypto-p384`'s `tests/p384_verify.rs`; the
//! keys, signatures and encodings here are `meshguard-crypto`'s `tests/support` helpers.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../../crypto/tests/support/p384.rs"]
mod p384_curve;
#[path = "../../crypto/tests/support/mod.rs"]
mod support;

use jwt_simple::prelude::*;
use meshguard_core::authn::jwt::{self, JwksSource, JwtFailure, KeySet, ParsedToken};
use p384_curve::P384;
use support::{b64, scalar_reduced, sign, sub, unb64, Curve, Rng};

/// A JWKS of one P-384 key `(x, y)`, with `alg` or without.
fn p384_jwks(x: &[u8], y: &[u8], alg: Option<&str>) -> KeySet {
    let mut jwk = serde_json::json!({ "kty": "EC", "crv": "P-384", "x": b64(x), "y": b64(y) });
    if let Some(alg) = alg {
        jwk["alg"] = alg.into();
    }
    KeySet::parse(
        &serde_json::json!({ "keys": [jwk] }).to_string(),
        JwksSource::Inline,
    )
    .unwrap()
}

fn parse(token: &str) -> ParsedToken {
    jwt::parse(token).unwrap()
}

#[test]
fn es384_tokens_verify_through_the_jwks_as_envoy_verifies_them() {
    let kp = ES384KeyPair::generate();
    let point = kp.public_key().public_key().to_bytes_uncompressed();
    let keys = p384_jwks(&point[1..49], &point[49..97], Some("ES384"));
    let token = kp.sign(Claims::create(Duration::from_hours(1))).unwrap();
    assert_eq!(keys.verify(&parse(&token)), Ok(()));
    let (signed, sig) = token.rsplit_once('.').unwrap();
    let sig = unb64(sig);
    let with_sig = |bytes: &[u8]| format!("{signed}.{}", b64(bytes));
    // BN_bin2bn reads each half as a number: 49-byte halves with a leading zero verify.
    let padded = [&[0u8][..], &sig[..48], &[0u8][..], &sig[48..]].concat();
    assert_eq!(keys.verify(&parse(&with_sig(&padded))), Ok(()));
    // An odd length leaves its last byte out of both halves (97 / 2 = 48).
    let trailing = [&sig[..], &[0x5a][..]].concat();
    assert_eq!(keys.verify(&parse(&with_sig(&trailing))), Ok(()));
    // Any other length splits the bytes elsewhere: no longer this signature.
    let longer = [&sig[..], &[0u8; 2][..]].concat();
    for bad in [
        &sig[..95],
        &sig[..94],
        &sig[..64],
        &longer[..],
        &[0u8, 0][..],
    ] {
        assert_eq!(
            keys.verify(&parse(&with_sig(bad))),
            Err(JwtFailure::VerificationFails),
            "{} bytes",
            bad.len()
        );
    }
    // High S verifies; a flipped bit does not.
    let high_s = [&sig[..48], &sub(P384::N, &sig[48..])[..]].concat();
    assert_eq!(keys.verify(&parse(&with_sig(&high_s))), Ok(()));
    let mut flipped = sig.clone();
    flipped[10] ^= 4;
    assert_eq!(
        keys.verify(&parse(&with_sig(&flipped))),
        Err(JwtFailure::VerificationFails)
    );
    // Another key's signature fails.
    let other = ES384KeyPair::generate()
        .sign(Claims::create(Duration::from_hours(1)))
        .unwrap();
    assert_eq!(
        keys.verify(&parse(&other)),
        Err(JwtFailure::VerificationFails)
    );
}

#[test]
fn a_p384_key_without_alg_hashes_other_algorithms_with_sha256_as_envoy_does() {
    // Envoy's verifyJwtWithoutTimeChecking hashes for an EC key with SHA-384 only for ES384,
    // SHA-512 only for ES512, and SHA-256 for every other alg (RS384 included).
    let mut rng = Rng(6);
    let d = rng.scalar::<P384>();
    let (x, y) = P384::coordinates(&(P384::generator() * d));
    let keys = p384_jwks(&x, &y, None);
    let header = |alg: &str| {
        let h = format!(r#"{{"alg":"{alg}"}}"#);
        format!("{}.{}", b64(h.as_bytes()), b64(br#"{"sub":"alice"}"#))
    };
    let mut token = |signed: &str, digest: &[u8]| {
        let mut wide = vec![0u8; 48usize.saturating_sub(digest.len())];
        wide.extend_from_slice(&digest[..digest.len().min(48)]);
        let (r, s) = sign::<P384>(&d, &rng.scalar::<P384>(), &scalar_reduced::<P384>(&wide));
        let sig = [P384::scalar_bytes(&r), P384::scalar_bytes(&s)].concat();
        format!("{signed}.{}", b64(&sig))
    };
    for (alg, right, wrong) in [
        ("ES384", 384, 256),
        ("ES512", 512, 384),
        ("ES256", 256, 384),
        ("RS384", 256, 384),
        ("PS512", 256, 512),
        ("HS384", 256, 384),
    ] {
        let signed = header(alg);
        let digest = |bits| match bits {
            256 => hmac_sha256::Hash::hash(signed.as_bytes()).to_vec(),
            384 => hmac_sha512::sha384::Hash::hash(signed.as_bytes()).to_vec(),
            _ => hmac_sha512::Hash::hash(signed.as_bytes()).to_vec(),
        };
        let good = token(&signed, &digest(right));
        assert_eq!(keys.verify(&parse(&good)), Ok(()), "{alg}");
        let bad = token(&signed, &digest(wrong));
        assert_eq!(
            keys.verify(&parse(&bad)),
            Err(JwtFailure::VerificationFails),
            "{alg}"
        );
    }
}
