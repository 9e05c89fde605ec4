//! `authn::p384_verify` against the `p384` crate (RustCrypto, what meshguard used before) on
//! generated keys and ES384 signatures: good signatures, the other valid `s` (n - s, high-S),
//! corrupted `r`/`s`/digest, `r`/`s` of 0, n or above, digests of 32, 48 and 64 bytes (the
//! SHA-256/384/512 an ES256/ES384/ES512 token brings to a P-384 key without `alg`), and key
//! import (off-curve points, coordinates not below p, no affine identity). Signatures built
//! deliberately reach the exceptional paths: `u1 G + u2 Q` adding a point to itself (doubling
//! inside the addition) or to its negation (R at infinity), and `x(R) >= n` (accepted through
//! `r + n < p`). Then the same keys through a JWKS and ES384 tokens (`authn::jwt`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::cell::RefCell;
use std::collections::HashMap;

use jwt_simple::prelude::*;
use meshguard_core::authn::jwt::{self, JwksSource, JwtFailure, KeySet, ParsedToken};
use meshguard_core::authn::p384_verify::P384PublicKey;
use p384::ecdsa::signature::hazmat::PrehashVerifier;
use p384::elliptic_curve::point::AffineCoordinates;
use p384::elliptic_curve::sec1::FromSec1Point;
use p384::elliptic_curve::PrimeField;
use p384::{AffinePoint, ProjectivePoint, Scalar};

const N: [u8; 48] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xc7, 0x63, 0x4d, 0x81, 0xf4, 0x37, 0x2d, 0xdf,
    0x58, 0x1a, 0x0d, 0xb2, 0x48, 0xb0, 0xa7, 0x7a, 0xec, 0xec, 0x19, 0x6a, 0xcc, 0xc5, 0x29, 0x73,
];
const P: [u8; 48] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff,
];

/// (digest, r, s, whether it verifies)
type Case = (Vec<u8>, Vec<u8>, Vec<u8>, bool);

/// splitmix64 with a fixed seed: every run checks the same numbers.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn bytes(&mut self) -> [u8; 48] {
        let mut out = [0u8; 48];
        for chunk in out.chunks_mut(8) {
            chunk.copy_from_slice(&self.next().to_be_bytes());
        }
        out
    }
    fn scalar(&mut self) -> Scalar {
        let mut b = self.bytes();
        b[0] &= 0x7f;
        Scalar::from_repr(b.into()).into_option().unwrap()
    }
}

fn unb64(s: &str) -> Vec<u8> {
    use jwt_simple::reexports::ct_codecs::{Base64UrlSafeNoPadding, Decoder};
    Base64UrlSafeNoPadding::decode_to_vec(s, None).unwrap()
}

/// `a - b` for 48-byte big-endian numbers with `a >= b`.
fn sub(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; 48];
    let mut borrow = 0i32;
    for i in (0..48).rev() {
        let v = a[i] as i32 - b[i] as i32 - borrow;
        out[i] = v.rem_euclid(256) as u8;
        borrow = i32::from(v < 0);
    }
    out
}

/// `a + b` for 48-byte big-endian numbers, 49 bytes.
fn add(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; 49];
    let mut carry = 0u16;
    for i in (0..48).rev() {
        let v = a[i] as u16 + b[i] as u16 + carry;
        out[i + 1] = v as u8;
        carry = v >> 8;
    }
    out[0] = carry as u8;
    out
}

fn bytes(s: &Scalar) -> Vec<u8> {
    s.to_repr().to_vec()
}

fn coordinates(point: &ProjectivePoint) -> (Vec<u8>, Vec<u8>) {
    let a = point.to_affine();
    (a.x().to_vec(), a.y().to_vec())
}

fn reference_key(x: &[u8], y: &[u8]) -> Option<p384::ecdsa::VerifyingKey> {
    p384::ecdsa::VerifyingKey::from_sec1_bytes(&[&[4u8][..], x, y].concat()).ok()
}

fn reference(key: &p384::ecdsa::VerifyingKey, digest: &[u8], r: &[u8], s: &[u8]) -> bool {
    if r.len() > 48 || s.len() > 48 {
        return false;
    }
    let mut rs = [0u8; 96];
    rs[48 - r.len()..48].copy_from_slice(r);
    rs[96 - s.len()..].copy_from_slice(s);
    p384::ecdsa::Signature::from_slice(&rs)
        .is_ok_and(|sig| key.verify_prehash(digest, &sig).is_ok())
}

/// Checks ours against the reference and the expectation, for the key `(x, y)`.
fn expect(key: (&[u8], &[u8]), label: &str, d: &[u8], r: &[u8], s: &[u8], expected: bool) {
    check(
        key.0,
        key.1,
        &(d.to_vec(), r.to_vec(), s.to_vec(), expected),
        label,
    );
}

thread_local! {
    /// Both imports of the keys checked so far (an import builds tables: import each key once).
    static IMPORTED: RefCell<HashMap<Vec<u8>, (P384PublicKey, p384::ecdsa::VerifyingKey)>> =
        RefCell::new(HashMap::new());
}

/// Checks ours against the reference and the expectation.
fn check(x: &[u8], y: &[u8], case: &Case, label: &str) {
    let (d, r, s, expected) = case;
    let (mine, theirs) = IMPORTED.with_borrow_mut(|keys| {
        keys.entry([x, y].concat())
            .or_insert_with(|| {
                (
                    P384PublicKey::new(x, y).expect("a valid key"),
                    reference_key(x, y).expect("a valid key"),
                )
            })
            .clone()
    });
    let ours = mine.verify(d, r, s);
    let r_trim = &r[r.len().saturating_sub(48)..];
    let leading_zero = r.len() <= 48 || r[..r.len() - 48].iter().all(|b| *b == 0);
    let reference = leading_zero && reference(&theirs, d, r_trim, s);
    assert_eq!(ours, *expected, "{label}: {d:02x?} {r:02x?} {s:02x?}");
    assert_eq!(ours, reference, "{label}: differs from p384");
}

/// An ECDSA signature `(r, s)` of the prehash `z` by the private key `d` with nonce `k`.
fn sign(d: &Scalar, k: &Scalar, z: &Scalar) -> (Scalar, Scalar) {
    let (x, _) = coordinates(&(ProjectivePoint::GENERATOR * k));
    let r = scalar_reduced(&x);
    let s = k.invert().unwrap() * (*z + r * d);
    (r, s)
}

/// A 48-byte big-endian number mod n.
fn scalar_reduced(b: &[u8]) -> Scalar {
    Scalar::from_repr(b.try_into().unwrap())
        .into_option()
        .unwrap_or_else(|| Scalar::from_repr(sub(b, &N)[..].try_into().unwrap()).unwrap())
}

#[test]
fn agrees_with_the_p384_crate_on_generated_keys_and_signatures() {
    let mut checked = 0;
    for k in 0..3 {
        let kp = ES384KeyPair::generate();
        let point = kp.public_key().public_key().to_bytes_uncompressed();
        let (x, y) = (&point[1..49], &point[49..97]);
        for m in 0..4 {
            let claims = Claims::create(Duration::from_hours(1)).with_subject(format!("{k}-{m}"));
            let token = kp.sign(claims).unwrap();
            let (signed, sig) = token.rsplit_once('.').unwrap();
            let digest = hmac_sha512::sha384::Hash::hash(signed.as_bytes());
            let sig = unb64(sig);
            assert_eq!(sig.len(), 96);
            let (r, s) = sig.split_at(48);
            let mut cases: Vec<Case> = vec![
                (digest.to_vec(), r.to_vec(), s.to_vec(), true),
                (digest.to_vec(), r.to_vec(), sub(&N, s), true),
                (digest.to_vec(), s.to_vec(), r.to_vec(), false),
                (digest.to_vec(), vec![0], s.to_vec(), false),
                (digest.to_vec(), r.to_vec(), vec![], false),
                (digest.to_vec(), r.to_vec(), vec![0; 48], false),
                (digest.to_vec(), N.to_vec(), s.to_vec(), false),
                (digest.to_vec(), r.to_vec(), N.to_vec(), false),
                (digest.to_vec(), add(r, &N), s.to_vec(), false),
                (digest.to_vec(), r.to_vec(), add(s, &N), false),
                (digest.to_vec(), [0xff; 48].to_vec(), s.to_vec(), false),
                (digest.to_vec(), r.to_vec(), [0xff; 48].to_vec(), false),
                (digest.to_vec(), [&[0u8][..], r].concat(), s.to_vec(), true),
                (digest.to_vec(), r[..47].to_vec(), s.to_vec(), false),
                (
                    hmac_sha512::sha384::Hash::hash(b"other").to_vec(),
                    r.to_vec(),
                    s.to_vec(),
                    false,
                ),
            ];
            for bit in [0usize, 7, 100, 255, 383] {
                let mut bad_r = r.to_vec();
                bad_r[bit / 8] ^= 1 << (bit % 8);
                cases.push((digest.to_vec(), bad_r, s.to_vec(), false));
                let mut bad_s = s.to_vec();
                bad_s[47 - bit / 8] ^= 1 << (bit % 8);
                cases.push((digest.to_vec(), r.to_vec(), bad_s, false));
                let mut bad_d = digest.to_vec();
                bad_d[bit / 8] ^= 1 << (bit % 8);
                cases.push((bad_d, r.to_vec(), s.to_vec(), false));
            }
            // A 64-byte digest (ES512 alg on a P-384 key): both use its leftmost 384 bits.
            let long = hmac_sha512::Hash::hash(signed.as_bytes());
            cases.push((long.to_vec(), r.to_vec(), s.to_vec(), false));
            cases.push((
                [&digest[..], &[1u8; 16][..]].concat(),
                r.to_vec(),
                s.to_vec(),
                true,
            ));
            for case in &cases {
                check(x, y, case, &format!("key {k} msg {m}"));
                checked += 1;
            }
        }
    }
    assert!(checked > 250);
}

#[test]
fn agrees_with_the_p384_crate_on_many_signatures_and_digests_above_n() {
    let mut rng = Rng(1);
    for i in 0..30 {
        let d = rng.scalar();
        let (x, y) = coordinates(&(ProjectivePoint::GENERATOR * d));
        let z_bytes = if i % 3 == 0 {
            // A digest at or above n is reduced mod n first.
            let mut b = rng.bytes();
            b[..24].copy_from_slice(&[0xff; 24]);
            b
        } else {
            rng.bytes()
        };
        let z = scalar_reduced(&z_bytes);
        let (r, s) = sign(&d, &rng.scalar(), &z);
        let (r, s) = (bytes(&r), bytes(&s));
        expect((&x, &y), "signed", &z_bytes, &r, &s, true);
        expect((&x, &y), "high-S", &z_bytes, &r, &sub(&N, &s), true);
        let random = rng.bytes();
        expect((&x, &y), "random r", &z_bytes, &random, &s, false);
        expect((&x, &y), "random s", &z_bytes, &r, &random, false);
    }
}

#[test]
fn a_32_byte_digest_is_read_as_a_number_as_boringssl_reads_it() {
    // An ES256 token checked against a P-384 key without `alg` brings a SHA-256 digest:
    // BoringSSL (and the p384 crate) read its 32 bytes as a number below 2^256.
    let mut rng = Rng(4);
    for _ in 0..6 {
        let d = rng.scalar();
        let (x, y) = coordinates(&(ProjectivePoint::GENERATOR * d));
        let digest = &rng.bytes()[..32];
        let z = scalar_reduced(&[&[0u8; 16][..], digest].concat());
        let (r, s) = sign(&d, &rng.scalar(), &z);
        let (r, s) = (bytes(&r), bytes(&s));
        expect((&x, &y), "short digest", digest, &r, &s, true);
        expect((&x, &y), "padded digest", &bytes(&z), &r, &s, true);
        let mut other = digest.to_vec();
        other[31] ^= 1;
        expect((&x, &y), "short digest, changed", &other, &r, &s, false);
    }
}

#[test]
fn a_point_added_to_itself_doubles_and_to_its_negation_is_infinity() {
    // Q = G and u1 = u2 = c: both scalars have the same top NAF digit in the same chunk, so the
    // multiplication adds c G to c G. With Q = -G the sum is the point at infinity.
    for c in [1u64, 3, 5, 7, 11, 15, 31, 63] {
        let c_scalar = Scalar::from(c);
        let g = ProjectivePoint::GENERATOR;
        let r_point = g * (c_scalar + c_scalar);
        let r = scalar_reduced(&coordinates(&r_point).0);
        // u1 = z / s = c and u2 = r / s = c: s = r / c, z = r.
        let s = r * c_scalar.invert().unwrap();
        let (gx, gy) = coordinates(&g);
        let case = (bytes(&r), bytes(&r), bytes(&s), true);
        check(&gx, &gy, &case, &format!("doubling, c = {c}"));
        let (nx, ny) = coordinates(&-g);
        let case = (bytes(&r), bytes(&r), bytes(&s), false);
        check(&nx, &ny, &case, &format!("infinity, c = {c}"));
    }
    // Keys that are multiples of G by powers of 2^96 (the chunk bases of the tables).
    let mut rng = Rng(2);
    for shift in [96u32, 192, 288] {
        let mut d = Scalar::ONE;
        for _ in 0..shift {
            d = d.double();
        }
        let q = ProjectivePoint::GENERATOR * d;
        let (qx, qy) = coordinates(&q);
        for _ in 0..3 {
            let z = rng.scalar();
            let (r, s) = sign(&d, &rng.scalar(), &z);
            expect(
                (&qx, &qy),
                "2^k G key",
                &bytes(&z),
                &bytes(&r),
                &bytes(&s),
                true,
            );
        }
        // u1 G + u2 Q with u1 = 2^shift u2 in the same positions: R = 2 u1 G.
        let u2 = Scalar::from(5u64);
        let u1 = u2 * d;
        let r = scalar_reduced(&coordinates(&(ProjectivePoint::GENERATOR * (u1 + u1))).0);
        let s = r * u2.invert().unwrap();
        let z = u1 * s;
        expect(
            (&qx, &qy),
            "aligned",
            &bytes(&z),
            &bytes(&r),
            &bytes(&s),
            true,
        );
    }
}

#[test]
fn an_x_coordinate_at_or_above_n_matches_r_plus_n() {
    // Points whose x is in [n, p): x mod n = x - n. With R chosen, u1 and s arbitrary,
    // Q = (R - u1 G) / u2 with u2 = r / s makes (r, s) a signature of z = u1 s.
    let mut rng = Rng(3);
    let mut found = 0;
    let mut x = N;
    for _ in 0..40 {
        x[47] = x[47].wrapping_add(1);
        let Some(r_point) = AffinePoint::from_sec1_bytes(&[&[2u8][..], &x].concat()).ok() else {
            continue;
        };
        assert_eq!(&r_point.x()[..], &x[..]);
        let r_bytes = sub(&x, &N);
        let r = Scalar::from_repr(r_bytes[..].try_into().unwrap()).unwrap();
        let (u1, s) = (rng.scalar(), rng.scalar());
        let u2 = r * s.invert().unwrap();
        let q = (ProjectivePoint::from(r_point) - ProjectivePoint::GENERATOR * u1)
            * u2.invert().unwrap();
        let (qx, qy) = coordinates(&q);
        let z = u1 * s;
        expect(
            (&qx, &qy),
            "x = r + n",
            &bytes(&z),
            &r_bytes,
            &bytes(&s),
            true,
        );
        // r + n itself is not below n.
        let rn = add(&r_bytes, &N);
        expect((&qx, &qy), "r = x", &bytes(&z), &rn, &bytes(&s), false);
        // n - s gives -R, whose x is the same.
        check(&qx, &qy, &(bytes(&z), r_bytes, bytes(&(-s)), true), "-R");
        found += 1;
    }
    assert!(found > 5, "{found} points with x >= n");
}

#[test]
fn keys_off_the_curve_or_out_of_range_are_refused() {
    let kp = ES384KeyPair::generate();
    let point = kp.public_key().public_key().to_bytes_uncompressed();
    let (x, y) = (&point[1..49], &point[49..97]);
    assert!(P384PublicKey::new(x, y).is_some());
    assert!(P384PublicKey::new(&[&[0u8, 0][..], x].concat(), y).is_some());
    let mut bad_y = y.to_vec();
    bad_y[47] ^= 1;
    assert!(P384PublicKey::new(x, &bad_y).is_none());
    assert!(reference_key(x, &bad_y).is_none());
    assert!(P384PublicKey::new(x, &[0xff; 48]).is_none());
    assert!(P384PublicKey::new(&[0xff; 49], y).is_none());
    assert!(P384PublicKey::new(&[], &[]).is_none());
    assert!(P384PublicKey::new(&[0; 48], &[0; 48]).is_none());
    assert!(reference_key(&[0; 48], &[0; 48]).is_none());
    // y + p and x + p are the same residues but not below p: refused (as BoringSSL and the p384
    // crate do).
    assert!(P384PublicKey::new(x, &add(y, &P)).is_none());
    assert!(P384PublicKey::new(&add(x, &P), y).is_none());
    assert!(P384PublicKey::new(&P, y).is_none());
    // The P-256 generator is not a P-384 point.
    let p256_g = p256::ProjectivePoint::GENERATOR.to_affine();
    assert!(P384PublicKey::new(&p256_g.x(), &p256_g.y()).is_none());
    // Random coordinates: refused exactly when the reference refuses them.
    let mut rng = Rng(5);
    for _ in 0..40 {
        let (x, y) = (rng.bytes(), rng.bytes());
        assert_eq!(
            P384PublicKey::new(&x, &y).is_some(),
            reference_key(&x, &y).is_some()
        );
        // And a valid x with both square roots: (x, y) and (x, p - y).
        if let Ok(point) = AffinePoint::from_sec1_bytes(&[&[2u8][..], &x[..]].concat()) {
            let y = point.y().to_vec();
            assert!(P384PublicKey::new(&x, &y).is_some());
            assert!(P384PublicKey::new(&x, &sub(&P, &y)).is_some());
        }
    }
}

/// A JWKS of one P-384 key `(x, y)`, with `alg` or without.
fn p384_jwks(x: &[u8], y: &[u8], alg: Option<&str>) -> KeySet {
    use jwt_simple::reexports::ct_codecs::{Base64UrlSafeNoPadding, Encoder};
    let b64 = |b: &[u8]| Base64UrlSafeNoPadding::encode_to_string(b).unwrap();
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
    let with_sig = |bytes: &[u8]| {
        use jwt_simple::reexports::ct_codecs::{Base64UrlSafeNoPadding, Encoder};
        format!(
            "{signed}.{}",
            Base64UrlSafeNoPadding::encode_to_string(bytes).unwrap()
        )
    };
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
    let high_s = [&sig[..48], &sub(&N, &sig[48..])[..]].concat();
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
    let d = rng.scalar();
    let (x, y) = coordinates(&(ProjectivePoint::GENERATOR * d));
    let keys = p384_jwks(&x, &y, None);
    let header = |alg: &str| {
        use jwt_simple::reexports::ct_codecs::{Base64UrlSafeNoPadding, Encoder};
        let h = format!(r#"{{"alg":"{alg}"}}"#);
        let p = r#"{"sub":"alice"}"#;
        format!(
            "{}.{}",
            Base64UrlSafeNoPadding::encode_to_string(h).unwrap(),
            Base64UrlSafeNoPadding::encode_to_string(p).unwrap()
        )
    };
    let mut token = |signed: &str, digest: &[u8]| {
        use jwt_simple::reexports::ct_codecs::{Base64UrlSafeNoPadding, Encoder};
        let mut wide = vec![0u8; 48usize.saturating_sub(digest.len())];
        wide.extend_from_slice(&digest[..digest.len().min(48)]);
        let (r, s) = sign(&d, &rng.scalar(), &scalar_reduced(&wide));
        let sig = [bytes(&r), bytes(&s)].concat();
        format!(
            "{signed}.{}",
            Base64UrlSafeNoPadding::encode_to_string(sig).unwrap()
        )
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
