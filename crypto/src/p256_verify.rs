//! Verification-only ECDSA on P-256 (ES256), on 32-bit limbs, in straight-line code.
//!
//! Mirrors BoringSSL `ECDSA_do_verify` as Envoy 1.40 `jwt_authn` calls it, and
//! `EC_KEY_set_public_key_affine_coordinates` for the key:
//!
//! * the key's `x` and `y` must be below p and on the curve (P-256 has cofactor 1, so every such
//!   point is in the group; the identity has no affine coordinates);
//! * `r` and `s` must be in `[1, n-1]` (a high `s` is accepted); the digest is cut to its
//!   leftmost 256 bits and reduced mod n (`ecdsa_digest_to_scalar`);
//! * `R = (z/s) G + (r/s) Q` must not be the point at infinity and its `x` mod n must equal `r`
//!   (compared in Jacobian coordinates, `X == r Z^2` or, when `r + n < p`, `X == (r + n) Z^2`,
//!   as BoringSSL's `ec_cmp_x_coordinate` does).
//!
//! Everything here is public data (key, signature, digest), so nothing runs in constant time.
//! The field arithmetic is written for V8's compiler: a product is 64 (a square 36) 32x32-bit
//! limb products on `u64` locals, unrolled by macros, with no array indexed in a loop, then the
//! P-256 (Solinas) reduction of the 512-bit result, `2^256 = 2^224 - 2^192 - 2^96 + 1 mod p`;
//! elements are kept fully reduced. The one inversion mod n per verification (`s^-1`) is
//! [`mod_inverse`](crate::mod_inverse)'s binary extended Euclid on the straight-line steps
//! here; the two products mod n an unrolled Montgomery product.
//!
//! This module owns P-256's field, scalars, constants and key format; the group law, the tables
//! and the double-scalar multiplication are [`short_weierstrass`]'s (shared with P-384),
//! instantiated here for `P256Field` and so compiled at this crate's opt-level. Each scalar is
//! cut into four 64-bit chunks; the affine odd multiples of `2^(64 j) G` (width 7) are built once
//! per module instance, with the first key, those of `2^(64 j) Q` (width 6) when the key is
//! imported (keys are imported once per JWKS).

use std::sync::OnceLock;

use crate::mod_inverse::{from_be_bytes, inverse, is_zero, less, OddModulus};
use crate::short_weierstrass::{self, chunk_tables, key_tables, r_matches, Field, CHUNKS, G_WIDTH};

/// A field element or scalar: eight 32-bit limbs, little-endian, fully reduced.
type Fe = [u32; 8];

const MASK: u64 = 0xffff_ffff;

const P: Fe = [
    0xffff_ffff,
    0xffff_ffff,
    0xffff_ffff,
    0,
    0,
    0,
    0x0000_0001,
    0xffff_ffff,
];
const N: Fe = [
    0xfc63_2551,
    0xf3b9_cac2,
    0xa717_9e84,
    0xbce6_faad,
    0xffff_ffff,
    0xffff_ffff,
    0,
    0xffff_ffff,
];
/// `-n^-1 mod 2^32`.
const N0: u64 = 0xee00_bc4f;
/// `2^512 mod n`.
const RR_N: Fe = [
    0xbe79_eea2,
    0x8324_4c95,
    0x49bd_6fa6,
    0x4699_799c,
    0x2b6b_ec59,
    0x2845_b239,
    0xf3d9_5620,
    0x66e1_2d94,
];
const B: Fe = [
    0x27d2_604b,
    0x3bce_3c3e,
    0xcc53_b0f6,
    0x651d_06b0,
    0x7698_86bc,
    0xb3eb_bd55,
    0xaa3a_93e7,
    0x5ac6_35d8,
];
const GX: Fe = [
    0xd898_c296,
    0xf4a1_3945,
    0x2deb_33a0,
    0x7703_7d81,
    0x63a4_40f2,
    0xf8bc_e6e5,
    0xe12c_4247,
    0x6b17_d1f2,
];
const GY: Fe = [
    0x37bf_51f5,
    0xcbb6_4068,
    0x6b31_5ece,
    0x2bce_3357,
    0x7c0f_9e16,
    0x8ee7_eb4a,
    0xfe1a_7f9b,
    0x4fe3_42e2,
];
const ONE: Fe = [1, 0, 0, 0, 0, 0, 0, 0];
const ZERO: Fe = [0; 8];

/// The scalars are cut into [`CHUNKS`] chunks of this many bits, written in NAF in this many
/// digits plus one.
const CHUNK_BITS: u32 = 64;
const DIGITS: usize = CHUNK_BITS as usize + 1;

/// Binds each limb of `$a` to a `u64` local.
macro_rules! limbs64 {
    ($a:expr => $($x:ident),+) => {
        let [$($x),+] = *$a;
        $(let $x = u64::from($x);)+
    };
}

/// One row of a schoolbook product: `$c.. += $a * $b..`, the carry out into `$top`.
macro_rules! row {
    ($a:expr; $($b:expr => $c:ident),+; $top:ident) => {{
        let mut carry = 0u64;
        $(
            let v = $c + $a * $b + carry;
            $c = v & MASK;
            carry = v >> 32;
        )+
        $top = carry;
    }};
}

/// `$d.. -= $m..` in place over 32-bit limbs, returning the borrow out (0 or 1).
macro_rules! sub_chain {
    ($($d:ident - $m:expr),+) => {{
        let mut borrow = 0u64;
        $(
            let v = $d.wrapping_sub($m).wrapping_sub(borrow);
            $d = v & MASK;
            borrow = v >> 63;
        )+
        borrow
    }};
}

/// `$d.. += $m..` in place over 32-bit limbs, returning the carry out.
macro_rules! add_chain {
    ($($d:ident + $m:expr),+) => {{
        let mut carry = 0u64;
        $(
            let v = $d + $m + carry;
            $d = v & MASK;
            carry = v >> 32;
        )+
        carry
    }};
}

/// `a * b` as sixteen 32-bit limbs (in `u64`s).
#[inline(always)]
fn product(a: &Fe, b: &Fe) -> [u64; 16] {
    limbs64!(a => a0, a1, a2, a3, a4, a5, a6, a7);
    limbs64!(b => b0, b1, b2, b3, b4, b5, b6, b7);
    let (mut c0, mut c1, mut c2, mut c3, mut c4, mut c5, mut c6, mut c7) =
        (0u64, 0u64, 0u64, 0u64, 0u64, 0u64, 0u64, 0u64);
    // The top limb of each row is written before it is read.
    let (mut c8, mut c9, mut c10, mut c11, mut c12, mut c13, mut c14, c15): (
        u64,
        u64,
        u64,
        u64,
        u64,
        u64,
        u64,
        u64,
    );
    row!(a0; b0 => c0, b1 => c1, b2 => c2, b3 => c3, b4 => c4, b5 => c5, b6 => c6, b7 => c7; c8);
    row!(a1; b0 => c1, b1 => c2, b2 => c3, b3 => c4, b4 => c5, b5 => c6, b6 => c7, b7 => c8; c9);
    row!(a2; b0 => c2, b1 => c3, b2 => c4, b3 => c5, b4 => c6, b5 => c7, b6 => c8, b7 => c9; c10);
    row!(a3; b0 => c3, b1 => c4, b2 => c5, b3 => c6, b4 => c7, b5 => c8, b6 => c9, b7 => c10; c11);
    row!(a4; b0 => c4, b1 => c5, b2 => c6, b3 => c7, b4 => c8, b5 => c9, b6 => c10, b7 => c11; c12);
    row!(a5; b0 => c5, b1 => c6, b2 => c7, b3 => c8,
        b4 => c9, b5 => c10, b6 => c11, b7 => c12; c13);
    row!(a6; b0 => c6, b1 => c7, b2 => c8, b3 => c9,
        b4 => c10, b5 => c11, b6 => c12, b7 => c13; c14);
    row!(a7; b0 => c7, b1 => c8, b2 => c9, b3 => c10,
        b4 => c11, b5 => c12, b6 => c13, b7 => c14; c15);
    [
        c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14, c15,
    ]
}

/// Adds `$x^2` into the limb pair `$lo, $hi`, the carry chained through `$carry`.
macro_rules! add_square {
    ($x:expr => $lo:ident, $hi:ident; $carry:ident) => {{
        let sq = $x * $x;
        let v = $lo + (sq & MASK) + $carry;
        $lo = v & MASK;
        let v = $hi + (sq >> 32) + (v >> 32);
        $hi = v & MASK;
        $carry = v >> 32;
    }};
    ($x:expr => $lo:ident, $hi:ident; $carry:ident; last) => {{
        let sq = $x * $x;
        let v = $lo + (sq & MASK) + $carry;
        $lo = v & MASK;
        $hi = ($hi + (sq >> 32) + (v >> 32)) & MASK;
    }};
}

/// `a^2` as sixteen 32-bit limbs: the 28 cross products once, doubled, plus the 8 squares.
#[inline(always)]
fn square(a: &Fe) -> [u64; 16] {
    limbs64!(a => a0, a1, a2, a3, a4, a5, a6, a7);
    let (mut c1, mut c2, mut c3, mut c4, mut c5, mut c6, mut c7) =
        (0u64, 0u64, 0u64, 0u64, 0u64, 0u64, 0u64);
    // The top limb of each row is written before it is read.
    let (mut c8, mut c9, mut c10, mut c11, mut c12, mut c13, mut c14): (
        u64,
        u64,
        u64,
        u64,
        u64,
        u64,
        u64,
    );
    row!(a0; a1 => c1, a2 => c2, a3 => c3, a4 => c4, a5 => c5, a6 => c6, a7 => c7; c8);
    row!(a1; a2 => c3, a3 => c4, a4 => c5, a5 => c6, a6 => c7, a7 => c8; c9);
    row!(a2; a3 => c5, a4 => c6, a5 => c7, a6 => c8, a7 => c9; c10);
    row!(a3; a4 => c7, a5 => c8, a6 => c9, a7 => c10; c11);
    row!(a4; a5 => c9, a6 => c10, a7 => c11; c12);
    row!(a5; a6 => c11, a7 => c12; c13);
    row!(a6; a7 => c13; c14);
    let mut c15 = c14 >> 31;
    c14 = ((c14 << 1) | (c13 >> 31)) & MASK;
    c13 = ((c13 << 1) | (c12 >> 31)) & MASK;
    c12 = ((c12 << 1) | (c11 >> 31)) & MASK;
    c11 = ((c11 << 1) | (c10 >> 31)) & MASK;
    c10 = ((c10 << 1) | (c9 >> 31)) & MASK;
    c9 = ((c9 << 1) | (c8 >> 31)) & MASK;
    c8 = ((c8 << 1) | (c7 >> 31)) & MASK;
    c7 = ((c7 << 1) | (c6 >> 31)) & MASK;
    c6 = ((c6 << 1) | (c5 >> 31)) & MASK;
    c5 = ((c5 << 1) | (c4 >> 31)) & MASK;
    c4 = ((c4 << 1) | (c3 >> 31)) & MASK;
    c3 = ((c3 << 1) | (c2 >> 31)) & MASK;
    c2 = ((c2 << 1) | (c1 >> 31)) & MASK;
    c1 = (c1 << 1) & MASK;
    let mut c0 = 0u64;
    let mut carry = 0u64;
    add_square!(a0 => c0, c1; carry);
    add_square!(a1 => c2, c3; carry);
    add_square!(a2 => c4, c5; carry);
    add_square!(a3 => c6, c7; carry);
    add_square!(a4 => c8, c9; carry);
    add_square!(a5 => c10, c11; carry);
    add_square!(a6 => c12, c13; carry);
    add_square!(a7 => c14, c15; carry; last);
    [
        c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14, c15,
    ]
}

/// Propagates signed column sums into 32-bit limbs, returning the signed carry out.
macro_rules! carry_signed {
    ($($w:ident),+) => {{
        let mut acc = 0i64;
        $(
            acc += $w;
            $w = acc & (MASK as i64);
            acc >>= 32;
        )+
        acc
    }};
}

/// `value mod p` for a 512-bit `value` (NIST's fast reduction for P-256: the sum
/// `s1 + 2 s2 + 2 s3 + s4 + s5 - s6 - s7 - s8 - s9` of FIPS 186 D.2.3), fully reduced.
#[inline(always)]
fn reduce(c: [u64; 16]) -> Fe {
    let [c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14, c15] =
        c.map(|v| v as i64);
    let mut w0 = c0 + c8 + c9 - c11 - c12 - c13 - c14;
    let mut w1 = c1 + c9 + c10 - c12 - c13 - c14 - c15;
    let mut w2 = c2 + c10 + c11 - c13 - c14 - c15;
    let mut w3 = c3 + 2 * (c11 + c12) + c13 - c15 - c8 - c9;
    let mut w4 = c4 + 2 * (c12 + c13) + c14 - c9 - c10;
    let mut w5 = c5 + 2 * (c13 + c14) + c15 - c10 - c11;
    let mut w6 = c6 + 3 * c14 + 2 * c15 + c13 - c8 - c9;
    let mut w7 = c7 + 3 * c15 + c8 - c10 - c11 - c12 - c13;
    // The carry out is in [-4, 6]; `t 2^256 = t (2^224 - 2^192 - 2^96 + 1)`. After one fold
    // the carry is -1, 0 or 1, after the second it is 0.
    for _ in 0..2 {
        let top = carry_signed!(w0, w1, w2, w3, w4, w5, w6, w7);
        w0 += top;
        w3 -= top;
        w6 -= top;
        w7 += top;
    }
    carry_signed!(w0, w1, w2, w3, w4, w5, w6, w7);
    subtract_once([w0, w1, w2, w3, w4, w5, w6, w7].map(|v| v as u64), &P)
}

/// `a - m` if `a >= m`, else `a` (limbs below 2^32 each, `a < 2m`).
#[inline(always)]
fn subtract_once(a: [u64; 8], m: &Fe) -> Fe {
    subtract_once_with_carry(a, 0, m)
}

/// `carry * 2^256 + a`, less `m` once if that is at least `m` (the value is below `2m`).
#[inline(always)]
fn subtract_once_with_carry(a: [u64; 8], carry: u64, m: &Fe) -> Fe {
    let [a0, a1, a2, a3, a4, a5, a6, a7] = a;
    limbs64!(m => m0, m1, m2, m3, m4, m5, m6, m7);
    let (mut d0, mut d1, mut d2, mut d3, mut d4, mut d5, mut d6, mut d7) =
        (a0, a1, a2, a3, a4, a5, a6, a7);
    let borrow = sub_chain!(
        d0 - m0,
        d1 - m1,
        d2 - m2,
        d3 - m3,
        d4 - m4,
        d5 - m5,
        d6 - m6,
        d7 - m7
    );
    if carry == 0 && borrow != 0 {
        [a0, a1, a2, a3, a4, a5, a6, a7].map(|v| v as u32)
    } else {
        [d0, d1, d2, d3, d4, d5, d6, d7].map(|v| v as u32)
    }
}

/// The field mod p, for the shared group law: elements as they are (no Montgomery form), the
/// straight-line products above, additions inlined with the constant p.
struct P256Field;

impl Field for P256Field {
    type Element = Fe;
    const ZERO: Fe = ZERO;
    const ONE: Fe = ONE;

    /// `a b mod p`.
    #[inline(never)]
    fn mul(a: &Fe, b: &Fe) -> Fe {
        reduce(product(a, b))
    }

    /// `a^2 mod p`.
    #[inline(never)]
    fn sqr(a: &Fe) -> Fe {
        reduce(square(a))
    }

    #[inline(never)]
    fn add(a: &Fe, b: &Fe) -> Fe {
        madd(a, b, &P)
    }

    #[inline(never)]
    fn sub(a: &Fe, b: &Fe) -> Fe {
        msub(a, b, &P)
    }

    #[inline(always)]
    fn is_zero(a: &Fe) -> bool {
        is_zero(a)
    }

    /// `a^-1 mod p` (0 for 0), by Fermat.
    fn invert(a: &Fe) -> Fe {
        let mut e = P;
        if let Some(low) = e.first_mut() {
            *low -= 2;
        }
        pow(a, &e, ONE, Self::mul, Self::sqr)
    }
}

/// `a + b mod m` for `a, b < m` (inlined where `m` is a constant).
#[inline(always)]
fn madd(a: &Fe, b: &Fe, m: &Fe) -> Fe {
    limbs64!(a => s0, s1, s2, s3, s4, s5, s6, s7);
    limbs64!(b => b0, b1, b2, b3, b4, b5, b6, b7);
    let (mut s0, mut s1, mut s2, mut s3, mut s4, mut s5, mut s6, mut s7) =
        (s0, s1, s2, s3, s4, s5, s6, s7);
    let carry = add_chain!(
        s0 + b0,
        s1 + b1,
        s2 + b2,
        s3 + b3,
        s4 + b4,
        s5 + b5,
        s6 + b6,
        s7 + b7
    );
    subtract_once_with_carry([s0, s1, s2, s3, s4, s5, s6, s7], carry, m)
}

/// `a - b mod m` for `a, b < m` (inlined where `m` is a constant).
#[inline(always)]
fn msub(a: &Fe, b: &Fe, m: &Fe) -> Fe {
    limbs64!(a => d0, d1, d2, d3, d4, d5, d6, d7);
    limbs64!(b => b0, b1, b2, b3, b4, b5, b6, b7);
    let (mut d0, mut d1, mut d2, mut d3, mut d4, mut d5, mut d6, mut d7) =
        (d0, d1, d2, d3, d4, d5, d6, d7);
    let borrow = sub_chain!(
        d0 - b0,
        d1 - b1,
        d2 - b2,
        d3 - b3,
        d4 - b4,
        d5 - b5,
        d6 - b6,
        d7 - b7
    );
    if borrow != 0 {
        limbs64!(m => m0, m1, m2, m3, m4, m5, m6, m7);
        add_chain!(
            d0 + m0,
            d1 + m1,
            d2 + m2,
            d3 + m3,
            d4 + m4,
            d5 + m5,
            d6 + m6,
            d7 + m7
        );
    }
    [d0, d1, d2, d3, d4, d5, d6, d7].map(|v| v as u32)
}

/// `a - b mod n`.
#[inline(never)]
fn nsub(a: &Fe, b: &Fe) -> Fe {
    msub(a, b, &N)
}

/// `a^e` by square-and-multiply over the bits of `e`, most significant first, with `mul` and
/// `sqr` the products of the ring (the exponent is public).
fn pow(a: &Fe, e: &Fe, one: Fe, mul: fn(&Fe, &Fe) -> Fe, sqr: fn(&Fe) -> Fe) -> Fe {
    // Table of a^0 .. a^15 for a fixed 4-bit window.
    let mut table = [one; 16];
    let mut acc = one;
    for slot in table.iter_mut() {
        *slot = acc;
        acc = mul(&acc, a);
    }
    let mut acc = one;
    for limb in e.iter().rev() {
        for shift in [28u32, 24, 20, 16, 12, 8, 4, 0] {
            acc = sqr(&sqr(&sqr(&sqr(&acc))));
            let nibble = ((limb >> shift) & 15) as usize;
            if nibble != 0 {
                if let Some(t) = table.get(nibble) {
                    acc = mul(&acc, t);
                }
            }
        }
    }
    acc
}

/// Montgomery reduction row: `$c.. += m n..` with `m = $c0 n0 mod 2^32` (making `$c0` zero),
/// the carry out added into `$next` with the running `$extra` carry.
macro_rules! redc_row {
    ($c0:ident; $($c:ident * $n:ident),+; $next:ident; $extra:ident) => {{
        let m = ($c0 * N0) & MASK;
        let mut carry = 0u64;
        $(
            let v = $c + m * $n + carry;
            $c = v & MASK;
            carry = v >> 32;
        )+
        let v = $next + carry + $extra;
        $next = v & MASK;
        $extra = v >> 32;
    }};
}

/// Montgomery product mod n: `a b 2^-256 mod n` for `a, b < n`.
#[inline(never)]
fn nmul(a: &Fe, b: &Fe) -> Fe {
    let [c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14, c15] = product(a, b);
    let (mut c0, mut c1, mut c2, mut c3, mut c4, mut c5, mut c6, mut c7) =
        (c0, c1, c2, c3, c4, c5, c6, c7);
    let (mut c8, mut c9, mut c10, mut c11, mut c12, mut c13, mut c14, mut c15) =
        (c8, c9, c10, c11, c12, c13, c14, c15);
    let mut extra = 0u64;
    let [n0, n1, n2, n3, n4, n5, n6, n7] = N.map(u64::from);
    redc_row!(c0; c0 * n0, c1 * n1, c2 * n2, c3 * n3,
        c4 * n4, c5 * n5, c6 * n6, c7 * n7; c8; extra);
    redc_row!(c1; c1 * n0, c2 * n1, c3 * n2, c4 * n3,
        c5 * n4, c6 * n5, c7 * n6, c8 * n7; c9; extra);
    redc_row!(c2; c2 * n0, c3 * n1, c4 * n2, c5 * n3,
        c6 * n4, c7 * n5, c8 * n6, c9 * n7; c10; extra);
    redc_row!(c3; c3 * n0, c4 * n1, c5 * n2, c6 * n3,
        c7 * n4, c8 * n5, c9 * n6, c10 * n7; c11; extra);
    redc_row!(c4; c4 * n0, c5 * n1, c6 * n2, c7 * n3,
        c8 * n4, c9 * n5, c10 * n6, c11 * n7; c12; extra);
    redc_row!(c5; c5 * n0, c6 * n1, c7 * n2, c8 * n3,
        c9 * n4, c10 * n5, c11 * n6, c12 * n7; c13; extra);
    redc_row!(c6; c6 * n0, c7 * n1, c8 * n2, c9 * n3,
        c10 * n4, c11 * n5, c12 * n6, c13 * n7; c14; extra);
    redc_row!(c7; c7 * n0, c8 * n1, c9 * n2, c10 * n3,
        c11 * n4, c12 * n5, c13 * n6, c14 * n7; c15; extra);
    let _ = (c0, c1, c2, c3, c4, c5, c6, c7);
    // The result, `extra * 2^256 + c8..c15`, is below 2n: at most one subtraction of n.
    subtract_once_with_carry([c8, c9, c10, c11, c12, c13, c14, c15], extra, &N)
}

/// `a / 2 mod n` for `a < n`.
#[inline(never)]
fn half_mod_n(a: &Fe) -> Fe {
    limbs64!(a => d0, d1, d2, d3, d4, d5, d6, d7);
    let (mut d0, mut d1, mut d2, mut d3, mut d4, mut d5, mut d6, mut d7) =
        (d0, d1, d2, d3, d4, d5, d6, d7);
    let mut top = 0u64;
    if d0 & 1 == 1 {
        let [n0, n1, n2, n3, n4, n5, n6, n7] = N.map(u64::from);
        top = add_chain!(
            d0 + n0,
            d1 + n1,
            d2 + n2,
            d3 + n3,
            d4 + n4,
            d5 + n5,
            d6 + n6,
            d7 + n7
        );
    }
    shift_right_1([d0, d1, d2, d3, d4, d5, d6, d7], top)
}

/// `(a + top 2^256) >> 1` over 32-bit limbs.
#[inline(always)]
fn shift_right_1(a: [u64; 8], top: u64) -> Fe {
    let [d0, d1, d2, d3, d4, d5, d6, d7] = a;
    [
        (d0 >> 1) | ((d1 << 31) & MASK),
        (d1 >> 1) | ((d2 << 31) & MASK),
        (d2 >> 1) | ((d3 << 31) & MASK),
        (d3 >> 1) | ((d4 << 31) & MASK),
        (d4 >> 1) | ((d5 << 31) & MASK),
        (d5 >> 1) | ((d6 << 31) & MASK),
        (d6 >> 1) | ((d7 << 31) & MASK),
        (d7 >> 1) | ((top << 31) & MASK),
    ]
    .map(|v| v as u32)
}

/// `a >> 1`.
#[inline(never)]
fn half(a: &Fe) -> Fe {
    shift_right_1(a.map(u64::from), 0)
}

/// The scalars mod n, for the shared inversion: the straight-line steps above.
struct ScalarsModN;

impl OddModulus<8> for ScalarsModN {
    fn modulus(&self) -> Fe {
        N
    }

    #[inline(always)]
    fn half(&self, a: &Fe) -> Fe {
        half(a)
    }

    #[inline(always)]
    fn half_mod(&self, a: &Fe) -> Fe {
        half_mod_n(a)
    }

    #[inline(always)]
    fn sub_mod(&self, a: &Fe, b: &Fe) -> Fe {
        nsub(a, b)
    }
}

/// `a^-1 mod n` (0 for 0).
fn ninv(a: &Fe) -> Fe {
    inverse(&ScalarsModN, a)
}

type Affine = short_weierstrass::Affine<Fe>;

fn g_tables() -> &'static [Affine] {
    static TABLES: OnceLock<Vec<Affine>> = OnceLock::new();
    TABLES.get_or_init(|| {
        chunk_tables::<P256Field>(&Affine { x: GX, y: GY }, G_WIDTH, CHUNK_BITS).unwrap_or_default()
    })
}

/// The four 64-bit chunks of a scalar, least significant first.
fn chunks(a: &Fe) -> [u128; CHUNKS] {
    let [a0, a1, a2, a3, a4, a5, a6, a7] = a.map(u64::from);
    [
        a0 | (a1 << 32),
        a2 | (a3 << 32),
        a4 | (a5 << 32),
        a6 | (a7 << 32),
    ]
    .map(u128::from)
}

/// An imported P-256 public key with its tables of odd multiples.
#[derive(Clone)]
pub struct P256PublicKey {
    tables: Vec<Affine>,
}

impl std::fmt::Debug for P256PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("P256PublicKey")
    }
}

impl P256PublicKey {
    /// Imports the affine point `(x, y)` (big-endian, any length), or `None` when a coordinate
    /// is not below p or the point is not on the curve.
    #[inline(never)]
    pub fn new(x: &[u8], y: &[u8]) -> Option<P256PublicKey> {
        let (x, y) = (from_be_bytes(x)?, from_be_bytes(y)?);
        if !less(&x, &P) || !less(&y, &P) {
            return None;
        }
        Some(P256PublicKey {
            tables: key_tables::<P256Field>(&Affine { x, y }, &B, g_tables, CHUNK_BITS)?,
        })
    }

    /// Whether `(r, s)` (big-endian, any length) signs the message whose hash is `digest`.
    #[inline(never)]
    pub fn verify(&self, digest: &[u8], r: &[u8], s: &[u8]) -> bool {
        let (Some(r), Some(s)) = (from_be_bytes(r), from_be_bytes(s)) else {
            return false;
        };
        if is_zero(&r) || is_zero(&s) || !less(&r, &N) || !less(&s, &N) {
            return false;
        }
        // The leftmost 256 bits of the digest, reduced once (it is below 2n).
        let Some(mut z) = from_be_bytes(digest.get(..32).unwrap_or(digest)) else {
            return false;
        };
        if !less(&z, &N) {
            z = subtract_once(z.map(u64::from), &N);
        }
        // w = s^-1; nmul(a, b) = a b / R, so nmul(nmul(w, R^2), z) = w z.
        let w_r = nmul(&ninv(&s), &RR_N);
        let u1 = nmul(&w_r, &z);
        let u2 = nmul(&w_r, &r);
        r_matches::<P256Field, DIGITS>(
            g_tables(),
            &self.tables,
            chunks(&u1),
            chunks(&u2),
            &r,
            || {
                // x mod n == r also when x = r + n < p.
                let [r0, r1, r2, r3, r4, r5, r6, r7] = r.map(u64::from);
                let (mut d0, mut d1, mut d2, mut d3, mut d4, mut d5, mut d6, mut d7) =
                    (r0, r1, r2, r3, r4, r5, r6, r7);
                let [n0, n1, n2, n3, n4, n5, n6, n7] = N.map(u64::from);
                let carry = add_chain!(
                    d0 + n0,
                    d1 + n1,
                    d2 + n2,
                    d3 + n3,
                    d4 + n4,
                    d5 + n5,
                    d6 + n6,
                    d7 + n7
                );
                let rn = [d0, d1, d2, d3, d4, d5, d6, d7].map(|v| v as u32);
                (carry == 0 && less(&rn, &P)).then_some(rn)
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p256_field_constants_hold() {
        // 2^512 mod n by doubling 1, and -n^-1 mod 2^32.
        let mut x = ONE;
        for _ in 0..512 {
            x = madd(&x, &x, &N);
        }
        assert_eq!(x, RR_N);
        assert_eq!((u64::from(N[0]) * N0) & MASK, MASK);
    }

    #[test]
    fn p256_scalar_inverse_times_the_scalar_is_one() {
        let mut a: Fe = [
            0x1234_5678,
            9,
            0xffff_fff0,
            7,
            0x8000_0001,
            3,
            0xdead_beef,
            0x7fff_ffff,
        ];
        for i in 0..200u32 {
            let inv = ninv(&a);
            // nmul(a, inv) = a inv / R = 1 / R, and nmul(1 / R, R^2) = 1.
            assert_eq!(nmul(&nmul(&a, &inv), &RR_N), ONE, "{a:x?}");
            a = nmul(&a, &[i + 3, 5, 0, 0, 0, 0, 0, 1]);
            if is_zero(&a) {
                a = ONE;
            }
        }
        assert_eq!(ninv(&ONE), ONE);
        let mut n_minus_1 = N;
        n_minus_1[0] -= 1;
        assert_eq!(ninv(&n_minus_1), n_minus_1);
        // 0, n and n + 1 (a signature's s is checked below n first, the inverse does not need it).
        assert_eq!(ninv(&ZERO), ZERO);
        assert_eq!(ninv(&N), ZERO);
        let mut n_plus_1 = N;
        n_plus_1[0] += 1;
        assert_eq!(ninv(&n_plus_1), ONE);
    }

    #[test]
    fn p256_generator_is_on_the_curve_and_its_table_is_built() {
        assert!(P256PublicKey::new(
            &GX.iter()
                .rev()
                .flat_map(|l| l.to_be_bytes())
                .collect::<Vec<_>>(),
            &GY.iter()
                .rev()
                .flat_map(|l| l.to_be_bytes())
                .collect::<Vec<_>>()
        )
        .is_some());
        assert_eq!(g_tables().len(), CHUNKS << (G_WIDTH - 2));
    }
}
