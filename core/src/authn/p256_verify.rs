//! Verification-only ECDSA on P-256 (ES256), on 32-bit limbs.
//!
//! Mirrors BoringSSL `ECDSA_do_verify` as Envoy 1.40 `jwt_authn` calls it, and
//! `EC_KEY_set_public_key_affine_coordinates` for the key:
//!
//! * the key's `x` and `y` must be below p and on the curve (P-256 has cofactor 1, so every such
//!   point is in the group);
//! * `r` and `s` must be in `[1, n-1]`; the digest is cut to its leftmost 256 bits and reduced
//!   mod n (`ecdsa_digest_to_scalar`);
//! * `R = (z/s) G + (r/s) Q` must not be the point at infinity and its `x` mod n must equal `r`
//!   (compared in Jacobian coordinates, `X == r Z^2` or `X == (r + n) Z^2`, which avoids an
//!   inversion, as BoringSSL's `ec_cmp_x_coordinate` does).
//!
//! Everything is public data (key, signature, digest), so nothing here runs in constant time.
//! Field and scalar arithmetic are Montgomery multiplications on eight 32-bit limbs (native
//! 64-bit products on wasm32); points are Jacobian with the `a = -3` doubling; `R` comes from
//! one interleaved width-5 NAF pass over both scalars, adding affine odd multiples of `G` and
//! `Q` (`P, 3P, .., 15P`) that are computed when the key is imported, never per request.

use std::sync::OnceLock;

/// A 256-bit number, little-endian 32-bit limbs (the constants below are written low limb
/// first).
type Limbs = [u32; 8];

/// A modulus with its Montgomery constants.
struct Modulus {
    m: Limbs,
    /// `-m^-1 mod 2^32`.
    m0: u32,
    /// `R^2 mod m`, `R = 2^256`.
    r2: Limbs,
}

struct Curve {
    p: Modulus,
    n: Modulus,
    /// `b` in Montgomery form mod p.
    b: Limbs,
    /// `3` in Montgomery form mod p (for `-3x`).
    three: Limbs,
    /// Odd multiples of the generator, affine, Montgomery form.
    g_table: [Affine; 8],
}

/// An affine point (Montgomery form coordinates).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Affine {
    x: Limbs,
    y: Limbs,
}

/// A Jacobian point `(X/Z^2, Y/Z^3)`; `Z = 0` is the point at infinity.
#[derive(Clone, Copy)]
struct Jacobian {
    x: Limbs,
    y: Limbs,
    z: Limbs,
}

const P: Limbs = [
    0xffff_ffff,
    0xffff_ffff,
    0xffff_ffff,
    0,
    0,
    0,
    0x0000_0001,
    0xffff_ffff,
];
const N: Limbs = [
    0xfc63_2551,
    0xf3b9_cac2,
    0xa717_9e84,
    0xbce6_faad,
    0xffff_ffff,
    0xffff_ffff,
    0,
    0xffff_ffff,
];
const B: Limbs = [
    0x27d2_604b,
    0x3bce_3c3e,
    0xcc53_b0f6,
    0x651d_06b0,
    0x7698_86bc,
    0xb3eb_bd55,
    0xaa3a_93e7,
    0x5ac6_35d8,
];
const GX: Limbs = [
    0xd898_c296,
    0xf4a1_3945,
    0x2deb_33a0,
    0x7703_7d81,
    0x63a4_40f2,
    0xf8bc_e6e5,
    0xe12c_4247,
    0x6b17_d1f2,
];
const GY: Limbs = [
    0x37bf_51f5,
    0xcbb6_4068,
    0x6b31_5ece,
    0x2bce_3357,
    0x7c0f_9e16,
    0x8ee7_eb4a,
    0xfe1a_7f9b,
    0x4fe3_42e2,
];

fn curve() -> &'static Curve {
    static CURVE: OnceLock<Curve> = OnceLock::new();
    CURVE.get_or_init(|| {
        let p = Modulus::new(P);
        let n = Modulus::new(N);
        let b = p.to_mont(&B);
        let three = p.to_mont(&small(3));
        let g = Affine {
            x: p.to_mont(&GX),
            y: p.to_mont(&GY),
        };
        let mut curve = Curve {
            p,
            n,
            b,
            three,
            g_table: [g; 8],
        };
        curve.g_table = curve.odd_multiples(&g);
        curve
    })
}

fn small(v: u32) -> Limbs {
    let mut out = [0u32; 8];
    if let Some(l) = out.first_mut() {
        *l = v;
    }
    out
}

fn is_zero(a: &Limbs) -> bool {
    a.iter().all(|l| *l == 0)
}

/// `a < b`.
fn less(a: &Limbs, b: &Limbs) -> bool {
    a.iter().rev().cmp(b.iter().rev()) == std::cmp::Ordering::Less
}

/// `a + b` with the carry out.
fn add_limbs(a: &Limbs, b: &Limbs) -> (Limbs, u32) {
    let mut out = [0u32; 8];
    let mut carry = 0u64;
    for ((o, x), y) in out.iter_mut().zip(a).zip(b) {
        let v = u64::from(*x) + u64::from(*y) + carry;
        *o = v as u32;
        carry = v >> 32;
    }
    (out, carry as u32)
}

/// `a - b` with the borrow out.
fn sub_limbs(a: &Limbs, b: &Limbs) -> (Limbs, u32) {
    let mut out = [0u32; 8];
    let mut borrow = 0u64;
    for ((o, x), y) in out.iter_mut().zip(a).zip(b) {
        let v = u64::from(*x)
            .wrapping_sub(u64::from(*y))
            .wrapping_sub(borrow);
        *o = v as u32;
        borrow = (v >> 63) & 1;
    }
    (out, borrow as u32)
}

fn from_be_bytes(bytes: &[u8]) -> Option<Limbs> {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    let digits = bytes.get(first..)?;
    if digits.len() > 32 {
        return None;
    }
    let mut out = [0u32; 8];
    for (limb, chunk) in out.iter_mut().zip(digits.rchunks(4)) {
        *limb = chunk.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b));
    }
    Some(out)
}

impl Modulus {
    fn new(m: Limbs) -> Modulus {
        let low = m.first().copied().unwrap_or(1);
        let mut inv = low;
        for _ in 0..5 {
            inv = inv.wrapping_mul(2u32.wrapping_sub(low.wrapping_mul(inv)));
        }
        let mut modulus = Modulus {
            m,
            m0: inv.wrapping_neg(),
            r2: [0; 8],
        };
        // 2^512 mod m by doubling from 1.
        let mut x = small(1);
        for _ in 0..512 {
            x = modulus.add(&x, &x);
        }
        modulus.r2 = x;
        modulus
    }

    /// `a + b mod m` for `a, b < m`.
    fn add(&self, a: &Limbs, b: &Limbs) -> Limbs {
        let (sum, carry) = add_limbs(a, b);
        if carry != 0 || !less(&sum, &self.m) {
            sub_limbs(&sum, &self.m).0
        } else {
            sum
        }
    }

    /// `a - b mod m` for `a, b < m`.
    fn sub(&self, a: &Limbs, b: &Limbs) -> Limbs {
        let (diff, borrow) = sub_limbs(a, b);
        if borrow != 0 {
            add_limbs(&diff, &self.m).0
        } else {
            diff
        }
    }

    /// Montgomery product `a b / R mod m` for `a, b < m` (CIOS: one reduction step after
    /// each row of the product).
    fn mul(&self, a: &Limbs, b: &Limbs) -> Limbs {
        let mut t = [0u32; 10];
        let m_low = u64::from(self.m.first().copied().unwrap_or(0));
        for &ai in a {
            let ai = u64::from(ai);
            let mut carry = 0u64;
            for (tj, &bj) in t.iter_mut().zip(b) {
                let v = u64::from(*tj) + ai * u64::from(bj) + carry;
                *tj = v as u32;
                carry = v >> 32;
            }
            let [.., t8, t9] = &mut t;
            let v = u64::from(*t8) + carry;
            *t8 = v as u32;
            *t9 = (v >> 32) as u32;
            let t0 = t.first().copied().unwrap_or(0);
            let m = u64::from(t0.wrapping_mul(self.m0));
            let mut carry = (u64::from(t0) + m * m_low) >> 32;
            for j in 1..8 {
                let (Some(&tj), Some(&mj)) = (t.get(j), self.m.get(j)) else {
                    break;
                };
                let v = u64::from(tj) + m * u64::from(mj) + carry;
                if let Some(prev) = t.get_mut(j - 1) {
                    *prev = v as u32;
                }
                carry = v >> 32;
            }
            let [.., t7, t8, t9] = &mut t;
            let v = u64::from(*t8) + carry;
            *t7 = v as u32;
            *t8 = *t9 + (v >> 32) as u32;
            *t9 = 0;
        }
        let mut out = [0u32; 8];
        out.iter_mut().zip(&t).for_each(|(o, v)| *o = *v);
        if t.get(8).is_some_and(|v| *v != 0) || !less(&out, &self.m) {
            out = sub_limbs(&out, &self.m).0;
        }
        out
    }

    fn sqr(&self, a: &Limbs) -> Limbs {
        self.mul(a, a)
    }

    fn to_mont(&self, a: &Limbs) -> Limbs {
        self.mul(a, &self.r2)
    }

    /// `a^(m-2)` (the inverse for prime m, 0 for 0), `a` in Montgomery form.
    fn invert(&self, a: &Limbs) -> Limbs {
        let exponent = sub_limbs(&self.m, &small(2)).0;
        let mut acc = self.to_mont(&small(1));
        for limb in exponent.iter().rev() {
            for bit in (0..32).rev() {
                acc = self.sqr(&acc);
                if (limb >> bit) & 1 == 1 {
                    acc = self.mul(&acc, a);
                }
            }
        }
        acc
    }
}

impl Curve {
    fn infinity(&self) -> Jacobian {
        Jacobian {
            x: self.p.to_mont(&small(1)),
            y: self.p.to_mont(&small(1)),
            z: [0; 8],
        }
    }

    fn double(&self, a: &Jacobian) -> Jacobian {
        let p = &self.p;
        if is_zero(&a.z) {
            return *a;
        }
        // dbl-2001-b (a = -3)
        let delta = p.sqr(&a.z);
        let gamma = p.sqr(&a.y);
        let beta = p.mul(&a.x, &gamma);
        let t = p.mul(&p.sub(&a.x, &delta), &p.add(&a.x, &delta));
        let alpha = p.mul(&self.three, &t);
        let beta4 = p.add(&p.add(&beta, &beta), &p.add(&beta, &beta));
        let beta8 = p.add(&beta4, &beta4);
        let x = p.sub(&p.sqr(&alpha), &beta8);
        let yz = p.add(&a.y, &a.z);
        let z = p.sub(&p.sub(&p.sqr(&yz), &gamma), &delta);
        let gamma2 = p.sqr(&gamma);
        let gamma8 = {
            let g2 = p.add(&gamma2, &gamma2);
            let g4 = p.add(&g2, &g2);
            p.add(&g4, &g4)
        };
        let y = p.sub(&p.mul(&alpha, &p.sub(&beta4, &x)), &gamma8);
        Jacobian { x, y, z }
    }

    /// `a + b` for an affine `b` (never infinity), with the doubling and inverse cases.
    fn add_affine(&self, a: &Jacobian, b: &Affine) -> Jacobian {
        let p = &self.p;
        if is_zero(&a.z) {
            return Jacobian {
                x: b.x,
                y: b.y,
                z: p.to_mont(&small(1)),
            };
        }
        let z1z1 = p.sqr(&a.z);
        let u2 = p.mul(&b.x, &z1z1);
        let s2 = p.mul(&b.y, &p.mul(&a.z, &z1z1));
        let h = p.sub(&u2, &a.x);
        let r = p.sub(&s2, &a.y);
        if is_zero(&h) {
            return if is_zero(&r) {
                self.double(a)
            } else {
                self.infinity()
            };
        }
        let hh = p.sqr(&h);
        let hhh = p.mul(&h, &hh);
        let v = p.mul(&a.x, &hh);
        let x = p.sub(&p.sub(&p.sqr(&r), &hhh), &p.add(&v, &v));
        let y = p.sub(&p.mul(&r, &p.sub(&v, &x)), &p.mul(&a.y, &hhh));
        let z = p.mul(&a.z, &h);
        Jacobian { x, y, z }
    }

    fn to_affine(&self, a: &Jacobian) -> Option<Affine> {
        if is_zero(&a.z) {
            return None;
        }
        let p = &self.p;
        let zi = p.invert(&a.z);
        let zi2 = p.sqr(&zi);
        Some(Affine {
            x: p.mul(&a.x, &zi2),
            y: p.mul(&a.y, &p.mul(&zi2, &zi)),
        })
    }

    /// `P, 3P, 5P, .., 15P`, affine.
    fn odd_multiples(&self, point: &Affine) -> [Affine; 8] {
        let mut table = [*point; 8];
        let one = self.p.to_mont(&small(1));
        let start = Jacobian {
            x: point.x,
            y: point.y,
            z: one,
        };
        let Some(twice) = self.to_affine(&self.double(&start)) else {
            return table;
        };
        let mut acc = start;
        for slot in table.iter_mut().skip(1) {
            acc = self.add_affine(&acc, &twice);
            if let Some(a) = self.to_affine(&acc) {
                *slot = a;
            }
        }
        table
    }

    fn neg(&self, a: &Affine) -> Affine {
        Affine {
            x: a.x,
            y: self.p.sub(&[0; 8], &a.y),
        }
    }
}

/// Width-5 NAF digits of a 256-bit scalar, least significant first (odd digits in -15..=15).
fn wnaf(k: &Limbs) -> [i8; 257] {
    let mut digits = [0i8; 257];
    let mut k = *k;
    let mut extra = 0u32; // a 257th bit from adding back a negative digit
    for d in digits.iter_mut() {
        if is_zero(&k) && extra == 0 {
            break;
        }
        let low = k.first().copied().unwrap_or(0);
        if low & 1 == 1 {
            let mut v = (low & 31) as i32;
            if v > 16 {
                v -= 32;
            }
            *d = v as i8;
            if v > 0 {
                k = sub_limbs(&k, &small(v as u32)).0;
            } else {
                let (sum, carry) = add_limbs(&k, &small((-v) as u32));
                k = sum;
                extra += carry;
            }
        }
        // k >>= 1, taking in the extra top bit
        let mut top = extra & 1;
        extra >>= 1;
        for limb in k.iter_mut().rev() {
            let low_bit = *limb & 1;
            *limb = (*limb >> 1) | (top << 31);
            top = low_bit;
        }
    }
    digits
}

/// An imported P-256 public key with its table of odd multiples.
#[derive(Clone, PartialEq, Eq)]
pub struct P256PublicKey {
    table: Box<[Affine; 8]>,
}

impl std::fmt::Debug for P256PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("P256PublicKey")
    }
}

impl P256PublicKey {
    /// Imports the affine point `(x, y)` (big-endian, any length), or `None` when a coordinate
    /// is not below p or the point is not on the curve.
    pub fn new(x: &[u8], y: &[u8]) -> Option<P256PublicKey> {
        let c = curve();
        let (x, y) = (from_be_bytes(x)?, from_be_bytes(y)?);
        if !less(&x, &P) || !less(&y, &P) {
            return None;
        }
        let p = &c.p;
        let point = Affine {
            x: p.to_mont(&x),
            y: p.to_mont(&y),
        };
        // y^2 = x^3 - 3x + b
        let rhs = p.add(
            &p.sub(
                &p.mul(&p.sqr(&point.x), &point.x),
                &p.mul(&c.three, &point.x),
            ),
            &c.b,
        );
        if p.sqr(&point.y) != rhs {
            return None;
        }
        Some(P256PublicKey {
            table: Box::new(c.odd_multiples(&point)),
        })
    }

    /// Whether `(r, s)` (big-endian, any length) signs the message whose hash is `digest`.
    pub fn verify(&self, digest: &[u8], r: &[u8], s: &[u8]) -> bool {
        let c = curve();
        let n = &c.n;
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
            z = sub_limbs(&z, &N).0;
        }
        let w = n.invert(&n.to_mont(&s));
        // mul(a_mont, b) = a * b: the products leave Montgomery form.
        let u1 = n.mul(&w, &z);
        let u2 = n.mul(&w, &r);
        let (d1, d2) = (wnaf(&u1), wnaf(&u2));
        let mut acc = c.infinity();
        for i in (0..257).rev() {
            acc = c.double(&acc);
            for (digits, table) in [(&d1, &c.g_table), (&d2, &*self.table)] {
                let d = digits.get(i).copied().unwrap_or(0);
                if d == 0 {
                    continue;
                }
                let Some(point) = table.get((d.unsigned_abs() / 2) as usize) else {
                    return false;
                };
                acc = if d > 0 {
                    c.add_affine(&acc, point)
                } else {
                    c.add_affine(&acc, &c.neg(point))
                };
            }
        }
        if is_zero(&acc.z) {
            return false;
        }
        let p = &c.p;
        let zz = p.sqr(&acc.z);
        if p.mul(&p.to_mont(&r), &zz) == acc.x {
            return true;
        }
        // x mod n == r also when x = r + n < p.
        let (rn, carry) = add_limbs(&r, &N);
        carry == 0 && less(&rn, &P) && p.mul(&p.to_mont(&rn), &zz) == acc.x
    }
}
