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
//! fully reduced) and the scalars mod n, one binary extended Euclid both inversions.
//!
//! `R` comes from one pass of 96 doublings, as in `p256_verify`: each scalar is cut into four
//! 96-bit chunks, chunk `j` of `u` multiplying `2^(96 j) P`, and every chunk is written in
//! width-w NAF. The affine odd multiples of `2^(96 j) G` (width 7) are built once per module
//! instance, with the first key, those of `2^(96 j) Q` (width 6) when the key is imported (keys
//! are imported once per JWKS).

use std::cmp::Ordering;
use std::sync::OnceLock;

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
const ONE: Fe = [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
const ZERO: Fe = [0; LIMBS];

/// The scalars are cut into this many chunks of [`CHUNK_BITS`] bits.
const CHUNKS: usize = 4;
const CHUNK_BITS: u32 = 96;
/// NAF width for the generator's tables (`2^(w-2)` odd multiples per chunk).
const G_WIDTH: u32 = 7;
/// NAF width for a key's tables.
const Q_WIDTH: u32 = 6;

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

fn fmul(a: &Fe, b: &Fe) -> Fe {
    mont_mul(a, b, &FP)
}

fn fsqr(a: &Fe) -> Fe {
    mont_mul(a, a, &FP)
}

fn fadd(a: &Fe, b: &Fe) -> Fe {
    add_mod(a, b, &FP.m)
}

fn fsub(a: &Fe, b: &Fe) -> Fe {
    sub_mod(a, b, &FP.m)
}

/// `a` (below p) in Montgomery form.
fn to_montgomery(a: &Fe) -> Fe {
    fmul(a, &RR_P)
}

fn is_zero(a: &Fe) -> bool {
    a.iter().all(|l| *l == 0)
}

/// `a < b`.
fn less(a: &Fe, b: &Fe) -> bool {
    a.iter().rev().cmp(b.iter().rev()) == Ordering::Less
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

/// `a^-1 mod m` for `a` in `[1, m-1]`, `m` odd, by the binary extended Euclidean algorithm
/// (variable time: `a` is public). Invariants: `x1 a = u` and `x2 a = v (mod m)`,
/// `gcd(u, v) = 1`. 0 when `a` is 0.
fn inverse(a: &Fe, m: &Fe) -> Fe {
    let (mut u, mut v) = (*a, *m);
    let (mut x1, mut x2) = (ONE, ZERO);
    // Each round halves u or v at least once; 2 * 384 rounds bound the loop.
    for _ in 0..2 * 384 + 2 {
        if u == ONE {
            return x1;
        }
        if v == ONE {
            return x2;
        }
        if is_zero(&u) || is_zero(&v) {
            break;
        }
        while u.first().is_some_and(|l| l & 1 == 0) {
            u = half_mod(&u, m);
            x1 = half_mod(&x1, m);
        }
        while v.first().is_some_and(|l| l & 1 == 0) {
            v = half_mod(&v, m);
            x2 = half_mod(&x2, m);
        }
        if less(&u, &v) {
            v = sub_mod(&v, &u, m);
            x2 = sub_mod(&x2, &x1, m);
        } else {
            u = sub_mod(&u, &v, m);
            x1 = sub_mod(&x1, &x2, m);
        }
    }
    ZERO
}

/// `a^-1` for a field element in Montgomery form (0 for 0).
fn finv(a: &Fe) -> Fe {
    // inverse(a R) = a^-1 R^-1; each product by R^2 multiplies by R.
    fmul(&fmul(&inverse(a, &FP.m), &RR_P), &RR_P)
}

/// An affine point (Montgomery coordinates).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Affine {
    x: Fe,
    y: Fe,
}

/// A Jacobian point `(X/Z^2, Y/Z^3)`; `Z = 0` is the point at infinity.
#[derive(Clone, Copy, Debug)]
struct Jacobian {
    x: Fe,
    y: Fe,
    z: Fe,
}

const INFINITY: Jacobian = Jacobian {
    x: ONE_M,
    y: ONE_M,
    z: ZERO,
};

impl Jacobian {
    fn from_affine(a: &Affine) -> Jacobian {
        Jacobian {
            x: a.x,
            y: a.y,
            z: ONE_M,
        }
    }
}

/// `2a` (dbl-2001-b, `a = -3`: 3 products, 5 squares).
fn double(a: &Jacobian) -> Jacobian {
    if is_zero(&a.z) {
        return *a;
    }
    let delta = fsqr(&a.z);
    let gamma = fsqr(&a.y);
    let beta = fmul(&a.x, &gamma);
    let t = fmul(&fsub(&a.x, &delta), &fadd(&a.x, &delta));
    let alpha = fadd(&fadd(&t, &t), &t);
    let beta2 = fadd(&beta, &beta);
    let beta4 = fadd(&beta2, &beta2);
    let beta8 = fadd(&beta4, &beta4);
    let x = fsub(&fsqr(&alpha), &beta8);
    let yz = fadd(&a.y, &a.z);
    let z = fsub(&fsub(&fsqr(&yz), &gamma), &delta);
    let gamma2 = fsqr(&gamma);
    let g2 = fadd(&gamma2, &gamma2);
    let g4 = fadd(&g2, &g2);
    let gamma8 = fadd(&g4, &g4);
    let y = fsub(&fmul(&alpha, &fsub(&beta4, &x)), &gamma8);
    Jacobian { x, y, z }
}

/// `a + b` for an affine `b` (madd-2007-bl: 7 products, 4 squares), with the cases of `a`
/// at infinity, `a = b` (doubling) and `a = -b` (infinity).
fn add_affine(a: &Jacobian, b: &Affine) -> Jacobian {
    if is_zero(&a.z) {
        return Jacobian::from_affine(b);
    }
    let z1z1 = fsqr(&a.z);
    let u2 = fmul(&b.x, &z1z1);
    let s2 = fmul(&b.y, &fmul(&a.z, &z1z1));
    let h = fsub(&u2, &a.x);
    let s2_y1 = fsub(&s2, &a.y);
    if is_zero(&h) {
        return if is_zero(&s2_y1) { double(a) } else { INFINITY };
    }
    let hh = fsqr(&h);
    let hh2 = fadd(&hh, &hh);
    let i = fadd(&hh2, &hh2);
    let j = fmul(&h, &i);
    let r = fadd(&s2_y1, &s2_y1);
    let v = fmul(&a.x, &i);
    let x = fsub(&fsub(&fsqr(&r), &j), &fadd(&v, &v));
    let y1j = fmul(&a.y, &j);
    let y = fsub(&fmul(&r, &fsub(&v, &x)), &fadd(&y1j, &y1j));
    let zh = fmul(&a.z, &h);
    let z = fadd(&zh, &zh);
    Jacobian { x, y, z }
}

/// The affine forms of `points` (none at infinity) with one inversion; `None` if one is.
fn batch_to_affine(points: &[Jacobian]) -> Option<Vec<Affine>> {
    let mut prefix = Vec::with_capacity(points.len());
    let mut acc = ONE_M;
    for point in points {
        prefix.push(acc);
        acc = fmul(&acc, &point.z);
    }
    if is_zero(&acc) {
        return None;
    }
    // `inv` is the inverse of the product of the Z's not yet visited (walking backwards).
    let mut inv = finv(&acc);
    let mut out = vec![Affine { x: ZERO, y: ZERO }; points.len()];
    for ((point, before), slot) in points.iter().zip(&prefix).zip(out.iter_mut()).rev() {
        let zi = fmul(&inv, before);
        inv = fmul(&inv, &point.z);
        let zi2 = fsqr(&zi);
        *slot = Affine {
            x: fmul(&point.x, &zi2),
            y: fmul(&point.y, &fmul(&zi2, &zi)),
        };
    }
    Some(out)
}

/// The affine form of one point not at infinity.
fn to_affine(point: &Jacobian) -> Option<Affine> {
    batch_to_affine(&[*point])?.into_iter().next()
}

/// For each chunk `j`, the odd multiples `P_j, 3 P_j, .., (2^(w-1) - 1) P_j` of
/// `P_j = 2^(96 j) P`, affine, chunk after chunk.
fn chunk_tables(point: &Affine, width: u32) -> Option<Vec<Affine>> {
    let per_chunk = 1usize << (width - 2);
    let mut jacobian = Vec::with_capacity(CHUNKS * per_chunk);
    let mut base = *point;
    for chunk in 0..CHUNKS {
        if chunk > 0 {
            let mut b = Jacobian::from_affine(&base);
            for _ in 0..CHUNK_BITS {
                b = double(&b);
            }
            base = to_affine(&b)?;
        }
        let twice = to_affine(&double(&Jacobian::from_affine(&base)))?;
        let mut acc = Jacobian::from_affine(&base);
        jacobian.push(acc);
        for _ in 1..per_chunk {
            acc = add_affine(&acc, &twice);
            jacobian.push(acc);
        }
    }
    batch_to_affine(&jacobian)
}

fn g_tables() -> &'static [Affine] {
    static TABLES: OnceLock<Vec<Affine>> = OnceLock::new();
    TABLES.get_or_init(|| {
        let g = Affine {
            x: to_montgomery(&GX),
            y: to_montgomery(&GY),
        };
        chunk_tables(&g, G_WIDTH).unwrap_or_default()
    })
}

/// Width-`w` NAF digits of a chunk (`value < 2^96`), least significant first.
fn wnaf(value: u128, width: u32) -> [i8; CHUNK_BITS as usize + 1] {
    let mut digits = [0i8; CHUNK_BITS as usize + 1];
    let mut k = value;
    let window = 1i64 << width;
    for d in digits.iter_mut() {
        if k == 0 {
            break;
        }
        if k & 1 == 1 {
            let mut v = (k & (window as u128 - 1)) as i64;
            if v >= window / 2 {
                v -= window;
            }
            *d = v as i8;
            if v > 0 {
                k -= v as u128;
            } else {
                k += (-v) as u128;
            }
        }
        k >>= 1;
    }
    digits
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

/// Big-endian bytes of any length (leading zeros allowed) as a 384-bit number, `None` when
/// the number needs more than 384 bits.
fn from_be_bytes(bytes: &[u8]) -> Option<Fe> {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    let digits = bytes.get(first..)?;
    if digits.len() > 4 * LIMBS {
        return None;
    }
    let mut out = ZERO;
    for (limb, chunk) in out.iter_mut().zip(digits.rchunks(4)) {
        *limb = chunk.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b));
    }
    Some(out)
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
    pub fn new(x: &[u8], y: &[u8]) -> Option<P384PublicKey> {
        let (x, y) = (from_be_bytes(x)?, from_be_bytes(y)?);
        if !less(&x, &FP.m) || !less(&y, &FP.m) {
            return None;
        }
        let (x, y) = (to_montgomery(&x), to_montgomery(&y));
        // y^2 = x^3 - 3x + b
        let x3 = fmul(&fsqr(&x), &x);
        let x2 = fadd(&x, &x);
        let rhs = fadd(&fsub(&fsub(&x3, &x2), &x), &to_montgomery(&B));
        if fsqr(&y) != rhs {
            return None;
        }
        // The generator's tables are built with the first key, at JWKS import, not in a request.
        if g_tables().is_empty() {
            return None;
        }
        Some(P384PublicKey {
            tables: chunk_tables(&Affine { x, y }, Q_WIDTH)?,
        })
    }

    /// Whether `(r, s)` (big-endian, any length) signs the message whose hash is `digest`.
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
        let Some(point) = self.multiply(&u1, &u2) else {
            return false;
        };
        let zz = fsqr(&point.z);
        if fmul(&to_montgomery(&r), &zz) == point.x {
            return true;
        }
        // x mod n == r also when x = r + n < p.
        let (rn, carry) = add_sub(&r, n, false);
        !carry && less(&rn, &FP.m) && fmul(&to_montgomery(&rn), &zz) == point.x
    }

    /// `u1 G + u2 Q` in Jacobian form, `None` at infinity.
    fn multiply(&self, u1: &Fe, u2: &Fe) -> Option<Jacobian> {
        let g = g_tables();
        let per_g = 1usize << (G_WIDTH - 2);
        let per_q = 1usize << (Q_WIDTH - 2);
        let g_digits = chunks(u1).map(|c| wnaf(c, G_WIDTH));
        let q_digits = chunks(u2).map(|c| wnaf(c, Q_WIDTH));
        let mut acc = INFINITY;
        for i in (0..=CHUNK_BITS as usize).rev() {
            acc = double(&acc);
            for (chunk, digits) in g_digits.iter().enumerate() {
                acc = add_digit(&acc, digits.get(i).copied(), g, chunk * per_g)?;
            }
            for (chunk, digits) in q_digits.iter().enumerate() {
                acc = add_digit(&acc, digits.get(i).copied(), &self.tables, chunk * per_q)?;
            }
        }
        if is_zero(&acc.z) {
            None
        } else {
            Some(acc)
        }
    }
}

/// `acc + d P` for a NAF digit `d` whose odd multiple `|d| P` is `table[offset + |d|/2]`.
fn add_digit(
    acc: &Jacobian,
    digit: Option<i8>,
    table: &[Affine],
    offset: usize,
) -> Option<Jacobian> {
    let d = digit?;
    if d == 0 {
        return Some(*acc);
    }
    let point = table.get(offset + usize::from(d.unsigned_abs() / 2))?;
    Some(if d > 0 {
        add_affine(acc, point)
    } else {
        add_affine(
            acc,
            &Affine {
                x: point.x,
                y: fsub(&ZERO, &point.y),
            },
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
            x = fadd(&x, &x);
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
            assert_eq!(fmul(&a, &finv(&a)), ONE_M, "{a:x?}");
            a = mont_mul(&a, &[i + 3, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], &FN);
            if is_zero(&a) {
                a = ONE;
            }
        }
        assert_eq!(inverse(&ONE, &FN.m), ONE);
        let mut n_minus_1 = FN.m;
        n_minus_1[0] -= 1;
        assert_eq!(inverse(&n_minus_1, &FN.m), n_minus_1);
        assert_eq!(finv(&ZERO), ZERO);
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
