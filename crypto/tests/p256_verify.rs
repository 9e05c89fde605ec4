//! `meshguard_crypto::p256_verify` against the `p256` crate (RustCrypto, what meshguard used
//! before) on generated keys and ES256 signatures: good signatures, the other valid `s` (n - s,
//! high-S), corrupted `r`/`s`/digest, `r`/`s` of 0, n or above, and key import (off-curve points,
//! coordinates not below p, no affine identity). Signatures built deliberately reach the
//! exceptional paths: `u1 G + u2 Q` adding a point to itself (doubling inside the addition) or to
//! its negation (R at infinity), and `x(R) >= n` (accepted through `r + n < p`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use jwt_simple::prelude::*;
use meshguard_crypto::p256_verify::P256PublicKey;
use p256::ecdsa::signature::hazmat::PrehashVerifier;
use p256::elliptic_curve::point::AffineCoordinates;
use p256::elliptic_curve::sec1::FromSec1Point;
use p256::elliptic_curve::PrimeField;
use p256::{AffinePoint, ProjectivePoint, Scalar};

const N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];
const P: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
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
    fn bytes(&mut self) -> [u8; 32] {
        let mut out = [0u8; 32];
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

/// `a - b` for 32-byte big-endian numbers with `a >= b`.
fn sub(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; 32];
    let mut borrow = 0i32;
    for i in (0..32).rev() {
        let v = a[i] as i32 - b[i] as i32 - borrow;
        out[i] = v.rem_euclid(256) as u8;
        borrow = i32::from(v < 0);
    }
    out
}

/// `a + b` for 32-byte big-endian numbers, 33 bytes.
fn add(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; 33];
    let mut carry = 0u16;
    for i in (0..32).rev() {
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

fn reference_key(x: &[u8], y: &[u8]) -> Option<p256::ecdsa::VerifyingKey> {
    p256::ecdsa::VerifyingKey::from_sec1_bytes(&[&[4u8][..], x, y].concat()).ok()
}

fn reference(key: &p256::ecdsa::VerifyingKey, digest: &[u8], r: &[u8], s: &[u8]) -> bool {
    if r.len() > 32 || s.len() > 32 {
        return false;
    }
    let mut rs = [0u8; 64];
    rs[32 - r.len()..32].copy_from_slice(r);
    rs[64 - s.len()..].copy_from_slice(s);
    p256::ecdsa::Signature::from_slice(&rs)
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

/// Checks ours against the reference and the expectation.
fn check(x: &[u8], y: &[u8], case: &Case, label: &str) {
    let (d, r, s, expected) = case;
    let mine = P256PublicKey::new(x, y).expect("a valid key");
    let theirs = reference_key(x, y).expect("a valid key");
    let ours = mine.verify(d, r, s);
    let r_trim = &r[r.len().saturating_sub(32)..];
    let leading_zero = r.len() <= 32 || r[..r.len() - 32].iter().all(|b| *b == 0);
    let reference = leading_zero && reference(&theirs, d, r_trim, s);
    assert_eq!(ours, *expected, "{label}: {d:02x?} {r:02x?} {s:02x?}");
    assert_eq!(ours, reference, "{label}: differs from p256");
}

/// An ECDSA signature `(r, s)` of the prehash `z` by the private key `d` with nonce `k`.
fn sign(d: &Scalar, k: &Scalar, z: &Scalar) -> (Scalar, Scalar) {
    let (x, _) = coordinates(&(ProjectivePoint::GENERATOR * k));
    let r = scalar_reduced(&x);
    let s = k.invert().unwrap() * (*z + r * d);
    (r, s)
}

/// A 32-byte big-endian number mod n.
fn scalar_reduced(b: &[u8]) -> Scalar {
    Scalar::from_repr(b.try_into().unwrap())
        .into_option()
        .unwrap_or_else(|| Scalar::from_repr(sub(b, &N)[..].try_into().unwrap()).unwrap())
}

#[test]
fn agrees_with_the_p256_crate_on_generated_keys_and_signatures() {
    let mut checked = 0;
    for k in 0..5 {
        let kp = ES256KeyPair::generate();
        let point = kp.public_key().public_key().to_bytes_uncompressed();
        let (x, y) = (&point[1..33], &point[33..65]);
        for m in 0..8 {
            let claims = Claims::create(Duration::from_hours(1)).with_subject(format!("{k}-{m}"));
            let token = kp.sign(claims).unwrap();
            let (signed, sig) = token.rsplit_once('.').unwrap();
            let digest = hmac_sha256::Hash::hash(signed.as_bytes());
            let sig = unb64(sig);
            let (r, s) = sig.split_at(32);
            let mut cases: Vec<Case> = vec![
                (digest.to_vec(), r.to_vec(), s.to_vec(), true),
                (digest.to_vec(), r.to_vec(), sub(&N, s), true),
                (digest.to_vec(), s.to_vec(), r.to_vec(), false),
                (digest.to_vec(), vec![0], s.to_vec(), false),
                (digest.to_vec(), r.to_vec(), vec![], false),
                (digest.to_vec(), r.to_vec(), vec![0; 32], false),
                (digest.to_vec(), N.to_vec(), s.to_vec(), false),
                (digest.to_vec(), r.to_vec(), N.to_vec(), false),
                (digest.to_vec(), add(r, &N), s.to_vec(), false),
                (digest.to_vec(), r.to_vec(), add(s, &N), false),
                (digest.to_vec(), [0xff; 32].to_vec(), s.to_vec(), false),
                (digest.to_vec(), r.to_vec(), [0xff; 32].to_vec(), false),
                (digest.to_vec(), [&[0u8][..], r].concat(), s.to_vec(), true),
                (
                    hmac_sha256::Hash::hash(b"other").to_vec(),
                    r.to_vec(),
                    s.to_vec(),
                    false,
                ),
            ];
            for bit in [0usize, 7, 100, 255] {
                let mut bad_r = r.to_vec();
                bad_r[bit / 8] ^= 1 << (bit % 8);
                cases.push((digest.to_vec(), bad_r, s.to_vec(), false));
                let mut bad_s = s.to_vec();
                bad_s[31 - bit / 8] ^= 1 << (bit % 8);
                cases.push((digest.to_vec(), r.to_vec(), bad_s, false));
                let mut bad_d = digest.to_vec();
                bad_d[bit / 8] ^= 1 << (bit % 8);
                cases.push((bad_d, r.to_vec(), s.to_vec(), false));
            }
            // A 48-byte digest (ES384 alg on a P-256 key): both use its leftmost 256 bits.
            let long = hmac_sha512::sha384::Hash::hash(signed.as_bytes());
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
    assert!(checked > 500);
}

#[test]
fn agrees_with_the_p256_crate_on_many_signatures_and_digests_above_n() {
    let mut rng = Rng(1);
    for i in 0..60 {
        let d = rng.scalar();
        let (x, y) = coordinates(&(ProjectivePoint::GENERATOR * d));
        let z_bytes = if i % 4 == 0 {
            // A digest at or above n is reduced mod n first.
            let mut b = rng.bytes();
            b[..4].copy_from_slice(&[0xff; 4]);
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
fn a_point_added_to_itself_doubles_and_to_its_negation_is_infinity() {
    // Q = G and u1 = u2 = c: both scalars have the same top NAF digit in the same chunk, so the
    // multiplication adds c G to c G. With Q = -G the sum is the point at infinity.
    for c in [1u64, 3, 5, 7, 11, 15, 31] {
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
    // Keys that are multiples of G by powers of 2^64 (the chunk bases of the tables).
    let mut rng = Rng(2);
    for shift in [64u32, 128, 192] {
        let mut d = Scalar::ONE;
        for _ in 0..shift {
            d = d.double();
        }
        let q = ProjectivePoint::GENERATOR * d;
        let (qx, qy) = coordinates(&q);
        for _ in 0..4 {
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
    for _ in 0..64 {
        x[31] = x[31].wrapping_add(1);
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
    assert!(found > 10, "{found} points with x >= n");
}

#[test]
fn keys_off_the_curve_or_out_of_range_are_refused() {
    let kp = ES256KeyPair::generate();
    let point = kp.public_key().public_key().to_bytes_uncompressed();
    let (x, y) = (&point[1..33], &point[33..65]);
    assert!(P256PublicKey::new(x, y).is_some());
    assert!(P256PublicKey::new(&[&[0u8, 0][..], x].concat(), y).is_some());
    let mut bad_y = y.to_vec();
    bad_y[31] ^= 1;
    assert!(P256PublicKey::new(x, &bad_y).is_none());
    assert!(reference_key(x, &bad_y).is_none());
    assert!(P256PublicKey::new(x, &[0xff; 32]).is_none());
    assert!(P256PublicKey::new(&[0xff; 33], y).is_none());
    assert!(P256PublicKey::new(&[], &[]).is_none());
    assert!(P256PublicKey::new(&[0; 32], &[0; 32]).is_none());
    assert!(reference_key(&[0; 32], &[0; 32]).is_none());
    // y + p and x + p are the same residues but not below p: refused (as BoringSSL and the p256
    // crate do).
    assert!(P256PublicKey::new(x, &add(y, &P)).is_none());
    assert!(P256PublicKey::new(&add(x, &P), y).is_none());
    assert!(P256PublicKey::new(&P, y).is_none());
    // A point with x = 0 exists on P-256 (b is a square): (0, sqrt(b)).
    let zero = AffinePoint::from_sec1_bytes(&[&[2u8][..], &[0u8; 32]].concat()).unwrap();
    let key = P256PublicKey::new(&[0], &zero.y());
    assert!(key.is_some());
}
