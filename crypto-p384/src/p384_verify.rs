//! Verification-only ECDSA on P-384 (ES384), on 32-bit limbs, written for size.
//!
//! Mirrors BoringSSL `ECDSA_do_verify` as Envoy 1.40 `jwt_authn` calls it, and
//! `EC_KEY_set_public_key_affine_coordinates` for the key, exactly as `p256_verify` does for
//! P-256:
//!
//! * the key's `x` and `y` must be below p and on the curve (P-384 has cofactor 1, so every such
//!   point is in the group; the identity has no affine coordinates);
//! * `r` and `s` must be in `[1, n-1]` (a high `s` is accepted); the digest is cut to its
//!   leftmost 384 bits and reduced mod n (`ecdsa_digest_to_scalar`; a shorter digest is read as
//!   a number, unpadded);
//! * `R = (z/s) G + (r/s) Q` must not be the point at infinity and its `x` mod n must equal `r`
//!   (compared in Jacobian coordinates, `X == r Z^2` or, when `r + n < p`, `X == (r + n) Z^2`,
//!   as BoringSSL's `ec_cmp_x_coordinate` does).
//!
//! Everything here is public data (key, signature, digest), so nothing runs in constant time.
//! ES384 speed is not a target (ES256 is, in `p256_verify`'s straight-line code); this module
//! is what replaced RustCrypto's `p384` stack in the module, so it is small: one looped
//! Montgomery product (CIOS) serves both the field mod p (elements kept in Montgomery form,
//! fully reduced) and the scalars mod n, and one binary extended Euclid (the one of
//! `meshguard_crypto::mod_inverse`, shared with P-256, on the looped steps here) both
//! inversions.
//!
//! This module owns P-384's field, scalars, constants and key format; the group law, the tables
//! and the double-scalar multiplication are `meshguard_crypto::short_weierstrass`'s (shared with
//! P-256), instantiated here for `P384Field` and so compiled in this crate, at its "s". Each
//! scalar is cut into four 96-bit chunks; the affine odd multiples of `2^(96 j) G` (width 7) are
//! built once per module instance, with the first key, those of `2^(96 j) Q` (width 6) when the
//! key is imported (keys are imported once per JWKS).

use std::sync::OnceLock;

use meshguard_crypto::mod_inverse::{self, from_be_bytes, is_zero, less, OddModulus};
use meshguard_crypto::short_weierstrass::{
    self, chunk_tables, key_tables, r_matches, Field, CHUNKS, G_WIDTH,
};

const LIMBS: usize = 12;

/// A field element (Montgomery form, `a 2^384 mod p`) or a scalar: twelve 32-bit limbs,
/// little-endian, fully reduced.
type Fe = [u32; LIMBS];

/// An odd modulus with `-m^-1 mod 2^32`.
struct Modulus {
    m: Fe,
    m0: u32,
}

/// `p = 2^384 - 2^128 - 2^96 + 2^32 - 1` (`-p^-1 = 1 mod 2^32`).
const FP: Modulus = Modulus {
    m: [
        0xffff_ffff,
        0,
        0,
        0xffff_ffff,
        0xffff_fffe,
        0xffff_ffff,
        0xffff_ffff,
        0xffff_ffff,
        0xffff_ffff,
        0xffff_ffff,
        0xffff_ffff,
        0xffff_ffff,
    ],
    m0: 1,
};
/// The group order n.
const FN: Modulus = Modulus {
    m: [
        0xccc5_2973,
        0xecec_196a,
        0x48b0_a77a,
        0x581a_0db2,
        0xf437_2ddf,
        0xc763_4d81,
        0xffff_ffff,
        0xffff_ffff,
        0xffff_ffff,
        0xffff_ffff,
        0xffff_ffff,
        0xffff_ffff,
    ],
    m0: 0xe88f_dc45,
};
/// `2^768 mod p`.
const RR_P: Fe = [
    0x0000_0001,
    0xffff_fffe,
    0,
    0x0000_0002,
    0,
    0xffff_fffe,
    0,
    0x0000_0002,
    0x0000_0001,
    0,
    0,
    0,
];
/// `2^768 mod n`.
const RR_N: Fe = [
    0x19b4_09a9,
    0x2d31_9b24,
    0xdf1a_a419,
    0xff3d_81e5,
    0xfcb8_2947,
    0xbc3e_483a,
    0x4aab_1cc5,
    0xd40d_4917,
    0x2826_6895,
    0x3fb0_5b7a,
    0x2b39_bf21,
    0x0c84_ee01,
];
/// 1 in Montgomery form, `2^384 mod p`.
const ONE_M: Fe = [1, 0xffff_ffff, 0xffff_ffff, 0, 1, 0, 0, 0, 0, 0, 0, 0];
const B: Fe = [
    0xd3ec_2aef,
    0x2a85_c8ed,
    0x8a2e_d19d,
    0xc656_398d,
    0x5013_875a,
    0x0314_088f,
    0xfe81_4112,
    0x181d_9c6e,
    0xe3f8_2d19,
    0x988e_056b,
    0xe23e_e7e4,
    0xb331_2fa7,
];
const GX: Fe = [
    0x7276_0ab7,
    0x3a54_5e38,
    0xbf55_296c,
    0x5502_f25d,
    0x8254_2a38,
    0x59f7_41e0,
    0x8ba7_9b98,
    0x6e1d_3b62,
    0xf320_ad74,
    0x8eb1_c71e,
    0xbe8b_0537,
    0xaa87_ca22,
];
const GY: Fe = [
    0x90ea_0e5f,
    0x7a43_1d7c,
    0x1d7e_819d,
    0x0a60_b1ce,
    0xb5f0_b8c0,
    0xe9da_3113,
    0x289a_147c,
    0xf8f4_1dbd,
    0x9292_dc29,
    0x5d9e_98bf,
    0x9626_2c6f,
    0x3617_de4a,
];
const ZERO: Fe = [0; LIMBS];

/// The scalars are cut into [`CHUNKS`] chunks of this many bits, written in NAF in this many
/// digits plus one.
const CHUNK_BITS: u32 = 96;
const DIGITS: usize = CHUNK_BITS as usize + 1;

/// `a b 2^-384 mod m` for `a, b < m` (coarsely integrated operand scanning).
#[inline(never)]
fn mont_mul(a: &Fe, b: &Fe, modulus: &Modulus) -> Fe {
    let mut t = ZERO;
    // t[12] of the running sum (0 or 1 between rounds: the sum stays below 2m).
    let mut top = 0u64;
    for ai in a {
        let ai = u64::from(*ai);
        let mut carry = 0u64;
        for (tj, bj) in t.iter_mut().zip(b) {
            let v = u64::from(*tj) + ai * u64::from(*bj) + carry;
            *tj = v as u32;
            carry = v >> 32;
        }
        let high = top + carry;
        // Adds q m, making the low limb zero, and shifts down by one limb.
        let q = u64::from(t.first().copied().unwrap_or(0).wrapping_mul(modulus.m0));
        let mut limbs = t.iter_mut().zip(&modulus.m);
        let Some((t0, m0)) = limbs.next() else {
            return ZERO;
        };
        let mut carry = (u64::from(*t0) + q * u64::from(*m0)) >> 32;
        let mut previous = t0;
        for (tj, mj) in limbs {
            let v = u64::from(*tj) + q * u64::from(*mj) + carry;
            *previous = v as u32;
            carry = v >> 32;
            previous = tj;
        }
        let v = high + carry;
        *previous = v as u32;
        top = v >> 32;
    }
    if top != 0 || !less(&t, &modulus.m) {
        t = add_sub(&t, &modulus.m, true).0;
    }
    t
}

/// `a - b` when `subtract`, else `a + b`, with the borrow or carry out.
#[inline(never)]
fn add_sub(a: &Fe, b: &Fe, subtract: bool) -> (Fe, bool) {
    let mut out = ZERO;
    let mut carry = 0u64;
    for ((o, x), y) in out.iter_mut().zip(a).zip(b) {
        let v = if subtract {
            u64::from(*x)
                .wrapping_sub(u64::from(*y))
                .wrapping_sub(carry)
        } else {
            u64::from(*x) + u64::from(*y) + carry
        };
        *o = v as u32;
        carry = if subtract { v >> 63 } else { v >> 32 };
    }
    (out, carry != 0)
}

/// `a + b mod m` for `a, b < m`.
fn add_mod(a: &Fe, b: &Fe, m: &Fe) -> Fe {
    let (sum, carry) = add_sub(a, b, false);
    if carry || !less(&sum, m) {
        add_sub(&sum, m, true).0
    } else {
        sum
    }
}

/// `a - b mod m` for `a, b < m`.
fn sub_mod(a: &Fe, b: &Fe, m: &Fe) -> Fe {
    let (difference, borrow) = add_sub(a, b, true);
    if borrow {
        add_sub(&difference, m, false).0
    } else {
        difference
    }
}

/// `a` (below p) in Montgomery form.
fn to_montgomery(a: &Fe) -> Fe {
    P384Field::mul(a, &RR_P)
}

/// `a / 2 mod m` for `a < m`, `m` odd: `(a + m) / 2` when `a` is odd, else `a / 2`.
fn half_mod(a: &Fe, m: &Fe) -> Fe {
    let (a, carry) = if a.first().is_some_and(|l| l & 1 == 1) {
        add_sub(a, m, false)
    } else {
        (*a, false)
    };
    let mut out = ZERO;
    let mut high = u32::from(carry);
    for (o, l) in out.iter_mut().zip(a.iter()).rev() {
        *o = (l >> 1) | (high << 31);
        high = l & 1;
    }
    out
}

/// The numbers modulo an odd `m` (p or n), for the shared inversion: the looped steps above.
struct Modulo<'m>(&'m Fe);

impl OddModulus<LIMBS> for Modulo<'_> {
    fn modulus(&self) -> Fe {
        *self.0
    }

    /// `half_mod` halves an even number of any size as it is.
    #[inline(always)]
    fn half(&self, a: &Fe) -> Fe {
        half_mod(a, self.0)
    }

    #[inline(always)]
    fn half_mod(&self, a: &Fe) -> Fe {
        half_mod(a, self.0)
    }

    #[inline(always)]
    fn sub_mod(&self, a: &Fe, b: &Fe) -> Fe {
        sub_mod(a, b, self.0)
    }
}

/// `a^-1 mod m` for `m` p or n (0 for 0).
fn inverse(a: &Fe, m: &Fe) -> Fe {
    mod_inverse::inverse(&Modulo(m), a)
}

/// The field mod p, for the shared group law: elements in Montgomery form, the looped
/// Montgomery product and the modular additions above, with the constant p.
struct P384Field;

impl Field for P384Field {
    type Element = Fe;
    const ZERO: Fe = ZERO;
    /// 1 in Montgomery form.
    const ONE: Fe = ONE_M;

    #[inline(always)]
    fn mul(a: &Fe, b: &Fe) -> Fe {
        mont_mul(a, b, &FP)
    }

    #[inline(always)]
    fn sqr(a: &Fe) -> Fe {
        mont_mul(a, a, &FP)
    }

    #[inline(always)]
    fn add(a: &Fe, b: &Fe) -> Fe {
        add_mod(a, b, &FP.m)
    }

    #[inline(always)]
    fn sub(a: &Fe, b: &Fe) -> Fe {
        sub_mod(a, b, &FP.m)
    }

    #[inline(always)]
    fn is_zero(a: &Fe) -> bool {
        is_zero(a)
    }

    /// `a^-1` for a field element in Montgomery form (0 for 0).
    fn invert(a: &Fe) -> Fe {
        // inverse(a R) = a^-1 R^-1; each product by R^2 multiplies by R.
        Self::mul(&Self::mul(&inverse(a, &FP.m), &RR_P), &RR_P)
    }
}

/// An affine point (Montgomery coordinates).
type Affine = short_weierstrass::Affine<Fe>;

fn g_tables() -> &'static [Affine] {
    static TABLES: OnceLock<Vec<Affine>> = OnceLock::new();
    TABLES.get_or_init(|| {
        let g = Affine {
            x: to_montgomery(&GX),
            y: to_montgomery(&GY),
        };
        chunk_tables::<P384Field>(&g, G_WIDTH, CHUNK_BITS).unwrap_or_default()
    })
}

/// The four 96-bit chunks of a scalar, least significant first.
fn chunks(a: &Fe) -> [u128; CHUNKS] {
    let mut out = [0u128; CHUNKS];
    for (chunk, limbs) in out.iter_mut().zip(a.chunks(3)) {
        *chunk = limbs
            .iter()
            .rev()
            .fold(0u128, |acc, l| (acc << 32) | u128::from(*l));
    }
    out
}

/// An imported P-384 public key with its tables of odd multiples.
#[derive(Clone)]
pub struct P384PublicKey {
    tables: Vec<Affine>,
}

impl std::fmt::Debug for P384PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("P384PublicKey")
    }
}

impl P384PublicKey {
    /// Imports the affine point `(x, y)` (big-endian, any length), or `None` when a coordinate
    /// is not below p or the point is not on the curve.
    #[inline(never)]
    pub fn new(x: &[u8], y: &[u8]) -> Option<P384PublicKey> {
        let (x, y) = (from_be_bytes(x)?, from_be_bytes(y)?);
        if !less(&x, &FP.m) || !less(&y, &FP.m) {
            return None;
        }
        let (x, y) = (to_montgomery(&x), to_montgomery(&y));
        Some(P384PublicKey {
            tables: key_tables::<P384Field>(
                &Affine { x, y },
                &to_montgomery(&B),
                g_tables,
                CHUNK_BITS,
            )?,
        })
    }

    /// Whether `(r, s)` (big-endian, any length) signs the message whose hash is `digest`.
    #[inline(never)]
    pub fn verify(&self, digest: &[u8], r: &[u8], s: &[u8]) -> bool {
        let (Some(r), Some(s)) = (from_be_bytes(r), from_be_bytes(s)) else {
            return false;
        };
        let n = &FN.m;
        if is_zero(&r) || is_zero(&s) || !less(&r, n) || !less(&s, n) {
            return false;
        }
        // The leftmost 384 bits of the digest, reduced once (it is below 2n).
        let Some(mut z) = from_be_bytes(digest.get(..4 * LIMBS).unwrap_or(digest)) else {
            return false;
        };
        if !less(&z, n) {
            z = add_sub(&z, n, true).0;
        }
        // w = s^-1; mont_mul(a, b) = a b / R, so mont_mul(mont_mul(w, R^2), z) = w z.
        let w_r = mont_mul(&inverse(&s, n), &RR_N, &FN);
        let u1 = mont_mul(&w_r, &z, &FN);
        let u2 = mont_mul(&w_r, &r, &FN);
        r_matches::<P384Field, DIGITS>(
            g_tables(),
            &self.tables,
            chunks(&u1),
            chunks(&u2),
            &to_montgomery(&r),
            || {
                // x mod n == r also when x = r + n < p.
                let (rn, carry) = add_sub(&r, n, false);
                (!carry && less(&rn, &FP.m)).then(|| to_montgomery(&rn))
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: Fe = [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];

    #[test]
    fn p384_montgomery_constants_hold() {
        // 2^768 mod m by doubling 1, 2^384 mod p likewise, and -m^-1 mod 2^32.
        for (modulus, rr) in [(&FP, RR_P), (&FN, RR_N)] {
            let mut x = ONE;
            for _ in 0..768 {
                x = add_mod(&x, &x, &modulus.m);
            }
            assert_eq!(x, rr);
            let low = u64::from(modulus.m[0]) * u64::from(modulus.m0);
            assert_eq!(low & 0xffff_ffff, 0xffff_ffff);
        }
        let mut x = ONE;
        for _ in 0..384 {
            x = P384Field::add(&x, &x);
        }
        assert_eq!(x, ONE_M);
        assert_eq!(to_montgomery(&ONE), ONE_M);
    }

    #[test]
    fn p384_inverses_times_their_element_are_one() {
        let mut a: Fe = [
            0x1234_5678,
            9,
            0xffff_fff0,
            7,
            0x8000_0001,
            3,
            0xdead_beef,
            0x7fff_ffff,
            1,
            0,
            0xffff_ffff,
            0x7fff_ffff,
        ];
        for i in 0..200u32 {
            // Mod n: mont_mul(a, inv) = 1 / R, and mont_mul(1 / R, R^2) = 1.
            let inv = inverse(&a, &FN.m);
            assert_eq!(
                mont_mul(&mont_mul(&a, &inv, &FN), &RR_N, &FN),
                ONE,
                "{a:x?}"
            );
            // Mod p, in Montgomery form.
            assert_eq!(P384Field::mul(&a, &P384Field::invert(&a)), ONE_M, "{a:x?}");
            a = mont_mul(&a, &[i + 3, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], &FN);
            if is_zero(&a) {
                a = ONE;
            }
        }
        assert_eq!(inverse(&ONE, &FN.m), ONE);
        let mut n_minus_1 = FN.m;
        n_minus_1[0] -= 1;
        assert_eq!(inverse(&n_minus_1, &FN.m), n_minus_1);
        // 0, n and n + 1 (a signature's s is checked below n first, the inverse does not need it).
        assert_eq!(inverse(&ZERO, &FN.m), ZERO);
        assert_eq!(inverse(&FN.m, &FN.m), ZERO);
        let mut n_plus_1 = FN.m;
        n_plus_1[0] += 1;
        assert_eq!(inverse(&n_plus_1, &FN.m), ONE);
        assert_eq!(P384Field::invert(&ZERO), ZERO);
    }

    #[test]
    fn p384_generator_is_on_the_curve_and_its_table_is_built() {
        let be = |a: &Fe| {
            a.iter()
                .rev()
                .flat_map(|l| l.to_be_bytes())
                .collect::<Vec<_>>()
        };
        assert!(P384PublicKey::new(&be(&GX), &be(&GY)).is_some());
        assert_eq!(g_tables().len(), CHUNKS << (G_WIDTH - 2));
    }
}
