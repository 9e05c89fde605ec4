//! The inverse modulo an odd modulus of 32-bit limbs (little-endian) by the binary
//! extended Euclidean algorithm, written once over the steps it needs ([`OddModulus`]): what
//! `p256_verify` (`s^-1 mod n`) and `meshguard-crypto-p384`'s `p384_verify` (`s^-1 mod n` and
//! its field inversion mod p) share, with the two comparisons every curve module uses
//! ([`is_zero`], [`less`]) and the reading of a big-endian number into limbs
//! ([`from_be_bytes`]).
//!
//! Each curve implements [`OddModulus`] with its own arithmetic, so that [`inverse`] compiles
//! as if written for it: P-256's straight-line steps (ES256's speed, this crate's opt-level),
//! P-384's looped ones (its size, its crate's "s": generic code is compiled in the crate that
//! instantiates it, see `short_weierstrass`). The inverse is unique, so it is the `s^-1`
//! BoringSSL's `ECDSA_do_verify` computes (by whatever algorithm) for `u1` and `u2`. Everything
//! it is given is public (key, signature), so it runs in variable time.

/// `a == 0`.
#[inline]
pub fn is_zero<const L: usize>(a: &[u32; L]) -> bool {
    a.iter().all(|l| *l == 0)
}

/// `a < b`.
#[inline]
pub fn less<const L: usize>(a: &[u32; L], b: &[u32; L]) -> bool {
    a.iter().rev().cmp(b.iter().rev()) == std::cmp::Ordering::Less
}

/// Big-endian bytes of any length (leading zeros allowed) as an `L`-limb number, `None` when
/// the number needs more than `32 * L` bits.
pub fn from_be_bytes<const L: usize>(bytes: &[u8]) -> Option<[u32; L]> {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    let digits = bytes.get(first..)?;
    if digits.len() > 4 * L {
        return None;
    }
    let mut out = [0u32; L];
    for (limb, chunk) in out.iter_mut().zip(digits.rchunks(4)) {
        *limb = chunk.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b));
    }
    Some(out)
}

#[inline(always)]
fn is_even<const L: usize>(a: &[u32; L]) -> bool {
    a.first().is_some_and(|l| l & 1 == 0)
}

/// The arithmetic modulo an odd `m > 1` of `L` 32-bit limbs that [`inverse`] runs on.
pub trait OddModulus<const L: usize> {
    /// `m`.
    fn modulus(&self) -> [u32; L];
    /// `a / 2` for an even `a` (any number of `L` limbs).
    fn half(&self, a: &[u32; L]) -> [u32; L];
    /// `a / 2 mod m` for `a < m`.
    fn half_mod(&self, a: &[u32; L]) -> [u32; L];
    /// `a - b mod m` for `b <= a` (then `a - b`), or for `a, b < m`.
    fn sub_mod(&self, a: &[u32; L], b: &[u32; L]) -> [u32; L];
}

/// `a^-1 mod m` by the binary extended Euclidean algorithm (variable time: `a` is public). `a`
/// may be any number of `L` limbs: one at or above `m` gives the inverse of `a mod m`; the
/// result is 0 when `a mod m` is 0 or has no inverse. Invariants: `x1 a = u` and
/// `x2 a = v (mod m)`, `x1, x2 < m`, `gcd(u, v) = gcd(a, m)`.
pub fn inverse<const L: usize, M: OddModulus<L>>(m: &M, a: &[u32; L]) -> [u32; L] {
    let zero = [0u32; L];
    let one: [u32; L] = std::array::from_fn(|i| u32::from(i == 0));
    let (mut u, mut v) = (*a, m.modulus());
    let (mut x1, mut x2) = (one, zero);
    // Each round halves u or v at least once (after the first, both are odd and one of them is
    // replaced by their even difference): 2 * 32 L rounds bound the loop.
    for _ in 0..64 * L + 2 {
        if u == one {
            return x1;
        }
        if v == one {
            return x2;
        }
        if is_zero(&u) || is_zero(&v) {
            break;
        }
        while is_even(&u) {
            u = m.half(&u);
            x1 = m.half_mod(&x1);
        }
        while is_even(&v) {
            v = m.half(&v);
            x2 = m.half_mod(&x2);
        }
        if less(&u, &v) {
            v = m.sub_mod(&v, &u);
            x2 = m.sub_mod(&x2, &x1);
        } else {
            u = m.sub_mod(&u, &v);
            x1 = m.sub_mod(&x1, &x2);
        }
    }
    zero
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Numbers below 2^96 in three limbs, modulo `.0`, computed on `u128`s: an [`OddModulus`]
    /// for the tests, with an independent reference (Fermat).
    struct Small(u128);

    fn limbs(x: u128) -> [u32; 3] {
        [x as u32, (x >> 32) as u32, (x >> 64) as u32]
    }

    fn number(a: &[u32; 3]) -> u128 {
        a.iter()
            .rev()
            .fold(0, |acc, l| (acc << 32) | u128::from(*l))
    }

    impl OddModulus<3> for Small {
        fn modulus(&self) -> [u32; 3] {
            limbs(self.0)
        }
        fn half(&self, a: &[u32; 3]) -> [u32; 3] {
            limbs(number(a) >> 1)
        }
        fn half_mod(&self, a: &[u32; 3]) -> [u32; 3] {
            let a = number(a);
            limbs(if a & 1 == 0 {
                a >> 1
            } else {
                (a + self.0) >> 1
            })
        }
        fn sub_mod(&self, a: &[u32; 3], b: &[u32; 3]) -> [u32; 3] {
            let (a, b) = (number(a), number(b));
            limbs(if a < b { a + self.0 - b } else { a - b })
        }
    }

    /// `a^-1 mod m` by Fermat's little theorem, for a prime `m` below 2^64.
    fn fermat(a: u128, m: u128) -> u128 {
        let (mut base, mut e, mut acc) = (a % m, m - 2, 1u128);
        while e != 0 {
            if e & 1 == 1 {
                acc = acc * base % m;
            }
            base = base * base % m;
            e >>= 1;
        }
        acc
    }

    #[test]
    fn inverse_matches_fermat_below_at_and_above_the_modulus() {
        // 2^64 - 59 and 2^61 - 1 are prime; the inputs run over [0, 2^96), most of them above
        // the modulus, whose inverse is that of their residue.
        for m in [(1u128 << 64) - 59, (1u128 << 61) - 1] {
            let mut inputs = vec![0, 1, 2, m - 1, m, m + 1, 2 * m, (1 << 96) - 1];
            let mut a = 0u128;
            for i in 0..2000u128 {
                a = a
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407 + i)
                    % (1 << 96);
                inputs.push(a);
            }
            for a in inputs {
                let expected = if a % m == 0 { 0 } else { fermat(a, m) };
                assert_eq!(
                    number(&inverse(&Small(m), &limbs(a))),
                    expected,
                    "{a:#x} mod {m:#x}"
                );
            }
        }
    }

    #[test]
    fn inverse_is_zero_without_an_inverse() {
        // 15 = 3 * 5 shares the factor 5 with 35; 2 * 18 = 36 = 1 mod 35.
        assert_eq!(inverse(&Small(35), &limbs(15)), limbs(0));
        assert_eq!(inverse(&Small(35), &limbs(2)), limbs(18));
    }

    #[test]
    fn comparisons_read_the_most_significant_limb_first() {
        assert!(less(&[5u32, 1], &[0, 2]));
        assert!(!less(&[0u32, 2], &[5, 1]));
        assert!(!less(&[1u32, 1], &[1, 1]));
        assert!(is_zero(&[0u32; 4]));
        assert!(!is_zero(&[0u32, 0, 0, 1]));
    }
}
