//! `rsa_verify`: meshguard's verification-only RSA (`meshguard_crypto::rsa_verify`) against the
//! `rsa` crate (RustCrypto, the backend jwt-simple uses) and `num-bigint-dig`'s `modpow`.
//!
//! The first byte selects the case:
//! * a fixed key (1024-bit e = 65537, 1031-bit e = 3, 2048-bit e = 65537; generated once from a
//!   fixed seed), a digest, PKCS#1 v1.5 or PSS, a message and a signature that is a correct one
//!   with fuzzed byte edits (xor, truncation, extension, replacement) or arbitrary bytes. Ours
//!   accepting what the reference refuses is a finding; so is refusing what the reference
//!   accepts, unless the signature is not exactly the modulus length or not below the modulus
//!   (BoringSSL refuses those; the `rsa` crate's PSS check does not compare with n);
//! * the raw public operation on a fuzzed modulus and signature, against `modpow`.
#![no_main]

use std::sync::OnceLock;

use arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use meshguard_crypto::rsa_verify::{Digest, RsaPublicKey};
use rsa::rand_core::{CryptoRng, RngCore};
use rsa::traits::PublicKeyParts;
use rsa::{BigUint, Pkcs1v15Sign, Pss, RsaPrivateKey};
use sha2::Digest as _;

/// splitmix64 with a fixed seed: the keys and PSS salts are the same in every run.
struct FixedRng(u64);

impl RngCore for FixedRng {
    fn next_u32(&mut self) -> u32 {
        self.next_u64() as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> std::result::Result<(), rsa::rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl CryptoRng for FixedRng {}

fn keys() -> &'static [(RsaPrivateKey, RsaPublicKey)] {
    static KEYS: OnceLock<Vec<(RsaPrivateKey, RsaPublicKey)>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let mut rng = FixedRng(7);
        [(1024, 65537u32), (1031, 3), (2048, 65537)]
            .into_iter()
            .map(|(bits, e)| {
                let key = RsaPrivateKey::new_with_exp(&mut rng, bits, &BigUint::from(e))
                    .expect("key generation");
                let ours = RsaPublicKey::new(&key.n().to_bytes_be(), &key.e().to_bytes_be())
                    .expect("a valid key");
                (key, ours)
            })
            .collect()
    })
}

fn hash(d: Digest, msg: &[u8]) -> Vec<u8> {
    match d {
        Digest::Sha256 => sha2::Sha256::digest(msg).to_vec(),
        Digest::Sha384 => sha2::Sha384::digest(msg).to_vec(),
        Digest::Sha512 => sha2::Sha512::digest(msg).to_vec(),
    }
}

fn pkcs1(d: Digest) -> Pkcs1v15Sign {
    match d {
        Digest::Sha256 => Pkcs1v15Sign::new::<sha2::Sha256>(),
        Digest::Sha384 => Pkcs1v15Sign::new::<sha2::Sha384>(),
        Digest::Sha512 => Pkcs1v15Sign::new::<sha2::Sha512>(),
    }
}

fn pss(d: Digest) -> Pss {
    match d {
        Digest::Sha256 => Pss::new::<sha2::Sha256>(),
        Digest::Sha384 => Pss::new::<sha2::Sha384>(),
        Digest::Sha512 => Pss::new::<sha2::Sha512>(),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let mut u = Unstructured::new(rest);
    let _ = if selector % 4 == 0 { raw(&mut u) } else { signature(&mut u) };
});

fn signature(u: &mut Unstructured<'_>) -> Result<()> {
    let (key, ours) = u.choose(keys())?;
    let d = *u.choose(&[Digest::Sha256, Digest::Sha384, Digest::Sha512])?;
    let is_pss: bool = u.arbitrary()?;
    let msg: Vec<u8> = u.arbitrary()?;
    let hashed = hash(d, &msg);
    let k = key.size();
    let good = if is_pss {
        let mut rng = FixedRng(u.arbitrary()?);
        key.sign_with_rng(&mut rng, pss(d), &hashed).ok()
    } else {
        key.sign(pkcs1(d), &hashed).ok()
    };
    let mut sig = match (u.int_in_range(0..=7)?, good) {
        (0, _) | (_, None) => u.arbitrary::<Vec<u8>>()?,
        (_, Some(sig)) => sig,
    };
    for _ in 0..u.int_in_range(0..=3)? {
        match u.int_in_range(0..=4)? {
            0 if !sig.is_empty() => {
                let i = u.choose_index(sig.len())?;
                sig[i] ^= u.arbitrary::<u8>()?;
            }
            1 => sig.truncate(u.choose_index(sig.len() + 1)?),
            2 => sig.insert(0, u.arbitrary()?),
            3 => sig.push(u.arbitrary()?),
            _ => {
                // a number congruent to the signature: sig + n
                let sum = BigUint::from_bytes_be(&sig) + key.n();
                sig = sum.to_bytes_be();
            }
        }
    }
    let public = key.to_public_key();
    let (mine, reference) = if is_pss {
        (ours.verify_pss(d, &hashed, &sig), public.verify(pss(d), &hashed, &sig).is_ok())
    } else {
        (ours.verify_pkcs1v15(d, &hashed, &sig), public.verify(pkcs1(d), &hashed, &sig).is_ok())
    };
    let in_range = sig.len() == k && BigUint::from_bytes_be(&sig) < *key.n();
    assert!(!mine || (reference && in_range), "ours accepts what the reference refuses: {sig:?}");
    assert!(mine || !reference || !in_range, "ours refuses a good signature: {sig:?}");
    Ok(())
}

fn raw(u: &mut Unstructured<'_>) -> Result<()> {
    let mut n: Vec<u8> = u.arbitrary()?;
    n.truncate(512);
    let e: u32 = if u.arbitrary()? { 3 } else { 65537 };
    let s = u.bytes(n.len())?.to_vec();
    let Some(key) = RsaPublicKey::new(&n, &e.to_be_bytes()) else {
        let modulus = BigUint::from_bytes_be(&n);
        let bits = modulus.bits();
        assert!(bits < 512 || bits > 16384 || n.last().is_none_or(|b| b & 1 == 0));
        return Ok(());
    };
    let modulus = BigUint::from_bytes_be(&n);
    let size = key.size();
    let s = s.get(s.len().saturating_sub(size)..).unwrap_or_default().to_vec();
    let value = BigUint::from_bytes_be(&s);
    let expected = (s.len() == size && value < modulus).then(|| {
        let r = value.modpow(&BigUint::from(e), &modulus).to_bytes_be();
        [vec![0u8; size - r.len()], r].concat()
    });
    assert_eq!(key.raw(&s), expected);
    Ok(())
}
