//! `authn::p256_verify` against the `p256` crate (RustCrypto, what jwt-simple and meshguard used
//! before) on generated keys and ES256 signatures: good signatures, the other valid `s` (n - s),
//! corrupted `r`/`s`/digest, out-of-range `r`/`s`, and key import (off-curve points, coordinates
//! not below p). Keys come from jwt-simple.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use jwt_simple::prelude::*;
use meshguard_core::authn::p256_verify::P256PublicKey;
use p256::ecdsa::signature::hazmat::PrehashVerifier;

const N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

/// (digest, r, s, whether it verifies)
type Case = (Vec<u8>, Vec<u8>, Vec<u8>, bool);

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

fn reference(key: &p256::ecdsa::VerifyingKey, digest: &[u8], r: &[u8], s: &[u8]) -> bool {
    let mut rs = [0u8; 64];
    rs[32 - r.len()..32].copy_from_slice(r);
    rs[64 - s.len()..].copy_from_slice(s);
    p256::ecdsa::Signature::from_slice(&rs)
        .is_ok_and(|sig| key.verify_prehash(digest, &sig).is_ok())
}

#[test]
fn agrees_with_the_p256_crate_on_generated_keys_and_signatures() {
    let mut checked = 0;
    for k in 0..5 {
        let kp = ES256KeyPair::generate();
        let point = kp.public_key().public_key().to_bytes_uncompressed();
        let (x, y) = (&point[1..33], &point[33..65]);
        let mine = P256PublicKey::new(x, y).unwrap();
        let theirs = p256::ecdsa::VerifyingKey::from_sec1_bytes(&point).unwrap();
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
                (digest.to_vec(), N.to_vec(), s.to_vec(), false),
                (digest.to_vec(), r.to_vec(), N.to_vec(), false),
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
            for (d, r, s, expected) in &cases {
                let ours = mine.verify(d, r, s);
                let r_trim = &r[r.len().saturating_sub(32)..];
                let theirs = r.len() <= 33 && s.len() <= 32 && reference(&theirs, d, r_trim, s);
                assert_eq!(ours, *expected, "key {k} msg {m}: {d:?} {r:?} {s:?}");
                assert_eq!(ours, theirs, "key {k} msg {m}: differs from p256");
                checked += 1;
            }
        }
    }
    assert!(checked > 500);
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
    assert!(P256PublicKey::new(x, &[0xff; 32]).is_none());
    assert!(P256PublicKey::new(&[0xff; 33], y).is_none());
    assert!(P256PublicKey::new(&[], &[]).is_none());
    // y + p is the same residue but not below p: refused (as BoringSSL and the p256 crate do).
    let p: [u8; 32] = [
        0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    ];
    let mut sum = vec![0u8; 33];
    let mut carry = 0u16;
    for i in (0..32).rev() {
        let v = y[i] as u16 + p[i] as u16 + carry;
        sum[i + 1] = v as u8;
        carry = v >> 8;
    }
    sum[0] = carry as u8;
    assert!(P256PublicKey::new(x, &sum).is_none());
}
