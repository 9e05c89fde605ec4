//! `meshguard_crypto::rsa_verify` against the `rsa` crate (RustCrypto, the backend jwt-simple uses)
//! and `num-bigint-dig`'s `modpow` on generated keys: 2048, 3072 and 4096 bits, odd sizes, `e` 3
//! and 65537, every RS* and PS* hash; good signatures, corrupted ones, wrong lengths, leading zero
//! bytes, signatures not below the modulus, and the key import rules Envoy/BoringSSL apply. Keys
//! come from a seeded generator, so a failure reproduces.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use meshguard_crypto::rsa_verify::{Digest, RsaPublicKey};
use rsa::rand_core::{CryptoRng, RngCore};
use rsa::traits::PublicKeyParts;
use rsa::{BigUint, Pkcs1v15Sign, Pss, RsaPrivateKey};
use sha2::Digest as _;

/// splitmix64: deterministic test randomness (never used outside tests).
struct TestRng(u64);

impl RngCore for TestRng {
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
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rsa::rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl CryptoRng for TestRng {}

const DIGESTS: [Digest; 3] = [Digest::Sha256, Digest::Sha384, Digest::Sha512];

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

fn import(key: &RsaPrivateKey) -> RsaPublicKey {
    RsaPublicKey::new(&key.n().to_bytes_be(), &key.e().to_bytes_be()).expect("a valid key")
}

/// Both verifiers' answers for one (scheme, digest, hash, signature).
fn both(
    key: &RsaPrivateKey,
    mine: &RsaPublicKey,
    is_pss: bool,
    d: Digest,
    hashed: &[u8],
    sig: &[u8],
) -> (bool, bool) {
    let public = key.to_public_key();
    if is_pss {
        (
            mine.verify_pss(d, hashed, sig),
            public.verify(pss(d), hashed, sig).is_ok(),
        )
    } else {
        (
            mine.verify_pkcs1v15(d, hashed, sig),
            public.verify(pkcs1(d), hashed, sig).is_ok(),
        )
    }
}

fn sign(rng: &mut TestRng, key: &RsaPrivateKey, is_pss: bool, d: Digest, h: &[u8]) -> Vec<u8> {
    if is_pss {
        key.sign_with_rng(rng, pss(d), h).unwrap()
    } else {
        key.sign(pkcs1(d), h).unwrap()
    }
}

/// Every good signature verifies in both, and every corruption is refused by both.
fn check_key(rng: &mut TestRng, key: &RsaPrivateKey, rounds: usize) {
    let mine = import(key);
    let k = key.size();
    assert_eq!(mine.size(), k);
    let n = key.n().to_bytes_be();
    for round in 0..rounds {
        for d in DIGESTS {
            for is_pss in [false, true] {
                let msg = format!("header.payload-{round}-{is_pss}");
                let h = hash(d, msg.as_bytes());
                let min = if is_pss {
                    2 * h.len() + 2
                } else {
                    h.len() + 19 + 11
                };
                if k < min + usize::from(is_pss && mine.bits() % 8 == 1) {
                    // Too small for this scheme: neither signs nor verifies.
                    let junk = vec![1u8; k];
                    assert_eq!(both(key, &mine, is_pss, d, &h, &junk), (false, false));
                    continue;
                }
                let sig = sign(rng, key, is_pss, d, &h);
                let what = format!("{} bits e={} pss={is_pss} {d:?}", mine.bits(), key.e());
                assert_eq!(
                    both(key, &mine, is_pss, d, &h, &sig),
                    (true, true),
                    "{what}"
                );
                let mut cases: Vec<Vec<u8>> = Vec::new();
                for _ in 0..4 {
                    let mut bad = sig.clone();
                    let bit = (rng.next_u32() as usize) % (8 * k);
                    bad[bit / 8] ^= 1 << (bit % 8);
                    cases.push(bad);
                }
                cases.push(sig[1..].to_vec());
                cases.push([&[0u8][..], &sig].concat());
                cases.push([&sig[..], &[0u8][..]].concat());
                cases.push(n.clone());
                cases.push(vec![0xff; k]);
                cases.push(vec![0; k]);
                cases.push([vec![0; k - 1], vec![1]].concat());
                cases.push(Vec::new());
                let mut random = vec![0u8; k];
                rng.fill_bytes(&mut random);
                random[0] &= 0x7f >> (7 - (mine.bits() - 1) % 8);
                cases.push(random);
                for bad in &cases {
                    assert_eq!(
                        both(key, &mine, is_pss, d, &h, bad),
                        (false, false),
                        "{what}"
                    );
                }
                // sig + n, congruent to a good signature but not below the modulus: BoringSSL
                // refuses it (`RSA_R_DATA_TOO_LARGE_FOR_MODULUS`); the `rsa` crate's PSS check
                // does not compare with n and accepts it, so only ours is asserted.
                let sum = (BigUint::from_bytes_be(&sig) + key.n()).to_bytes_be();
                if sum.len() == k {
                    assert!(!mine.verify_pss(d, &h, &sum), "{what}");
                    assert!(!mine.verify_pkcs1v15(d, &h, &sum), "{what}");
                    assert!(key.to_public_key().verify(pkcs1(d), &h, &sum).is_err());
                }
                // The right signature for another message, hash or scheme.
                let other = hash(d, b"other");
                assert_eq!(both(key, &mine, is_pss, d, &other, &sig), (false, false));
                assert_eq!(both(key, &mine, !is_pss, d, &h, &sig), (false, false));
                for d2 in DIGESTS.into_iter().filter(|d2| *d2 != d) {
                    let h2 = hash(d2, msg.as_bytes());
                    assert_eq!(both(key, &mine, is_pss, d2, &h2, &sig), (false, false));
                }
            }
        }
    }
}

fn generate(rng: &mut TestRng, bits: usize, e: u32) -> RsaPrivateKey {
    RsaPrivateKey::new_with_exp(rng, bits, &BigUint::from(e)).unwrap()
}

#[test]
fn agrees_with_the_rsa_crate_on_common_key_sizes() {
    let mut rng = TestRng(1);
    for (bits, rounds) in [(2048, 6), (2048, 2), (3072, 2), (4096, 1)] {
        let key = generate(&mut rng, bits, 65537);
        check_key(&mut rng, &key, rounds);
    }
}

#[test]
fn agrees_with_the_rsa_crate_on_odd_sizes_and_exponent_3() {
    let mut rng = TestRng(2);
    for (bits, e) in [
        (2047, 65537),
        (2049, 65537),
        (2050, 3),
        (2048, 3),
        (1025, 3),
        (1023, 65537),
        (777, 65537),
        (608, 3),
        (520, 65537),
    ] {
        let key = generate(&mut rng, bits, e);
        check_key(&mut rng, &key, 1);
    }
}

#[test]
fn signatures_with_leading_zero_bytes_verify_only_at_full_length() {
    let mut rng = TestRng(3);
    let key = generate(&mut rng, 1024, 65537);
    let mine = import(&key);
    let mut found = 0;
    for i in 0..4000 {
        let h = hash(Digest::Sha256, format!("m{i}").as_bytes());
        let sig = sign(&mut rng, &key, false, Digest::Sha256, &h);
        if sig[0] != 0 {
            continue;
        }
        found += 1;
        let (a, b) = both(&key, &mine, false, Digest::Sha256, &h, &sig);
        assert!(a && b);
        let stripped = &sig[1..];
        assert_eq!(
            both(&key, &mine, false, Digest::Sha256, &h, stripped),
            (false, false)
        );
        if found == 3 {
            break;
        }
    }
    assert!(
        found > 0,
        "no signature with a leading zero byte in 4000 tries"
    );
}

#[test]
fn the_public_operation_matches_modpow_on_odd_moduli_of_every_size() {
    let mut rng = TestRng(4);
    let mut sizes: Vec<usize> = (0..60)
        .map(|_| 512 + rng.next_u32() as usize % 4000)
        .collect();
    sizes.extend([512, 513, 544, 1024, 2048, 4096, 8191, 16384]);
    for bits in sizes {
        for e in [3u32, 65537] {
            let mut n = vec![0u8; bits.div_ceil(8)];
            rng.fill_bytes(&mut n);
            let top = (bits - 1) % 8;
            n[0] = (n[0] & (0xff >> (7 - top))) | (1 << top);
            *n.last_mut().unwrap() |= 1;
            let key = RsaPublicKey::new(&n, &e.to_be_bytes()).unwrap();
            assert_eq!(key.bits(), bits);
            let modulus = BigUint::from_bytes_be(&n);
            for _ in 0..3 {
                let mut s = vec![0u8; n.len()];
                rng.fill_bytes(&mut s);
                let value = BigUint::from_bytes_be(&s);
                let expected = (value < modulus).then(|| {
                    let r = value.modpow(&BigUint::from(e), &modulus).to_bytes_be();
                    [vec![0u8; n.len() - r.len()], r].concat()
                });
                assert_eq!(key.raw(&s), expected, "{bits} bits, e = {e}");
            }
        }
    }
}

#[test]
fn keys_are_imported_as_boringssl_accepts_them() {
    let mut rng = TestRng(5);
    let key = generate(&mut rng, 1024, 65537);
    let n = key.n().to_bytes_be();
    let with_zeros = [vec![0, 0], n.clone()].concat();
    let a = RsaPublicKey::new(&n, &[1, 0, 1]).unwrap();
    assert_eq!(RsaPublicKey::new(&with_zeros, &[0, 1, 0, 1]).unwrap(), a);
    assert!(RsaPublicKey::new(&n, &[3]).is_some());
    for e in [&[5u8][..], &[1], &[], &[1, 0, 3], &[1, 0, 0, 1], &[0x11]] {
        assert!(RsaPublicKey::new(&n, e).is_none(), "e = {e:?}");
    }
    let mut even = n.clone();
    *even.last_mut().unwrap() &= 0xfe;
    assert!(RsaPublicKey::new(&even, &[1, 0, 1]).is_none());
    let odd = |bits: usize| {
        let mut m = vec![0xffu8; bits.div_ceil(8)];
        m[0] = 0xff >> ((8 - bits % 8) % 8);
        m
    };
    assert!(RsaPublicKey::new(&odd(511), &[1, 0, 1]).is_none());
    assert!(RsaPublicKey::new(&odd(512), &[1, 0, 1]).is_some());
    assert!(RsaPublicKey::new(&odd(16384), &[1, 0, 1]).is_some());
    assert!(RsaPublicKey::new(&odd(16385), &[1, 0, 1]).is_none());
    assert!(RsaPublicKey::new(&[], &[1, 0, 1]).is_none());
}
