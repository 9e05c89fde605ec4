//! `meshguard_crypto_p384::p384_verify` against the `p384` crate (RustCrypto, what meshguard used
//! before) on generated keys and ES384 signatures: good signatures, the other valid `s` (n - s,
//! high-S), corrupted `r`/`s`/digest, `r`/`s` of 0, n or above, digests of 32, 48 and 64 bytes (the
//! SHA-256/384/512 an ES256/ES384/ES512 token brings to a P-384 key without `alg`), and key import
//! (off-curve points, coordinates not below p, no affine identity). Signatures built deliberately
//! reach the exceptional paths: `u1 G + u2 Q` adding a point to itself (doubling inside the
//! addition) or to its negation (R at infinity), and `x(R) >= n` (accepted through `r + n < p`).
//! The checks are `meshguard-crypto`'s `tests/support/mod.rs`, shared with P-256's tests; ES384
//! through a JWKS and `authn::jwt` is `meshguard-core`'s `tests/jwt_es384.rs`.
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
use meshguard_crypto_p384::p384_verify::P384PublicKey;
use p384::elliptic_curve::point::AffineCoordinates;
use p384::elliptic_curve::sec1::FromSec1Point;
use p384::{AffinePoint, ProjectivePoint};
use p384_curve::P384;
use support::{expect, scalar_reduced, sign, sub, Curve, Rng};

#[test]
fn agrees_with_the_p384_crate_on_generated_keys_and_signatures() {
    assert!(support::agrees_on_generated_keys_and_signatures::<P384>(3, 4) > 250);
}

#[test]
fn agrees_with_the_p384_crate_on_many_signatures_and_digests_above_n() {
    support::agrees_on_many_signatures_and_digests_above_n::<P384>(30, 3, 24);
}

#[test]
fn a_32_byte_digest_is_read_as_a_number_as_boringssl_reads_it() {
    // An ES256 token checked against a P-384 key without `alg` brings a SHA-256 digest:
    // BoringSSL (and the p384 crate) read its 32 bytes as a number below 2^256.
    let mut rng = Rng(4);
    for _ in 0..6 {
        let d = rng.scalar::<P384>();
        let (x, y) = P384::coordinates(&(ProjectivePoint::GENERATOR * d));
        let key = (&x[..], &y[..]);
        let digest = &rng.bytes(48)[..32];
        let z = scalar_reduced::<P384>(&[&[0u8; 16][..], digest].concat());
        let (r, s) = sign::<P384>(&d, &rng.scalar::<P384>(), &z);
        let (r, s) = (P384::scalar_bytes(&r), P384::scalar_bytes(&s));
        expect::<P384>(key, "short digest", digest, &r, &s, true);
        expect::<P384>(key, "padded digest", &P384::scalar_bytes(&z), &r, &s, true);
        let mut other = digest.to_vec();
        other[31] ^= 1;
        expect::<P384>(key, "short digest, changed", &other, &r, &s, false);
    }
}

#[test]
fn a_point_added_to_itself_doubles_and_to_its_negation_is_infinity() {
    // Keys 2^96 G, 2^192 G, 2^288 G: the chunk bases of the tables.
    support::doubles_a_point_added_to_itself_and_refuses_infinity::<P384>(
        &[1, 3, 5, 7, 11, 15, 31, 63],
        &[96, 192, 288],
        3,
    );
}

#[test]
fn an_x_coordinate_at_or_above_n_matches_r_plus_n() {
    let found = support::matches_an_x_coordinate_at_or_above_n_with_r_plus_n::<P384>(40);
    assert!(found > 5, "{found} points with x >= n");
}

#[test]
fn keys_off_the_curve_or_out_of_range_are_refused() {
    let kp = ES384KeyPair::generate();
    let point = kp.public_key().public_key().to_bytes_uncompressed();
    support::refuses_keys_off_the_curve_or_out_of_range::<P384>(&point[1..49], &point[49..97]);
    // The P-256 generator is not a P-384 point.
    let p256_g = p256::ProjectivePoint::GENERATOR.to_affine();
    assert!(P384PublicKey::new(&p256_g.x(), &p256_g.y()).is_none());
    // Random coordinates: refused exactly when the reference refuses them.
    let mut rng = Rng(5);
    for _ in 0..40 {
        let (x, y) = (rng.bytes(48), rng.bytes(48));
        assert_eq!(
            P384PublicKey::new(&x, &y).is_some(),
            P384::reference_key(&x, &y).is_some()
        );
        // And a valid x with both square roots: (x, y) and (x, p - y).
        if let Ok(point) = AffinePoint::from_sec1_bytes(&[&[2u8][..], &x[..]].concat()) {
            let y = point.y().to_vec();
            assert!(P384PublicKey::new(&x, &y).is_some());
            assert!(P384PublicKey::new(&x, &sub(P384::P, &y)).is_some());
        }
    }
}
