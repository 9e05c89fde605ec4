//! Verification-only RSA for JWT signatures (RS256/384/512 and PS256/384/512), on 28-bit limbs.
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
//! constant time. The Montgomery constants (`-n^-1 mod 2^w`, `R^2 mod n`) are computed once,
//! when the key is imported; a verification is one conversion into Montgomery form, 16 (or 1
//! for `e = 3`) squarings and one multiplication. Limbs of `w` bits (28 up to 3,526-bit
//! moduli, at least 26 to 16,384: [`limb_width`]) kept in `u64`s make every product one native
//! 64-bit multiply on wasm32 (no 64x64->128 instruction there) and leave room to add up a
//! column's products with no carry per product. A product is computed by columns (product
//! scanning, the Montgomery reduction interleaved, Koc et al.'s "FIPS"): each column's
//! products `x[i] * y[c - i]` and the reduction's `m[i] * n[c - i]` are summed in one register,
//! four a step, from `y` and `n` stored most significant limb first, so that both operands of a
//! column are read upwards; only the column's low limb is kept and its carry moves to the next
//! column. No column sums are stored and reloaded (the earlier row-by-row form read and wrote one
//! per product). A square adds each cross product once, doubled. Values stay below `2n` between
//! products (`R > 4n`), so only the result is compared with `n`.

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

/// The widest limb: 28 bits keeps the column sums of a 2048-bit modulus (74 limbs) far below
/// 2^64 (see [`limb_width`]).
const MAX_LIMB_BITS: u32 = 28;

/// An imported RSA public key with its Montgomery constants.
#[derive(Clone, PartialEq, Eq)]
pub struct RsaPublicKey {
    /// The modulus as `RSA_size` big-endian bytes (what a signature is compared with).
    n_bytes: Vec<u8>,
    /// The modulus in limbs of `w` bits (each below `2^w`, kept in a `u64`), least
    /// significant first.
    n: Vec<u64>,
    /// The same limbs, most significant first (the column sums walk `n` downwards).
    n_rev: Vec<u64>,
    /// `-n^-1 mod 2^w`.
    n0: u64,
    /// `R^2 mod n` with `R = 2^(w * limbs)`, in limbs.
    r2: Vec<u64>,
    /// The limb width in bits.
    w: u32,
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
    #[inline(never)]
    pub fn new(n: &[u8], e: &[u8]) -> Option<RsaPublicKey> {
        let e = match strip_zeros(e) {
            [3] => 3,
            [1, 0, 1] => 65537,
            _ => return None,
        };
        let n_bytes = strip_zeros(n).to_vec();
        let bits = n_bytes
            .first()
            .map_or(0, |b| 8 * n_bytes.len() - b.leading_zeros() as usize);
        if !(MIN_MODULUS_BITS..=MAX_MODULUS_BITS).contains(&bits)
            || n_bytes.last().is_none_or(|b| b & 1 == 0)
        {
            return None;
        }
        let (w, limbs) = limb_width(bits);
        let n = limbs_from_be(&n_bytes, w, limbs);
        let n0 = u64::from(neg_inverse(*n.first()? as u32)) & mask(w);
        let n_rev = n.iter().rev().copied().collect();
        let mut key = RsaPublicKey {
            n_bytes,
            n,
            n_rev,
            n0,
            r2: Vec::new(),
            w,
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
        self.n_bytes.len()
    }

    /// RSASSA-PKCS1-v1_5: whether `sig` signs the message whose `digest` hash is `hashed`.
    #[inline(never)]
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
    #[inline(never)]
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
        if sig.len() != self.size() || sig >= self.n_bytes.as_slice() {
            return None;
        }
        let limbs = self.n.len();
        // One allocation: the signature, two accumulators and the double-width column sums.
        let mut scratch = vec![0u64; 5 * limbs];
        let (x, rest) = scratch.split_at_mut(limbs);
        let (acc, rest) = rest.split_at_mut(limbs);
        let (tmp, t) = rest.split_at_mut(limbs);
        limbs_from_be_into(x, sig, self.w);
        self.mont_mul(acc, x, &self.r2, t);
        let squarings = if self.e == 3 { 1 } else { 16 };
        for _ in 0..squarings / 2 {
            self.mont_sqr(tmp, acc, t);
            self.mont_sqr(acc, tmp, t);
        }
        if squarings % 2 == 1 {
            self.mont_sqr(tmp, acc, t);
            acc.copy_from_slice(tmp);
        }
        self.mont_mul(tmp, acc, x, t);
        if compare(tmp, &self.n) != std::cmp::Ordering::Less {
            sub_in_place(tmp, &self.n, self.w);
        }
        Some(limbs_to_be(tmp, self.w, self.size()))
    }

    /// `R^2 mod n`: `2^(bits - 1)` (below `n`) doubled to `2R mod n`, the Montgomery form of
    /// 2, then raised to the power `w * limbs` in Montgomery form: `R * 2^(w * limbs) = R^2`.
    fn r_squared(&self) -> Vec<u64> {
        let limbs = self.n.len();
        let total = self.w as usize * limbs;
        let mut two = vec![0u64; limbs];
        let top = self.bits - 1;
        if let Some(l) = two.get_mut(top / self.w as usize) {
            *l = 1 << (top % self.w as usize);
        }
        for _ in top..=total {
            let carry = two.iter_mut().fold(0u64, |carry, l| {
                let v = (*l << 1) | carry;
                *l = v & mask(self.w);
                v >> self.w
            });
            if carry != 0 || compare(&two, &self.n) != std::cmp::Ordering::Less {
                sub_in_place(&mut two, &self.n, self.w);
            }
        }
        let mut t = vec![0u64; 2 * limbs];
        let mut x = two.clone();
        let mut y = vec![0u64; limbs];
        for bit in (0..usize::BITS - 1 - total.leading_zeros()).rev() {
            self.mont_sqr(&mut y, &x, &mut t);
            if (total >> bit) & 1 == 1 {
                self.mont_mul(&mut x, &y, &two, &mut t);
            } else {
                std::mem::swap(&mut x, &mut y);
            }
        }
        if compare(&x, &self.n) != std::cmp::Ordering::Less {
            sub_in_place(&mut x, &self.n, self.w);
        }
        x
    }

    /// `out = a * b / R mod n` (below `2n`) for `a`, `b` below `2n`; `t` holds `2 * limbs`
    /// limbs of scratch (`b` reversed and the reduction's multipliers).
    fn mont_mul(&self, out: &mut [u64], a: &[u64], b: &[u64], t: &mut [u64]) {
        let (b_rev, m) = t.split_at_mut(self.n.len());
        b_rev
            .iter_mut()
            .zip(b.iter().rev())
            .for_each(|(r, &l)| *r = l);
        self.product_scan(out, m, |k, lo, hi| dot(a.get(lo..hi), b_rev.get(k..)));
    }

    /// `out = a * a / R mod n` (below `2n`) for `a` below `2n`: each cross product once,
    /// doubled, then the square of the middle limb.
    fn mont_sqr(&self, out: &mut [u64], a: &[u64], t: &mut [u64]) {
        let (a_rev, m) = t.split_at_mut(self.n.len());
        a_rev
            .iter_mut()
            .zip(a.iter().rev())
            .for_each(|(r, &l)| *r = l);
        self.product_scan(out, m, |k, lo, hi| {
            let mid = lo + (hi - lo) / 2;
            let middle = match (hi - lo) % 2 {
                1 => a.get(mid).map_or(0, |l| l * l),
                _ => 0,
            };
            2 * dot(a.get(lo..mid), a_rev.get(k..)) + middle
        });
    }

    /// Montgomery multiplication `x * y / R mod n` by columns (product scanning, the reduction
    /// interleaved). Column `c` of `x * y + m * n` is summed in one `u64` with no carry per
    /// product (see [`limb_width`]): `products(k, lo, hi)` is the column's part of `x * y`,
    /// `x[i] * y[c - i]` over `x[lo..hi]`, read against `y` reversed from index
    /// `k = limbs - 1 - c + lo`; the reduction adds `m[i] * n[c - i]`, with `n` reversed too. In
    /// the low `limbs` columns `m[c]` is chosen to clear the column (`n0 = -n^-1 mod 2^w`); the
    /// high columns are the result.
    #[inline(always)]
    fn product_scan(
        &self,
        out: &mut [u64],
        m: &mut [u64],
        products: impl Fn(usize, usize, usize) -> u64,
    ) {
        let (w, m_mask, n0) = (self.w, mask(self.w), self.n0);
        let limbs = self.n.len();
        let n0_limb = self.n.first().copied().unwrap_or(0);
        let mut acc = 0u64;
        for c in 0..limbs {
            acc += products(limbs - 1 - c, 0, c + 1);
            acc += dot(m.get(..c), self.n_rev.get(limbs - 1 - c..));
            let mc = acc.wrapping_mul(n0) & m_mask;
            if let Some(slot) = m.get_mut(c) {
                *slot = mc;
            }
            acc = (acc + mc * n0_limb) >> w;
        }
        for (c, o) in (limbs..2 * limbs).zip(out.iter_mut()) {
            let lo = c + 1 - limbs;
            acc += products(0, lo, limbs);
            acc += dot(m.get(lo..), self.n_rev.get(..));
            *o = acc & m_mask;
            acc >>= w;
        }
    }
}

/// `sum x[i] * y[i]` over the shorter of the two (an absent slice is empty), four products a
/// step.
#[inline(always)]
fn dot(x: Option<&[u64]>, y: Option<&[u64]>) -> u64 {
    let (x, y) = (x.unwrap_or_default(), y.unwrap_or_default());
    let len = x.len().min(y.len());
    let (x, y) = (
        x.get(..len).unwrap_or_default(),
        y.get(..len).unwrap_or_default(),
    );
    let (xs, ys) = (x.chunks_exact(4), y.chunks_exact(4));
    let tail = xs
        .remainder()
        .iter()
        .zip(ys.remainder())
        .fold(0u64, |sum, (a, b)| sum + a * b);
    xs.zip(ys).fold(tail, |sum, (a, b)| match (a, b) {
        (&[a0, a1, a2, a3], &[b0, b1, b2, b3]) => sum + a0 * b0 + a1 * b1 + a2 * b2 + a3 * b3,
        _ => sum,
    })
}

/// The limb width and count for a modulus of `bits` bits: the widest limbs (at most
/// [`MAX_LIMB_BITS`]) with `R = 2^(w * limbs) >= 4 * 2^bits` (so numbers below `2n` stay
/// below `2n` through a Montgomery product, with no subtraction between products) and no
/// column sum able to overflow: a column collects at most `2 * limbs` products below `2^(2w)`
/// (up to `limbs` of `x * y`, a doubled cross product counted twice, and up to `limbs` of
/// `m * n`) and the previous column's carry below `2^(64 - w)`; the bound below allows two more
/// products and two carries. 28 bits for up to 3,526-bit moduli, 26 at 16,384.
fn limb_width(bits: usize) -> (u32, usize) {
    let fits = |w: u32| {
        let limbs = (bits + 2).div_ceil(w as usize);
        let worst = ((2 * limbs as u128 + 2) << (2 * w)) + (1u128 << (65 - w));
        (worst <= u128::from(u64::MAX)).then_some((w, limbs))
    };
    (16..=MAX_LIMB_BITS)
        .rev()
        .find_map(fits)
        .unwrap_or((16, (bits + 2).div_ceil(16)))
}

fn mask(w: u32) -> u64 {
    (1u64 << w) - 1
}

/// `x -= y` for limbs of `w` bits, `x >= y`.
fn sub_in_place(x: &mut [u64], y: &[u64], w: u32) {
    let mut borrow = 0u64;
    for (l, &r) in x.iter_mut().zip(y) {
        let v = l.wrapping_sub(r).wrapping_sub(borrow);
        *l = v & mask(w);
        borrow = v >> 63;
    }
}

/// Compares two numbers of the same limb count (limbs below `2^w`).
fn compare(x: &[u64], y: &[u64]) -> std::cmp::Ordering {
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

/// A big-endian number (which must fit) as `limbs` limbs of `w` bits.
fn limbs_from_be(bytes: &[u8], w: u32, limbs: usize) -> Vec<u64> {
    let mut out = vec![0u64; limbs];
    limbs_from_be_into(&mut out, bytes, w);
    out
}

fn limbs_from_be_into(out: &mut [u64], bytes: &[u8], w: u32) {
    let (mut acc, mut have) = (0u64, 0u32);
    let mut limbs = out.iter_mut();
    for &b in bytes.iter().rev() {
        acc |= u64::from(b) << have;
        have += 8;
        if have >= w {
            if let Some(l) = limbs.next() {
                *l = acc & mask(w);
            }
            acc >>= w;
            have -= w;
        }
    }
    for l in limbs {
        *l = acc;
        acc = 0;
    }
}

/// `limbs` of `w` bits as `len` big-endian bytes (the number must fit).
fn limbs_to_be(limbs: &[u64], w: u32, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    let (mut acc, mut have) = (0u64, 0u32);
    let mut limbs = limbs.iter();
    for byte in out.iter_mut().rev() {
        if have < 8 {
            acc |= limbs.next().copied().unwrap_or(0) << have;
            have += w;
        }
        *byte = acc as u8;
        acc >>= 8;
        have -= 8;
    }
    out
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
