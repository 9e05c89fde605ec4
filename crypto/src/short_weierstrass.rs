//! The group law of a short Weierstrass curve `y^2 = x^3 - 3x + b` (the NIST prime curves),
//! written once over a field trait, and ECDSA verification's double-scalar multiplication on it:
//! what `p256_verify` (P-256, this crate) and `meshguard-crypto-p384`'s `p384_verify` (P-384)
//! share. Each curve keeps its own field, scalar arithmetic and constants and implements
//! [`Field`]; the code here is generic over it, so it is compiled (monomorphized) in the crate
//! that instantiates it, at that crate's opt-level: P-256's at 2, P-384's at "s".
//!
//! Mirrors BoringSSL's `ECDSA_do_verify` steps as Envoy 1.40 `jwt_authn` calls them (the curve
//! modules list the checks on keys and signatures):
//!
//! * the key check of `EC_KEY_set_public_key_affine_coordinates`, `y^2 = x^3 - 3x + b`
//!   ([`key_tables`], which also builds the key's tables);
//! * `R = u1 G + u2 Q`, refused at infinity ([`r_matches`]), in Jacobian coordinates with the
//!   `a = -3` doubling (dbl-2001-b) and mixed addition (madd-2007-bl, with its doubling and
//!   infinity cases) of the Explicit-Formulas Database;
//! * `x(R) mod n == r` without an inversion, as BoringSSL's `ec_cmp_x_coordinate`: `X == r Z^2`,
//!   or `X == (r + n) Z^2` when `r + n < p` ([`r_matches`]).
//!
//! `R` comes from one pass of `CHUNK_BITS` doublings: each scalar is cut into [`CHUNKS`] chunks,
//! chunk `j` of `u` multiplying `2^(CHUNK_BITS j) P`, and every chunk is written in width-w NAF.
//! The affine odd multiples of each `2^(CHUNK_BITS j) P` come from [`chunk_tables`]: width
//! [`G_WIDTH`] for the generator (built once per module instance), [`Q_WIDTH`] for a key (built
//! when it is imported). Everything is public data, so nothing runs in constant time.

/// The coordinate field of a curve. The methods are the curve's own field operations, inlined
/// into the generic code so that it compiles as if it had been written for that field.
pub trait Field {
    /// A field element, in whatever representation the curve keeps (plain or Montgomery form),
    /// fully reduced, so that equal elements compare equal.
    type Element: Copy + PartialEq;
    const ZERO: Self::Element;
    /// 1 in the representation of [`Field::Element`].
    const ONE: Self::Element;
    fn mul(a: &Self::Element, b: &Self::Element) -> Self::Element;
    fn sqr(a: &Self::Element) -> Self::Element;
    fn add(a: &Self::Element, b: &Self::Element) -> Self::Element;
    fn sub(a: &Self::Element, b: &Self::Element) -> Self::Element;
    fn is_zero(a: &Self::Element) -> bool;
    /// `a^-1` (0 for 0).
    fn invert(a: &Self::Element) -> Self::Element;
}

/// The scalars are cut into this many chunks.
pub const CHUNKS: usize = 4;
/// NAF width for the generator's tables (`2^(w-2)` odd multiples per chunk).
pub const G_WIDTH: u32 = 7;
/// NAF width for a key's tables.
pub const Q_WIDTH: u32 = 6;

/// An affine point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Affine<E> {
    pub x: E,
    pub y: E,
}

/// A Jacobian point `(X/Z^2, Y/Z^3)`; `Z = 0` is the point at infinity.
#[derive(Clone, Copy, Debug)]
pub struct Jacobian<E> {
    pub x: E,
    pub y: E,
    pub z: E,
}

/// The point at infinity.
#[inline(always)]
fn infinity<F: Field>() -> Jacobian<F::Element> {
    Jacobian {
        x: F::ONE,
        y: F::ONE,
        z: F::ZERO,
    }
}

#[inline(always)]
fn from_affine<F: Field>(a: &Affine<F::Element>) -> Jacobian<F::Element> {
    Jacobian {
        x: a.x,
        y: a.y,
        z: F::ONE,
    }
}

/// Whether `(x, y)` satisfies `y^2 = x^3 - 3x + b`.
fn is_on_curve<F: Field>(x: &F::Element, y: &F::Element, b: &F::Element) -> bool {
    let x3 = F::mul(&F::sqr(x), x);
    let x2 = F::add(x, x);
    let rhs = F::add(&F::sub(&F::sub(&x3, &x2), x), b);
    F::sqr(y) == rhs
}

/// The [`chunk_tables`] (width [`Q_WIDTH`]) of a key whose coordinates are below p, or `None`
/// when it is not on the curve `y^2 = x^3 - 3x + b`. `g_tables` gives the generator's (built on
/// first use; empty if that failed, which refuses the key): they are built with the first key,
/// at JWKS import, not in a request.
pub fn key_tables<F: Field>(
    key: &Affine<F::Element>,
    b: &F::Element,
    g_tables: fn() -> &'static [Affine<F::Element>],
    chunk_bits: u32,
) -> Option<Vec<Affine<F::Element>>> {
    if !is_on_curve::<F>(&key.x, &key.y, b) || g_tables().is_empty() {
        return None;
    }
    chunk_tables::<F>(key, Q_WIDTH, chunk_bits)
}

/// `2a` (dbl-2001-b, `a = -3`: 3 products, 5 squares).
fn double<F: Field>(a: &Jacobian<F::Element>) -> Jacobian<F::Element> {
    if F::is_zero(&a.z) {
        return *a;
    }
    let delta = F::sqr(&a.z);
    let gamma = F::sqr(&a.y);
    let beta = F::mul(&a.x, &gamma);
    let t = F::mul(&F::sub(&a.x, &delta), &F::add(&a.x, &delta));
    let alpha = F::add(&F::add(&t, &t), &t);
    let beta2 = F::add(&beta, &beta);
    let beta4 = F::add(&beta2, &beta2);
    let beta8 = F::add(&beta4, &beta4);
    let x = F::sub(&F::sqr(&alpha), &beta8);
    let yz = F::add(&a.y, &a.z);
    let z = F::sub(&F::sub(&F::sqr(&yz), &gamma), &delta);
    let gamma2 = F::sqr(&gamma);
    let g2 = F::add(&gamma2, &gamma2);
    let g4 = F::add(&g2, &g2);
    let gamma8 = F::add(&g4, &g4);
    let y = F::sub(&F::mul(&alpha, &F::sub(&beta4, &x)), &gamma8);
    Jacobian { x, y, z }
}

/// `a + b` for an affine `b` (madd-2007-bl: 7 products, 4 squares), with the cases of `a`
/// at infinity, `a = b` (doubling) and `a = -b` (infinity).
fn add_affine<F: Field>(a: &Jacobian<F::Element>, b: &Affine<F::Element>) -> Jacobian<F::Element> {
    if F::is_zero(&a.z) {
        return from_affine::<F>(b);
    }
    let z1z1 = F::sqr(&a.z);
    let u2 = F::mul(&b.x, &z1z1);
    let s2 = F::mul(&b.y, &F::mul(&a.z, &z1z1));
    let h = F::sub(&u2, &a.x);
    let s2_y1 = F::sub(&s2, &a.y);
    if F::is_zero(&h) {
        return if F::is_zero(&s2_y1) {
            double::<F>(a)
        } else {
            infinity::<F>()
        };
    }
    let hh = F::sqr(&h);
    let hh2 = F::add(&hh, &hh);
    let i = F::add(&hh2, &hh2);
    let j = F::mul(&h, &i);
    let r = F::add(&s2_y1, &s2_y1);
    let v = F::mul(&a.x, &i);
    let x = F::sub(&F::sub(&F::sqr(&r), &j), &F::add(&v, &v));
    let y1j = F::mul(&a.y, &j);
    let y = F::sub(&F::mul(&r, &F::sub(&v, &x)), &F::add(&y1j, &y1j));
    let zh = F::mul(&a.z, &h);
    let z = F::add(&zh, &zh);
    Jacobian { x, y, z }
}

/// The affine forms of `points` (none at infinity) with one inversion; `None` if one is.
fn batch_to_affine<F: Field>(points: &[Jacobian<F::Element>]) -> Option<Vec<Affine<F::Element>>> {
    let mut prefix = Vec::with_capacity(points.len());
    let mut acc = F::ONE;
    for point in points {
        prefix.push(acc);
        acc = F::mul(&acc, &point.z);
    }
    if F::is_zero(&acc) {
        return None;
    }
    // `inv` is the inverse of the product of the Z's not yet visited (walking backwards).
    let mut inv = F::invert(&acc);
    let blank = Affine {
        x: F::ZERO,
        y: F::ZERO,
    };
    let mut out = vec![blank; points.len()];
    for ((point, before), slot) in points.iter().zip(&prefix).zip(out.iter_mut()).rev() {
        let zi = F::mul(&inv, before);
        inv = F::mul(&inv, &point.z);
        let zi2 = F::sqr(&zi);
        *slot = Affine {
            x: F::mul(&point.x, &zi2),
            y: F::mul(&point.y, &F::mul(&zi2, &zi)),
        };
    }
    Some(out)
}

/// The affine form of one point not at infinity.
fn to_affine<F: Field>(point: &Jacobian<F::Element>) -> Option<Affine<F::Element>> {
    batch_to_affine::<F>(&[*point])?.into_iter().next()
}

/// For each chunk `j`, the odd multiples `P_j, 3 P_j, .., (2^(w-1) - 1) P_j` of
/// `P_j = 2^(chunk_bits j) P`, affine, chunk after chunk; `None` if one is at infinity.
pub fn chunk_tables<F: Field>(
    point: &Affine<F::Element>,
    width: u32,
    chunk_bits: u32,
) -> Option<Vec<Affine<F::Element>>> {
    let per_chunk = 1usize << (width - 2);
    let mut jacobian = Vec::with_capacity(CHUNKS * per_chunk);
    let mut base = *point;
    for chunk in 0..CHUNKS {
        if chunk > 0 {
            let mut b = from_affine::<F>(&base);
            for _ in 0..chunk_bits {
                b = double::<F>(&b);
            }
            base = to_affine::<F>(&b)?;
        }
        let twice = to_affine::<F>(&double::<F>(&from_affine::<F>(&base)))?;
        let mut acc = from_affine::<F>(&base);
        jacobian.push(acc);
        for _ in 1..per_chunk {
            acc = add_affine::<F>(&acc, &twice);
            jacobian.push(acc);
        }
    }
    batch_to_affine::<F>(&jacobian)
}

/// Width-`w` NAF digits of a chunk (`value < 2^(DIGITS - 1)`), least significant first.
fn wnaf<const DIGITS: usize>(value: u128, width: u32) -> [i8; DIGITS] {
    let mut digits = [0i8; DIGITS];
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

/// ECDSA's last step: whether `R = u1 G + u2 Q` is not at infinity and `x(R) mod n == r`, from
/// the chunks of `u1` and `u2` (least significant first, each below `2^(DIGITS - 1)`: `DIGITS`
/// is the chunk size plus one), the [`chunk_tables`] of `G` (width [`G_WIDTH`]) and of `Q`
/// (width [`Q_WIDTH`]), `r` as a field element and `r_plus_n` as `x_matches` takes it.
pub fn r_matches<F: Field, const DIGITS: usize>(
    g_tables: &[Affine<F::Element>],
    q_tables: &[Affine<F::Element>],
    u1: [u128; CHUNKS],
    u2: [u128; CHUNKS],
    r: &F::Element,
    r_plus_n: impl FnOnce() -> Option<F::Element>,
) -> bool {
    match multiply::<F, DIGITS>(g_tables, q_tables, u1, u2) {
        Some(point) => x_matches::<F>(&point, r, r_plus_n),
        None => false,
    }
}

/// `u1 G + u2 Q` in Jacobian form, `None` at infinity (the arguments as [`r_matches`]'s).
fn multiply<F: Field, const DIGITS: usize>(
    g_tables: &[Affine<F::Element>],
    q_tables: &[Affine<F::Element>],
    u1: [u128; CHUNKS],
    u2: [u128; CHUNKS],
) -> Option<Jacobian<F::Element>> {
    let per_g = 1usize << (G_WIDTH - 2);
    let per_q = 1usize << (Q_WIDTH - 2);
    let g_digits = u1.map(|c| wnaf::<DIGITS>(c, G_WIDTH));
    let q_digits = u2.map(|c| wnaf::<DIGITS>(c, Q_WIDTH));
    let mut acc = infinity::<F>();
    for i in (0..DIGITS).rev() {
        acc = double::<F>(&acc);
        for (chunk, digits) in g_digits.iter().enumerate() {
            acc = add_digit::<F>(&acc, digits.get(i).copied(), g_tables, chunk * per_g)?;
        }
        for (chunk, digits) in q_digits.iter().enumerate() {
            acc = add_digit::<F>(&acc, digits.get(i).copied(), q_tables, chunk * per_q)?;
        }
    }
    if F::is_zero(&acc.z) {
        None
    } else {
        Some(acc)
    }
}

/// `acc + d P` for a NAF digit `d` whose odd multiple `|d| P` is `table[offset + |d|/2]`.
fn add_digit<F: Field>(
    acc: &Jacobian<F::Element>,
    digit: Option<i8>,
    table: &[Affine<F::Element>],
    offset: usize,
) -> Option<Jacobian<F::Element>> {
    let d = digit?;
    if d == 0 {
        return Some(*acc);
    }
    let point = table.get(offset + usize::from(d.unsigned_abs() / 2))?;
    Some(if d > 0 {
        add_affine::<F>(acc, point)
    } else {
        add_affine::<F>(
            acc,
            &Affine {
                x: point.x,
                y: F::sub(&F::ZERO, &point.y),
            },
        )
    })
}

/// Whether `x(R) mod n` is `r`, for `R` not at infinity, without an inversion: `X == r Z^2`,
/// else `X == (r + n) Z^2` with `r_plus_n` giving `r + n` as a field element when `r + n < p`
/// (`None` otherwise; only asked when the first comparison fails).
fn x_matches<F: Field>(
    point: &Jacobian<F::Element>,
    r: &F::Element,
    r_plus_n: impl FnOnce() -> Option<F::Element>,
) -> bool {
    let zz = F::sqr(&point.z);
    if F::mul(r, &zz) == point.x {
        return true;
    }
    r_plus_n().is_some_and(|rn| F::mul(&rn, &zz) == point.x)
}
