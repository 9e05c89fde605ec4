//! The differential tests of meshguard's ECDSA verification against RustCrypto (what meshguard
//! used before), written once for both curves: `crypto/tests/p256_verify.rs` (P-256 against the
//! `p256` crate) and `crypto-p384/tests/p384_verify.rs` (P-384 against `p384`) include this file
//! by path, with their curve's [`Curve`] (`support/p256.rs`, `support/p384.rs`, which
//! `core/tests/jwt_es384.rs` also includes for its ES384 tokens). Mirrors BoringSSL's
//! `ECDSA_do_verify` and `EC_KEY_set_public_key_affine_coordinates` as Envoy 1.40 `jwt_authn`
//! calls them, which the reference crates agree with on every case here: each check compares
//! ours with the reference and with the expected outcome.
#![allow(dead_code)]

use std::any::{Any, TypeId};
use std::cell::RefCell;
use std::collections::HashMap;
use std::ops::{Add, Mul, Neg, Sub};

/// A curve, our verification on it and the RustCrypto reference's.
pub trait Curve: 'static {
    /// Bytes of a coordinate or scalar.
    const WIDTH: usize;
    /// The group order n, big-endian.
    const N: &'static [u8];
    /// The field prime p, big-endian.
    const P: &'static [u8];
    type Scalar: Copy
        + Add<Output = Self::Scalar>
        + Mul<Output = Self::Scalar>
        + Neg<Output = Self::Scalar>;
    type Point: Copy
        + Add<Output = Self::Point>
        + Sub<Output = Self::Point>
        + Neg<Output = Self::Point>
        + Mul<Self::Scalar, Output = Self::Point>;
    type Ours: Clone + 'static;
    type Theirs: Clone + 'static;
    fn generator() -> Self::Point;
    fn scalar(n: u64) -> Self::Scalar;
    fn invert(s: &Self::Scalar) -> Self::Scalar;
    /// A big-endian number of `WIDTH` bytes below n.
    fn scalar_from_bytes(b: &[u8]) -> Option<Self::Scalar>;
    fn scalar_bytes(s: &Self::Scalar) -> Vec<u8>;
    fn coordinates(point: &Self::Point) -> (Vec<u8>, Vec<u8>);
    /// The point of abscissa `x` (`WIDTH` bytes) with an even `y`, if there is one.
    fn point_with_x(x: &[u8]) -> Option<Self::Point>;
    fn ours(x: &[u8], y: &[u8]) -> Option<Self::Ours>;
    fn ours_verify(key: &Self::Ours, digest: &[u8], r: &[u8], s: &[u8]) -> bool;
    fn reference_key(x: &[u8], y: &[u8]) -> Option<Self::Theirs>;
    /// The reference on `r || s`, each `WIDTH` bytes.
    fn reference_verify(key: &Self::Theirs, digest: &[u8], rs: &[u8]) -> bool;
    /// `keys` generated key pairs (jwt-simple), each with `messages` signed tokens:
    /// `(x, y, tokens)`.
    fn signed_tokens(keys: usize, messages: usize) -> Vec<(Vec<u8>, Vec<u8>, Vec<String>)>;
    /// The digest of the curve's JWT algorithm (ES256: SHA-256, ES384: SHA-384).
    fn digest(signed: &[u8]) -> Vec<u8>;
    /// A longer digest (ES256: SHA-384, ES384: SHA-512), which both cut to `WIDTH` bytes.
    fn longer_digest(signed: &[u8]) -> Vec<u8>;
}

/// Declares `$name`, the [`Curve`] of the RustCrypto crate `$rc` (the reference) and of our key
/// type `$ours`, with jwt-simple's `$pair` generating keys and tokens signed over the digest
/// `$digest` (`$longer` the longer one), `$width`-byte coordinates, order `$n` and prime `$p`.
macro_rules! rustcrypto_curve {
    ($name:ident, $rc:ident, $ours:ty, $pair:ty, $digest:path, $longer:path, $width:expr,
     $n:expr, $p:expr) => {
        pub struct $name;

        const _: () = {
            use $rc::ecdsa::signature::hazmat::PrehashVerifier;
            use $rc::elliptic_curve::point::AffineCoordinates;
            use $rc::elliptic_curve::sec1::FromSec1Point;
            use $rc::elliptic_curve::PrimeField;

            impl $crate::support::Curve for $name {
                const WIDTH: usize = $width;
                const N: &'static [u8] = &$n;
                const P: &'static [u8] = &$p;
                type Scalar = $rc::Scalar;
                type Point = $rc::ProjectivePoint;
                type Ours = $ours;
                type Theirs = $rc::ecdsa::VerifyingKey;

                fn generator() -> $rc::ProjectivePoint {
                    $rc::ProjectivePoint::GENERATOR
                }
                fn scalar(n: u64) -> $rc::Scalar {
                    $rc::Scalar::from(n)
                }
                fn invert(s: &$rc::Scalar) -> $rc::Scalar {
                    s.invert().unwrap()
                }
                fn scalar_from_bytes(b: &[u8]) -> Option<$rc::Scalar> {
                    $rc::Scalar::from_repr(b.try_into().ok()?).into_option()
                }
                fn scalar_bytes(s: &$rc::Scalar) -> Vec<u8> {
                    s.to_repr().to_vec()
                }
                fn coordinates(point: &$rc::ProjectivePoint) -> (Vec<u8>, Vec<u8>) {
                    let a = point.to_affine();
                    (a.x().to_vec(), a.y().to_vec())
                }
                fn point_with_x(x: &[u8]) -> Option<$rc::ProjectivePoint> {
                    $rc::AffinePoint::from_sec1_bytes(&[&[2u8][..], x].concat())
                        .ok()
                        .map($rc::ProjectivePoint::from)
                }
                fn ours(x: &[u8], y: &[u8]) -> Option<$ours> {
                    <$ours>::new(x, y)
                }
                fn ours_verify(key: &$ours, digest: &[u8], r: &[u8], s: &[u8]) -> bool {
                    key.verify(digest, r, s)
                }
                fn reference_key(x: &[u8], y: &[u8]) -> Option<$rc::ecdsa::VerifyingKey> {
                    $rc::ecdsa::VerifyingKey::from_sec1_bytes(&[&[4u8][..], x, y].concat()).ok()
                }
                fn reference_verify(
                    key: &$rc::ecdsa::VerifyingKey,
                    digest: &[u8],
                    rs: &[u8],
                ) -> bool {
                    $rc::ecdsa::Signature::from_slice(rs)
                        .is_ok_and(|sig| key.verify_prehash(digest, &sig).is_ok())
                }
                fn signed_tokens(
                    keys: usize,
                    messages: usize,
                ) -> Vec<(Vec<u8>, Vec<u8>, Vec<String>)> {
                    use jwt_simple::prelude::*;
                    (0..keys)
                        .map(|k| {
                            let kp = <$pair>::generate();
                            let point = kp.public_key().public_key().to_bytes_uncompressed();
                            let tokens = (0..messages)
                                .map(|m| {
                                    let claims = Claims::create(Duration::from_hours(1))
                                        .with_subject(format!("{k}-{m}"));
                                    kp.sign(claims).unwrap()
                                })
                                .collect();
                            let w = Self::WIDTH;
                            (point[1..=w].to_vec(), point[w + 1..].to_vec(), tokens)
                        })
                        .collect()
                }
                fn digest(signed: &[u8]) -> Vec<u8> {
                    $digest(signed).to_vec()
                }
                fn longer_digest(signed: &[u8]) -> Vec<u8> {
                    $longer(signed).to_vec()
                }
            }
        };
    };
}
pub(crate) use rustcrypto_curve;

/// (digest, r, s, whether it verifies)
pub type Case = (Vec<u8>, Vec<u8>, Vec<u8>, bool);

/// splitmix64 with a fixed seed: every run checks the same numbers.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// `width` (a multiple of 8) random bytes.
    pub fn bytes(&mut self, width: usize) -> Vec<u8> {
        let mut out = vec![0u8; width];
        for chunk in out.chunks_mut(8) {
            chunk.copy_from_slice(&self.next().to_be_bytes());
        }
        out
    }
    /// A random scalar below 2^(8 WIDTH - 1).
    pub fn scalar<C: Curve>(&mut self) -> C::Scalar {
        let mut b = self.bytes(C::WIDTH);
        b[0] &= 0x7f;
        C::scalar_from_bytes(&b).unwrap()
    }
}

pub fn unb64(s: &str) -> Vec<u8> {
    use jwt_simple::reexports::ct_codecs::{Base64UrlSafeNoPadding, Decoder};
    Base64UrlSafeNoPadding::decode_to_vec(s, None).unwrap()
}

pub fn b64(b: &[u8]) -> String {
    use jwt_simple::reexports::ct_codecs::{Base64UrlSafeNoPadding, Encoder};
    Base64UrlSafeNoPadding::encode_to_string(b).unwrap()
}

/// `a - b` for big-endian numbers of one length with `a >= b`.
pub fn sub(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; a.len()];
    let mut borrow = 0i32;
    for i in (0..a.len()).rev() {
        let v = a[i] as i32 - b[i] as i32 - borrow;
        out[i] = v.rem_euclid(256) as u8;
        borrow = i32::from(v < 0);
    }
    out
}

/// `a + b` for big-endian numbers of one length, one byte longer.
pub fn add(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; a.len() + 1];
    let mut carry = 0u16;
    for i in (0..a.len()).rev() {
        let v = a[i] as u16 + b[i] as u16 + carry;
        out[i + 1] = v as u8;
        carry = v >> 8;
    }
    out[0] = carry as u8;
    out
}

/// A `WIDTH`-byte big-endian number mod n (it is below 2n).
pub fn scalar_reduced<C: Curve>(b: &[u8]) -> C::Scalar {
    C::scalar_from_bytes(b).unwrap_or_else(|| C::scalar_from_bytes(&sub(b, C::N)).unwrap())
}

/// An ECDSA signature `(r, s)` of the prehash `z` by the private key `d` with nonce `k`.
pub fn sign<C: Curve>(d: &C::Scalar, k: &C::Scalar, z: &C::Scalar) -> (C::Scalar, C::Scalar) {
    let (x, _) = C::coordinates(&(C::generator() * *k));
    let r = scalar_reduced::<C>(&x);
    let s = C::invert(k) * (*z + r * *d);
    (r, s)
}

/// Both imports of keys, `(C::Ours, C::Theirs)`, by curve and coordinates.
type Imported = HashMap<(TypeId, Vec<u8>), Box<dyn Any>>;

thread_local! {
    /// The keys checked so far (an import builds tables: import each key once).
    static IMPORTED: RefCell<Imported> = RefCell::new(HashMap::new());
}

/// Checks ours against the reference and the expectation.
pub fn check<C: Curve>(x: &[u8], y: &[u8], case: &Case, label: &str) {
    let (d, r, s, expected) = case;
    let (mine, theirs) = IMPORTED.with_borrow_mut(|keys| {
        keys.entry((TypeId::of::<C>(), [x, y].concat()))
            .or_insert_with(|| {
                Box::new((
                    C::ours(x, y).expect("a valid key"),
                    C::reference_key(x, y).expect("a valid key"),
                ))
            })
            .downcast_ref::<(C::Ours, C::Theirs)>()
            .unwrap()
            .clone()
    });
    let ours = C::ours_verify(&mine, d, r, s);
    let w = C::WIDTH;
    let r_trim = &r[r.len().saturating_sub(w)..];
    let leading_zero = r.len() <= w || r[..r.len() - w].iter().all(|b| *b == 0);
    let reference = leading_zero && r_trim.len() <= w && s.len() <= w && {
        let mut rs = vec![0u8; 2 * w];
        rs[w - r_trim.len()..w].copy_from_slice(r_trim);
        rs[2 * w - s.len()..].copy_from_slice(s);
        C::reference_verify(&theirs, d, &rs)
    };
    assert_eq!(ours, *expected, "{label}: {d:02x?} {r:02x?} {s:02x?}");
    assert_eq!(ours, reference, "{label}: differs from the reference");
}

/// Checks ours against the reference and the expectation, for the key `(x, y)`.
pub fn expect<C: Curve>(key: (&[u8], &[u8]), label: &str, d: &[u8], r: &[u8], s: &[u8], ok: bool) {
    check::<C>(
        key.0,
        key.1,
        &(d.to_vec(), r.to_vec(), s.to_vec(), ok),
        label,
    );
}

/// Generated keys and tokens (jwt-simple): each signature as it is, its other valid `s` (high-S),
/// swapped, emptied, 0, n and above, all ones, a leading zero, a shorter `r`, another digest,
/// single bits flipped in `r`, `s` and the digest, a longer digest. Returns how many cases.
pub fn agrees_on_generated_keys_and_signatures<C: Curve>(keys: usize, messages: usize) -> usize {
    let (w, n) = (C::WIDTH, C::N);
    let mut checked = 0;
    for (k, (x, y, tokens)) in C::signed_tokens(keys, messages).iter().enumerate() {
        for (m, token) in tokens.iter().enumerate() {
            let (signed, sig) = token.rsplit_once('.').unwrap();
            let digest = C::digest(signed.as_bytes());
            let sig = unb64(sig);
            assert_eq!(sig.len(), 2 * w);
            let (r, s) = sig.split_at(w);
            let mut cases: Vec<Case> = vec![
                (digest.clone(), r.to_vec(), s.to_vec(), true),
                (digest.clone(), r.to_vec(), sub(n, s), true),
                (digest.clone(), s.to_vec(), r.to_vec(), false),
                (digest.clone(), vec![0], s.to_vec(), false),
                (digest.clone(), r.to_vec(), vec![], false),
                (digest.clone(), r.to_vec(), vec![0; w], false),
                (digest.clone(), n.to_vec(), s.to_vec(), false),
                (digest.clone(), r.to_vec(), n.to_vec(), false),
                (digest.clone(), add(r, n), s.to_vec(), false),
                (digest.clone(), r.to_vec(), add(s, n), false),
                (digest.clone(), vec![0xff; w], s.to_vec(), false),
                (digest.clone(), r.to_vec(), vec![0xff; w], false),
                (digest.clone(), [&[0u8][..], r].concat(), s.to_vec(), true),
                (digest.clone(), r[..w - 1].to_vec(), s.to_vec(), false),
                (C::digest(b"other"), r.to_vec(), s.to_vec(), false),
            ];
            for bit in [0usize, 7, 100, 255, 383]
                .into_iter()
                .filter(|b| *b < 8 * w)
            {
                let mut bad_r = r.to_vec();
                bad_r[bit / 8] ^= 1 << (bit % 8);
                cases.push((digest.clone(), bad_r, s.to_vec(), false));
                let mut bad_s = s.to_vec();
                bad_s[w - 1 - bit / 8] ^= 1 << (bit % 8);
                cases.push((digest.clone(), r.to_vec(), bad_s, false));
                let mut bad_d = digest.clone();
                bad_d[bit / 8] ^= 1 << (bit % 8);
                cases.push((bad_d, r.to_vec(), s.to_vec(), false));
            }
            // A longer digest: both use its leftmost bits, of which only the first `WIDTH`
            // bytes count.
            let long = C::longer_digest(signed.as_bytes());
            cases.push((long, r.to_vec(), s.to_vec(), false));
            cases.push((
                [&digest[..], &[1u8; 16][..]].concat(),
                r.to_vec(),
                s.to_vec(),
                true,
            ));
            for case in &cases {
                check::<C>(x, y, case, &format!("key {k} msg {m}"));
                checked += 1;
            }
        }
    }
    checked
}

/// `count` random keys, each signing a random digest, one in `every` at or above n (its first
/// `high_bytes` bytes all ones), which is reduced mod n first: the signature, its high-S twin,
/// and a random `r` or `s`.
pub fn agrees_on_many_signatures_and_digests_above_n<C: Curve>(
    count: usize,
    every: usize,
    high_bytes: usize,
) {
    let mut rng = Rng(1);
    for i in 0..count {
        let d = rng.scalar::<C>();
        let (x, y) = C::coordinates(&(C::generator() * d));
        let mut z_bytes = rng.bytes(C::WIDTH);
        if i % every == 0 {
            z_bytes[..high_bytes].fill(0xff);
        }
        let z = scalar_reduced::<C>(&z_bytes);
        let (r, s) = sign::<C>(&d, &rng.scalar::<C>(), &z);
        let (r, s) = (C::scalar_bytes(&r), C::scalar_bytes(&s));
        let key = (&x[..], &y[..]);
        expect::<C>(key, "signed", &z_bytes, &r, &s, true);
        expect::<C>(key, "high-S", &z_bytes, &r, &sub(C::N, &s), true);
        let random = rng.bytes(C::WIDTH);
        expect::<C>(key, "random r", &z_bytes, &random, &s, false);
        expect::<C>(key, "random s", &z_bytes, &r, &random, false);
    }
}

/// `u1 G + u2 Q` adding a point to itself (doubling inside the addition) or to its negation
/// (infinity), for the small multiples `cs` of G; then keys `2^shift G` for the chunk bases
/// `shifts` of the tables, `per_shift` signatures each and one whose scalars are aligned.
pub fn doubles_a_point_added_to_itself_and_refuses_infinity<C: Curve>(
    cs: &[u64],
    shifts: &[u32],
    per_shift: usize,
) {
    // Q = G and u1 = u2 = c: both scalars have the same top NAF digit in the same chunk, so the
    // multiplication adds c G to c G. With Q = -G the sum is the point at infinity.
    let bytes = C::scalar_bytes;
    let g = C::generator();
    for &c in cs {
        let c_scalar = C::scalar(c);
        let r_point = g * (c_scalar + c_scalar);
        let r = scalar_reduced::<C>(&C::coordinates(&r_point).0);
        // u1 = z / s = c and u2 = r / s = c: s = r / c, z = r.
        let s = r * C::invert(&c_scalar);
        let (gx, gy) = C::coordinates(&g);
        let case = (bytes(&r), bytes(&r), bytes(&s), true);
        check::<C>(&gx, &gy, &case, &format!("doubling, c = {c}"));
        let (nx, ny) = C::coordinates(&-g);
        let case = (bytes(&r), bytes(&r), bytes(&s), false);
        check::<C>(&nx, &ny, &case, &format!("infinity, c = {c}"));
    }
    let mut rng = Rng(2);
    for &shift in shifts {
        let mut d = C::scalar(1);
        for _ in 0..shift {
            d = d + d;
        }
        let q = g * d;
        let (qx, qy) = C::coordinates(&q);
        let key = (&qx[..], &qy[..]);
        for _ in 0..per_shift {
            let z = rng.scalar::<C>();
            let (r, s) = sign::<C>(&d, &rng.scalar::<C>(), &z);
            expect::<C>(key, "2^k G key", &bytes(&z), &bytes(&r), &bytes(&s), true);
        }
        // u1 G + u2 Q with u1 = 2^shift u2 in the same positions: R = 2 u1 G.
        let u2 = C::scalar(5);
        let u1 = u2 * d;
        let r = scalar_reduced::<C>(&C::coordinates(&(g * (u1 + u1))).0);
        let s = r * C::invert(&u2);
        let z = u1 * s;
        expect::<C>(key, "aligned", &bytes(&z), &bytes(&r), &bytes(&s), true);
    }
}

/// Points `R` whose x is in `[n, p)` (x = n + 1 .. n + `tries`): x mod n = x - n. With u1 and
/// s arbitrary, Q = (R - u1 G) / u2 with u2 = r / s makes (r, s) a signature of z = u1 s,
/// which verifies, as `-R`'s (n - s) does; `r + n` itself is refused. Returns how many points.
pub fn matches_an_x_coordinate_at_or_above_n_with_r_plus_n<C: Curve>(tries: usize) -> usize {
    let bytes = C::scalar_bytes;
    let mut rng = Rng(3);
    let mut found = 0;
    let mut x = C::N.to_vec();
    for _ in 0..tries {
        let last = C::WIDTH - 1;
        x[last] = x[last].wrapping_add(1);
        let Some(r_point) = C::point_with_x(&x) else {
            continue;
        };
        assert_eq!(C::coordinates(&r_point).0, x);
        let r_bytes = sub(&x, C::N);
        let r = C::scalar_from_bytes(&r_bytes).unwrap();
        let (u1, s) = (rng.scalar::<C>(), rng.scalar::<C>());
        let u2 = r * C::invert(&s);
        let q = (r_point - C::generator() * u1) * C::invert(&u2);
        let (qx, qy) = C::coordinates(&q);
        let key = (&qx[..], &qy[..]);
        let z = u1 * s;
        expect::<C>(key, "x = r + n", &bytes(&z), &r_bytes, &bytes(&s), true);
        let rn = add(&r_bytes, C::N);
        expect::<C>(key, "r = x", &bytes(&z), &rn, &bytes(&s), false);
        check::<C>(&qx, &qy, &(bytes(&z), r_bytes, bytes(&(-s)), true), "-R");
        found += 1;
    }
    found
}

/// The key `(x, y)` (valid) is imported, also with leading zeros; a changed `y`, coordinates of
/// all ones, too long, empty, zero (no affine identity), or not below p (`x + p`, `y + p`, `p`,
/// the same residues) are refused, as BoringSSL and the reference refuse them.
pub fn refuses_keys_off_the_curve_or_out_of_range<C: Curve>(x: &[u8], y: &[u8]) {
    let w = C::WIDTH;
    assert!(C::ours(x, y).is_some());
    assert!(C::ours(&[&[0u8, 0][..], x].concat(), y).is_some());
    let mut bad_y = y.to_vec();
    bad_y[w - 1] ^= 1;
    assert!(C::ours(x, &bad_y).is_none());
    assert!(C::reference_key(x, &bad_y).is_none());
    assert!(C::ours(x, &vec![0xff; w]).is_none());
    assert!(C::ours(&vec![0xff; w + 1], y).is_none());
    assert!(C::ours(&[], &[]).is_none());
    assert!(C::ours(&vec![0; w], &vec![0; w]).is_none());
    assert!(C::reference_key(&vec![0; w], &vec![0; w]).is_none());
    assert!(C::ours(x, &add(y, C::P)).is_none());
    assert!(C::ours(&add(x, C::P), y).is_none());
    assert!(C::ours(C::P, y).is_none());
}
