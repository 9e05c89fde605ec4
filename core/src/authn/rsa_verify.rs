//! Verification-only RSA for JWT signatures (RS256/384/512 and PS256/384/512), on 32-bit limbs.
//!
//! Mirrors what Envoy 1.40 `jwt_authn` gets from BoringSSL for a JWK RSA key:
//!
//! * key import (`jwks.cc` `createRsaFromJwk` then `RSA_check_key`, `rsa_check_public_key`):
//!   `n` and `e` are big-endian numbers of any length (leading zero bytes allowed, as
//!   `BN_bin2bn`); `e` must be 3 or 65537; `n` must be odd and 512 to 16384 bits long;
//! * the raw operation (`rsa_verify_raw_no_self_test`): the signature must be exactly
//!   `RSA_size(n)` bytes (the modulus length in bytes, leading zeros included) and, read as a
//!   number, below `n`; then `s^e mod n`, written back as `RSA_size` big-endian bytes;
//! * RS*: `RSA_verify`, an exact comparison with `00 01 FF.. 00 || DigestInfo || H` (at least
//!   eight `FF` bytes, so the modulus must hold the DigestInfo plus 11 bytes);
//! * PS*: `RSA_verify_PKCS1_PSS_mgf1` with MGF1 of the same hash and the salt length equal to
//!   the hash length (BoringSSL's `RSA_PSS_SALTLEN_DIGEST` default; Envoy sets no other).
//!
//! Everything here works on public data (key, signature, digest), so it need not run in
//! constant time. The Montgomery constants (`-n^-1 mod 2^32`, `R^2 mod n`) are computed once,
//! when the key is imported; a verification is one conversion into Montgomery form, 16 (or 1
//! for `e = 3`) squarings and one multiplication. 32-bit limbs keep every product a native
//! 64-bit multiply on wasm32, which has no 64x64->128 instruction.

/// The hash of an RSA signature scheme (the token's `alg` picks it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Digest {
    Sha256,
    Sha384,
    Sha512,
}

impl Digest {
    /// The hash of the concatenation of `parts`.
    pub fn hash(self, parts: &[&[u8]]) -> Vec<u8> {
        match self {
            Digest::Sha256 => {
                let mut h = hmac_sha256::Hash::new();
                parts.iter().for_each(|p| h.update(p));
                h.finalize().to_vec()
            }
            Digest::Sha384 => {
                let mut h = hmac_sha512::sha384::Hash::new();
                parts.iter().for_each(|p| h.update(p));
                h.finalize().to_vec()
            }
            Digest::Sha512 => {
                let mut h = hmac_sha512::Hash::new();
                parts.iter().for_each(|p| h.update(p));
                h.finalize().to_vec()
            }
        }
    }

    fn len(self) -> usize {
        match self {
            Digest::Sha256 => 32,
            Digest::Sha384 => 48,
            Digest::Sha512 => 64,
        }
    }

    /// The DER `DigestInfo` header that precedes the hash in a PKCS#1 v1.5 signature.
    fn digest_info(self) -> &'static [u8] {
        match self {
            Digest::Sha256 => &[
                0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x01, 0x05, 0x00, 0x04, 0x20,
            ],
            Digest::Sha384 => &[
                0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x02, 0x05, 0x00, 0x04, 0x30,
            ],
            Digest::Sha512 => &[
                0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x03, 0x05, 0x00, 0x04, 0x40,
            ],
        }
    }
}

/// BoringSSL's `OPENSSL_RSA_MIN_MODULUS_BITS` and `OPENSSL_RSA_MAX_MODULUS_BITS`.
pub const MIN_MODULUS_BITS: usize = 512;
pub const MAX_MODULUS_BITS: usize = 16384;

/// An imported RSA public key with its Montgomery constants.
#[derive(Clone, PartialEq, Eq)]
pub struct RsaPublicKey {
    /// The modulus, little-endian 32-bit limbs, no high zero limb.
    n: Vec<u32>,
    /// `-n^-1 mod 2^32`.
    n0: u32,
    /// `R^2 mod n` with `R = 2^(32 * limbs)`.
    r2: Vec<u32>,
    /// 3 or 65537.
    e: u32,
    /// The modulus length in bits.
    bits: usize,
}

impl std::fmt::Debug for RsaPublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RsaPublicKey({} bits, e = {})", self.bits, self.e)
    }
}

impl RsaPublicKey {
    /// Imports `n` and `e` (big-endian, any number of leading zero bytes), or `None` for a key
    /// Envoy refuses.
    pub fn new(n: &[u8], e: &[u8]) -> Option<RsaPublicKey> {
        let e = match strip_zeros(e) {
            [3] => 3,
            [1, 0, 1] => 65537,
            _ => return None,
        };
        let n = limbs_from_be(strip_zeros(n));
        let bits = bit_length(&n);
        if !(MIN_MODULUS_BITS..=MAX_MODULUS_BITS).contains(&bits)
            || n.first().is_none_or(|l| l & 1 == 0)
        {
            return None;
        }
        let n0 = neg_inverse(*n.first()?);
        let mut key = RsaPublicKey {
            r2: Vec::new(),
            n,
            n0,
            e,
            bits,
        };
        key.r2 = key.r_squared();
        Some(key)
    }

    /// The modulus length in bits.
    pub fn bits(&self) -> usize {
        self.bits
    }

    /// `RSA_size`: the modulus length in bytes, which every signature must have.
    pub fn size(&self) -> usize {
        self.bits.div_ceil(8)
    }

    /// RSASSA-PKCS1-v1_5: whether `sig` signs the message whose `digest` hash is `hashed`.
    pub fn verify_pkcs1v15(&self, digest: Digest, hashed: &[u8], sig: &[u8]) -> bool {
        let Some(em) = self.raw(sig) else {
            return false;
        };
        let info = digest.digest_info();
        let k = self.size();
        let Some(pad) = k.checked_sub(info.len() + hashed.len() + 3) else {
            return false;
        };
        if pad < 8 || hashed.len() != digest.len() {
            return false;
        }
        let mut expected = Vec::with_capacity(k);
        expected.extend_from_slice(&[0, 1]);
        expected.resize(2 + pad, 0xff);
        expected.push(0);
        expected.extend_from_slice(info);
        expected.extend_from_slice(hashed);
        em == expected
    }

    /// RSASSA-PSS with MGF1 of the same hash and a salt as long as the hash.
    pub fn verify_pss(&self, digest: Digest, hashed: &[u8], sig: &[u8]) -> bool {
        let Some(em) = self.raw(sig) else {
            return false;
        };
        let h_len = digest.len();
        if hashed.len() != h_len {
            return false;
        }
        // The encoded message has `bits - 1` bits; the bits above them must be zero.
        let top_bits = (self.bits - 1) % 8;
        let Some(&first) = em.first() else {
            return false;
        };
        if u32::from(first) >> top_bits != 0 {
            return false;
        }
        let em = if top_bits == 0 {
            em.get(1..).unwrap_or_default()
        } else {
            em.as_slice()
        };
        let s_len = h_len;
        if em.len() < h_len + s_len + 2 || em.last() != Some(&0xbc) {
            return false;
        }
        let db_len = em.len() - h_len - 1;
        let (Some(masked_db), Some(h)) = (em.get(..db_len), em.get(db_len..em.len() - 1)) else {
            return false;
        };
        let mut db = mgf1(digest, h, db_len);
        db.iter_mut().zip(masked_db).for_each(|(d, m)| *d ^= m);
        if let (Some(d), true) = (db.first_mut(), top_bits != 0) {
            *d &= 0xff >> (8 - top_bits);
        }
        let ps_len = db_len - s_len - 1;
        let (Some(ps), Some(&one), Some(salt)) =
            (db.get(..ps_len), db.get(ps_len), db.get(ps_len + 1..))
        else {
            return false;
        };
        if ps.iter().any(|b| *b != 0) || one != 1 {
            return false;
        }
        digest.hash(&[&[0u8; 8], hashed, salt]) == h
    }

    /// The raw public operation: `sig^e mod n` as `size()` big-endian bytes; `None` for a
    /// signature of the wrong length or not below the modulus.
    pub fn raw(&self, sig: &[u8]) -> Option<Vec<u8>> {
        if sig.len() != self.size() {
            return None;
        }
        let s = limbs_from_be(sig);
        let mut x = vec![0u32; self.n.len()];
        x.iter_mut().zip(&s).for_each(|(x, s)| *x = *s);
        if s.len() > self.n.len() || compare(&x, &self.n) != std::cmp::Ordering::Less {
            return None;
        }
        let mut scratch = vec![0u32; 2 * self.n.len() + 1];
        let mut acc = self.mont_mul(&x, &self.r2, &mut scratch);
        let squarings = if self.e == 3 { 1 } else { 16 };
        for _ in 0..squarings {
            acc = self.mont_sqr(&acc, &mut scratch);
        }
        let result = self.mont_mul(&acc, &x, &mut scratch);
        Some(limbs_to_be(&result, self.size()))
    }

    /// `R^2 mod n`: `R * 2^limbs` by doubling from 1, then five Montgomery squarings, each
    /// mapping `R * 2^u` to `R * 2^(2u)`, reach `R * 2^(32 * limbs) = R^2`.
    fn r_squared(&self) -> Vec<u32> {
        let limbs = self.n.len();
        let mut x = vec![0u32; limbs];
        if let Some(low) = x.first_mut() {
            *low = 1;
        }
        for _ in 0..33 * limbs {
            let carry = x.iter_mut().fold(0u32, |carry, l| {
                let top = *l >> 31;
                *l = (*l << 1) | carry;
                top
            });
            if carry != 0 || compare(&x, &self.n) != std::cmp::Ordering::Less {
                sub_in_place(&mut x, &self.n);
            }
        }
        let mut scratch = vec![0u32; 2 * limbs + 1];
        for _ in 0..5 {
            x = self.mont_sqr(&x, &mut scratch);
        }
        x
    }

    /// Montgomery product `a * b / R mod n` of two numbers below `n`.
    fn mont_mul(&self, a: &[u32], b: &[u32], t: &mut [u32]) -> Vec<u32> {
        t.fill(0);
        for (i, &ai) in a.iter().enumerate() {
            let Some(row) = t.get_mut(i..) else { break };
            let carry = mul_add(row, b, ai);
            if let Some(top) = row.get_mut(b.len()) {
                *top = carry;
            }
        }
        self.reduce(t)
    }

    /// Montgomery square `a * a / R mod n`: the cross products once, doubled, plus the
    /// squares.
    fn mont_sqr(&self, a: &[u32], t: &mut [u32]) -> Vec<u32> {
        t.fill(0);
        for (i, &ai) in a.iter().enumerate() {
            let (Some(row), Some(rest)) = (t.get_mut(2 * i + 1..), a.get(i + 1..)) else {
                break;
            };
            let carry = mul_add(row, rest, ai);
            if let Some(top) = row.get_mut(rest.len()) {
                *top = carry;
            }
        }
        t.iter_mut().fold(0u32, |carry, l| {
            let top = *l >> 31;
            *l = (*l << 1) | carry;
            top
        });
        let mut carry = 0u64;
        for (pair, &ai) in t.chunks_exact_mut(2).zip(a) {
            let sq = u64::from(ai) * u64::from(ai);
            for (l, half) in pair.iter_mut().zip([sq & 0xffff_ffff, sq >> 32]) {
                let v = u64::from(*l) + half + carry;
                *l = v as u32;
                carry = v >> 32;
            }
        }
        if let Some(last) = t.last_mut() {
            *last = last.wrapping_add(carry as u32);
        }
        self.reduce(t)
    }

    /// Montgomery reduction of `t` (`2 * limbs + 1` limbs, below `n * R`) to `t / R mod n`.
    fn reduce(&self, t: &mut [u32]) -> Vec<u32> {
        let limbs = self.n.len();
        for i in 0..limbs {
            let Some(window) = t.get_mut(i..) else { break };
            let m = window.first().map_or(0, |l| l.wrapping_mul(self.n0));
            let mut carry = mul_add(window, &self.n, m);
            for l in window.iter_mut().skip(limbs) {
                if carry == 0 {
                    break;
                }
                let v = u64::from(*l) + u64::from(carry);
                *l = v as u32;
                carry = (v >> 32) as u32;
            }
        }
        let high = t.get(limbs..).unwrap_or_default();
        let mut out: Vec<u32> = high.iter().take(limbs).copied().collect();
        if high.get(limbs).is_some_and(|l| *l != 0)
            || compare(&out, &self.n) != std::cmp::Ordering::Less
        {
            sub_in_place(&mut out, &self.n);
        }
        out
    }
}

/// `row[..b.len()] += a * b`, returning the carry out of the last limb. (A four-limb unrolled
/// form measured 2x slower in Envoy's V8; this plain loop is nearly all of an RSA verification.)
#[inline(always)]
fn mul_add(row: &mut [u32], b: &[u32], a: u32) -> u32 {
    let a = u64::from(a);
    let mut carry = 0u64;
    for (r, &bj) in row.iter_mut().zip(b) {
        let v = u64::from(*r) + a * u64::from(bj) + carry;
        *r = v as u32;
        carry = v >> 32;
    }
    carry as u32
}

/// `x -= y` modulo `2^(32 * x.len())`.
fn sub_in_place(x: &mut [u32], y: &[u32]) {
    let mut borrow = 0u64;
    for (i, l) in x.iter_mut().enumerate() {
        let v = u64::from(*l)
            .wrapping_sub(u64::from(y.get(i).copied().unwrap_or(0)))
            .wrapping_sub(borrow);
        *l = v as u32;
        borrow = (v >> 63) & 1;
    }
}

/// Compares two numbers of the same limb count.
fn compare(x: &[u32], y: &[u32]) -> std::cmp::Ordering {
    x.iter().rev().cmp(y.iter().rev())
}

/// `-x^-1 mod 2^32` for odd `x` (Newton's iteration doubles the correct bits each step).
fn neg_inverse(x: u32) -> u32 {
    let mut inv = x;
    for _ in 0..5 {
        inv = inv.wrapping_mul(2u32.wrapping_sub(x.wrapping_mul(inv)));
    }
    inv.wrapping_neg()
}

fn strip_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    bytes.get(first..).unwrap_or_default()
}

fn limbs_from_be(bytes: &[u8]) -> Vec<u32> {
    bytes
        .rchunks(4)
        .map(|c| c.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)))
        .collect()
}

fn limbs_to_be(limbs: &[u32], len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    for (i, byte) in out.iter_mut().rev().enumerate() {
        let limb = limbs.get(i / 4).copied().unwrap_or(0);
        *byte = (limb >> (8 * (i % 4))) as u8;
    }
    out
}

fn bit_length(limbs: &[u32]) -> usize {
    limbs.iter().rposition(|l| *l != 0).map_or(0, |i| {
        32 * i + 32 - limbs.get(i).map_or(32, |l| l.leading_zeros() as usize)
    })
}

/// MGF1 (RFC 8017 B.2.1): `len` bytes of `Hash(seed || counter)` blocks.
fn mgf1(digest: Digest, seed: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + digest.len());
    let mut counter = 0u32;
    while out.len() < len {
        out.extend(digest.hash(&[seed, &counter.to_be_bytes()]));
        counter += 1;
    }
    out.truncate(len);
    out
}
