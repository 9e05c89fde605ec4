//! The inverse modulo an odd modulus by the binary extended Euclidean algorithm, written once
//! over the arithmetic it needs ([`OddModulus`]): what `p256_verify` (`s^-1 mod n`) and
//! `meshguard-crypto-p384`'s `p384_verify` (`s^-1 mod n` and its field inversion mod p) share,
//! with the two comparisons of little-endian 32-bit limbs every curve module uses ([`is_zero`],
//! [`less`]).
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

/// Numbers of `BITS` bits and the arithmetic modulo an odd `m > 1` (below `2^BITS`) that
/// [`inverse`] runs on.
pub trait OddModulus {
    /// A number below `2^BITS`, in a representation where equal numbers compare equal.
    type Element: Copy + PartialEq;
    const BITS: usize;
    const ZERO: Self::Element;
    const ONE: Self::Element;
    /// `m`.
    fn modulus(&self) -> Self::Element;
    fn is_zero(&self, a: &Self::Element) -> bool;
    fn is_even(&self, a: &Self::Element) -> bool;
    /// `a < b`.
    fn less(&self, a: &Self::Element, b: &Self::Element) -> bool;
    /// `a / 2` for an even `a` (any number of `BITS` bits).
    fn half(&self, a: &Self::Element) -> Self::Element;
    /// `a / 2 mod m` for `a < m`.
    fn half_mod(&self, a: &Self::Element) -> Self::Element;
    /// `a - b mod m` for `b <= a` (then `a - b`), or for `a, b < m`.
    fn sub_mod(&self, a: &Self::Element, b: &Self::Element) -> Self::Element;
}

/// `a^-1 mod m` by the binary extended Euclidean algorithm (variable time: `a` is public). `a`
/// may be any number of `BITS` bits: one at or above `m` gives the inverse of `a mod m`; the
/// result is 0 when `a mod m` is 0 or has no inverse. Invariants: `x1 a = u` and
/// `x2 a = v (mod m)`, `x1, x2 < m`, `gcd(u, v) = gcd(a, m)`.
pub fn inverse<M: OddModulus>(m: &M, a: &M::Element) -> M::Element {
    let (mut u, mut v) = (*a, m.modulus());
    let (mut x1, mut x2) = (M::ONE, M::ZERO);
    // Each round halves u or v at least once (after the first, both are odd and one of them is
    // replaced by their even difference): 2 BITS rounds bound the loop.
    for _ in 0..2 * M::BITS + 2 {
        if u == M::ONE {
            return x1;
        }
        if v == M::ONE {
            return x2;
        }
        if m.is_zero(&u) || m.is_zero(&v) {
            break;
        }
        while m.is_even(&u) {
            u = m.half(&u);
            x1 = m.half_mod(&x1);
        }
        while m.is_even(&v) {
            v = m.half(&v);
            x2 = m.half_mod(&x2);
        }
        if m.less(&u, &v) {
            v = m.sub_mod(&v, &u);
            x2 = m.sub_mod(&x2, &x1);
        } else {
            u = m.sub_mod(&u, &v);
            x1 = m.sub_mod(&x1, &x2);
        }
    }
    M::ZERO
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Numbers below 2^96 in a `u128`, modulo `.0`: an [`OddModulus`] with an independent
    /// reference (Fermat) for the tests.
    struct Small(u128);

    impl OddModulus for Small {
        type Element = u128;
        const BITS: usize = 96;
        const ZERO: u128 = 0;
        const ONE: u128 = 1;
        fn modulus(&self) -> u128 {
            self.0
        }
        fn is_zero(&self, a: &u128) -> bool {
            *a == 0
        }
        fn is_even(&self, a: &u128) -> bool {
            a & 1 == 0
        }
        fn less(&self, a: &u128, b: &u128) -> bool {
            a < b
        }
        fn half(&self, a: &u128) -> u128 {
            a >> 1
        }
        fn half_mod(&self, a: &u128) -> u128 {
            if a & 1 == 0 {
                a >> 1
            } else {
                (a + self.0) >> 1
            }
        }
        fn sub_mod(&self, a: &u128, b: &u128) -> u128 {
            if a < b {
                a + self.0 - b
            } else {
                a - b
            }
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
                assert_eq!(inverse(&Small(m), &a), expected, "{a:#x} mod {m:#x}");
            }
        }
    }

    #[test]
    fn inverse_is_zero_without_an_inverse() {
        // 15 = 3 * 5 shares the factor 5 with 35; 2 * 18 = 36 = 1 mod 35.
        assert_eq!(inverse(&Small(35), &15), 0);
        assert_eq!(inverse(&Small(35), &2), 18);
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
