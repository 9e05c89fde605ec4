//! `meshguard_crypto::p256_verify` against the `p256` crate (RustCrypto, what meshguard used
//! before) on generated keys and ES256 signatures: good signatures, the other valid `s` (n - s,
//! high-S), corrupted `r`/`s`/digest, `r`/`s` of 0, n or above, and key import (off-curve points,
//! coordinates not below p, no affine identity). Signatures built deliberately reach the
//! exceptional paths: `u1 G + u2 Q` adding a point to itself (doubling inside the addition) or to
//! its negation (R at infinity), and `x(R) >= n` (accepted through `r + n < p`). The checks are
//! `support/mod.rs`'s, shared with P-384's tests (`crypto-p384/tests/p384_verify.rs`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "support/p256.rs"]
mod p256_curve;
mod support;

use jwt_simple::prelude::*;
use meshguard_crypto::p256_verify::P256PublicKey;
use p256::elliptic_curve::point::AffineCoordinates;
use p256::elliptic_curve::sec1::FromSec1Point;
use p256::AffinePoint;
use p256_curve::P256;

#[test]
fn agrees_with_the_p256_crate_on_generated_keys_and_signatures() {
    assert!(support::agrees_on_generated_keys_and_signatures::<P256>(5, 8) > 500);
}

#[test]
fn agrees_with_the_p256_crate_on_many_signatures_and_digests_above_n() {
    support::agrees_on_many_signatures_and_digests_above_n::<P256>(60, 4, 4);
}

#[test]
fn a_point_added_to_itself_doubles_and_to_its_negation_is_infinity() {
    // Keys 2^64 G, 2^128 G, 2^192 G: the chunk bases of the tables.
    support::doubles_a_point_added_to_itself_and_refuses_infinity::<P256>(
        &[1, 3, 5, 7, 11, 15, 31],
        &[64, 128, 192],
        4,
    );
}

#[test]
fn an_x_coordinate_at_or_above_n_matches_r_plus_n() {
    let found = support::matches_an_x_coordinate_at_or_above_n_with_r_plus_n::<P256>(64);
    assert!(found > 10, "{found} points with x >= n");
}

#[test]
fn keys_off_the_curve_or_out_of_range_are_refused() {
    let kp = ES256KeyPair::generate();
    let point = kp.public_key().public_key().to_bytes_uncompressed();
    support::refuses_keys_off_the_curve_or_out_of_range::<P256>(&point[1..33], &point[33..65]);
    // A point with x = 0 exists on P-256 (b is a square): (0, sqrt(b)).
    let zero = AffinePoint::from_sec1_bytes(&[&[2u8][..], &[0u8; 32]].concat()).unwrap();
    let key = P256PublicKey::new(&[0], &zero.y());
    assert!(key.is_some());
}
