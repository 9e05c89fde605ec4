//! `p384_verify`: meshguard's verification-only ECDSA P-384 (`authn::p384_verify`) against the
//! `p384` crate (RustCrypto, what meshguard used before).
//!
//! The first byte selects the case:
//! * a fixed key (private keys 1, 2^96, n - 1, and two from a fixed seed; `Q = G` and
//!   `Q = -G` make `u1 G + u2 Q` double inside an addition or reach infinity when `u1 = u2`),
//!   a digest (32, 48 or 64 bytes: SHA-256/384/512), and a signature that is a correct one (possibly high-S, or a deliberate
//!   `u1 = u2` one) with fuzzed edits of `r`, `s` or the digest (byte xor, replacement by
//!   arbitrary bytes, adding n, negating, zero, leading zeros, truncation). Ours must agree
//!   with the reference exactly (a number longer than 48 bytes, which the reference cannot
//!   take, must be refused);
//! * a fuzzed key `(x, y)`: imported exactly when the reference imports the same point.
#![no_main]

use std::sync::OnceLock;

use arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use meshguard_core::authn::p384_verify::P384PublicKey;
use p384::ecdsa::signature::hazmat::PrehashVerifier;
use p384::elliptic_curve::point::AffineCoordinates;
use p384::elliptic_curve::PrimeField;
use p384::{ProjectivePoint, Scalar};

const N: [u8; 48] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xc7, 0x63, 0x4d, 0x81, 0xf4, 0x37, 0x2d, 0xdf,
    0x58, 0x1a, 0x0d, 0xb2, 0x48, 0xb0, 0xa7, 0x7a, 0xec, 0xec, 0x19, 0x6a, 0xcc, 0xc5, 0x29, 0x73,
];

struct Key {
    d: Scalar,
    ours: P384PublicKey,
    theirs: p384::ecdsa::VerifyingKey,
}

fn scalar(bytes: [u8; 48]) -> Scalar {
    let mut b = bytes;
    b[0] &= 0x7f;
    Scalar::from_repr(b.into()).into_option().expect("below n")
}

fn keys() -> &'static [Key] {
    static KEYS: OnceLock<Vec<Key>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let mut two96 = Scalar::ONE;
        for _ in 0..96 {
            two96 = two96.double();
        }
        [
            Scalar::ONE,
            two96,
            -Scalar::ONE,
            scalar([7; 48]),
            scalar([0x5a; 48]),
        ]
        .into_iter()
        .map(|d| {
            let point = (ProjectivePoint::GENERATOR * d).to_affine();
            let (x, y) = (point.x(), point.y());
            Key {
                d,
                ours: P384PublicKey::new(&x, &y).expect("a valid key"),
                theirs: p384::ecdsa::VerifyingKey::from_sec1_bytes(&[&[4u8][..], &x, &y].concat())
                    .expect("a valid key"),
            }
        })
        .collect()
    })
}

fn x_mod_n(point: &ProjectivePoint) -> Scalar {
    reduced(point.to_affine().x().into())
}

/// A 384-bit number mod n (it is below 2n).
fn reduced(x: [u8; 48]) -> Scalar {
    Scalar::from_repr(x.into())
        .into_option()
        .unwrap_or_else(|| {
            let mut out = [0u8; 48];
            let mut borrow = 0i32;
            for i in (0..48).rev() {
                let v = x[i] as i32 - N[i] as i32 - borrow;
                out[i] = v.rem_euclid(256) as u8;
                borrow = i32::from(v < 0);
            }
            Scalar::from_repr(out.into())
                .into_option()
                .expect("below n")
        })
}

/// The scalar ECDSA makes of a digest: its leftmost 384 bits as a number, mod n.
fn digest_scalar(digest: &[u8]) -> Scalar {
    let used = &digest[..digest.len().min(48)];
    let mut wide = [0u8; 48];
    wide[48 - used.len()..].copy_from_slice(used);
    reduced(wide)
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let mut u = Unstructured::new(rest);
    let _ = if selector % 4 == 0 {
        key_import(&mut u)
    } else {
        signature(&mut u)
    };
});

/// A number edited as the fuzzer says: 48 bytes big-endian, or any length.
fn edit(u: &mut Unstructured<'_>, value: &Scalar) -> Result<Vec<u8>> {
    let mut v = value.to_repr().to_vec();
    match u.int_in_range(0..=9)? {
        0 => {
            let i = u.choose_index(v.len())?;
            v[i] ^= u.arbitrary::<u8>()?;
        }
        1 => v = u.arbitrary()?,
        2 => v = (-*value).to_repr().to_vec(),
        3 => v = vec![0; u.int_in_range(0..=49)?],
        4 => v.insert(0, 0),
        5 => v.truncate(u.choose_index(v.len() + 1)?),
        6 => {
            // value + n (49 bytes when it carries)
            let mut out = vec![0u8; 49];
            let mut carry = 0u16;
            for i in (0..48).rev() {
                let s = v[i] as u16 + N[i] as u16 + carry;
                out[i + 1] = s as u8;
                carry = s >> 8;
            }
            out[0] = carry as u8;
            v = out;
        }
        7 => v = N.to_vec(),
        _ => {}
    }
    Ok(v)
}

fn signature(u: &mut Unstructured<'_>) -> Result<()> {
    let key = u.choose(keys())?;
    let length = *u.choose(&[32usize, 48, 64])?;
    let mut digest: Vec<u8> = u.bytes(length)?.to_vec();
    let z = digest_scalar(&digest);
    let k = scalar(u.arbitrary()?);
    let (r, s) = if u.ratio(1, 4)? {
        // u1 = u2 = c for a small c: R = c G + c Q; r = x(R), s = r / c, z = r.
        let c = Scalar::from(u.int_in_range(1u64..=40)?);
        let point = ProjectivePoint::GENERATOR * c + ProjectivePoint::GENERATOR * (c * key.d);
        let r = x_mod_n(&point);
        digest = r.to_repr().to_vec();
        (r, r * c.invert().into_option().unwrap_or(Scalar::ZERO))
    } else {
        let r = x_mod_n(&(ProjectivePoint::GENERATOR * k));
        let s = k.invert().into_option().unwrap_or(Scalar::ZERO) * (z + r * key.d);
        (r, s)
    };
    let (mut r, mut s) = (r.to_repr().to_vec(), s.to_repr().to_vec());
    for _ in 0..u.int_in_range(0..=2)? {
        match u.int_in_range(0..=2)? {
            0 => {
                r = edit(
                    u,
                    &Scalar::from_repr(pad(&r)?.into())
                        .into_option()
                        .unwrap_or(Scalar::ZERO),
                )?
            }
            1 => {
                s = edit(
                    u,
                    &Scalar::from_repr(pad(&s)?.into())
                        .into_option()
                        .unwrap_or(Scalar::ZERO),
                )?
            }
            _ => {
                let i = u.choose_index(digest.len())?;
                digest[i] ^= u.arbitrary::<u8>()?;
            }
        }
    }
    let mine = key.ours.verify(&digest, &r, &s);
    let reference = match (pad(&r), pad(&s)) {
        (Ok(r), Ok(s)) => p384::ecdsa::Signature::from_slice(&[r, s].concat())
            .is_ok_and(|sig| key.theirs.verify_prehash(&digest, &sig).is_ok()),
        _ => false,
    };
    assert_eq!(
        mine, reference,
        "r {r:02x?} s {s:02x?} digest {digest:02x?}"
    );
    Ok(())
}

/// A big-endian number of any length as 48 bytes, an error when it does not fit.
fn pad(v: &[u8]) -> Result<[u8; 48]> {
    let first = v.iter().position(|b| *b != 0).unwrap_or(v.len());
    let digits = &v[first..];
    if digits.len() > 48 {
        return Err(arbitrary::Error::IncorrectFormat);
    }
    let mut out = [0u8; 48];
    out[48 - digits.len()..].copy_from_slice(digits);
    Ok(out)
}

fn key_import(u: &mut Unstructured<'_>) -> Result<()> {
    let (x, y): (Vec<u8>, Vec<u8>) = if u.arbitrary()? {
        // A valid key with an edit.
        let key = u.choose(keys())?;
        let point = (ProjectivePoint::GENERATOR * key.d).to_affine();
        let (mut x, mut y) = (point.x().to_vec(), point.y().to_vec());
        let target = if u.arbitrary()? { &mut x } else { &mut y };
        let i = u.choose_index(target.len())?;
        target[i] ^= u.arbitrary::<u8>()?;
        (x, y)
    } else {
        (u.arbitrary()?, u.arbitrary()?)
    };
    let mine = P384PublicKey::new(&x, &y).is_some();
    let reference = match (pad(&x), pad(&y)) {
        (Ok(x), Ok(y)) => {
            p384::ecdsa::VerifyingKey::from_sec1_bytes(&[&[4u8][..], &x, &y].concat()).is_ok()
        }
        _ => false,
    };
    assert_eq!(mine, reference, "x {x:02x?} y {y:02x?}");
    Ok(())
}
