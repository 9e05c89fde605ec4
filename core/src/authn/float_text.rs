//! Doubles as C's `printf` prints them with a precision: `%.Nf` ([`fixed`]) and the digits and
//! exponent of `%.Ne` ([`significant`]), correctly rounded with ties to even as glibc rounds.
//! `jwt_json::proto_double` (protobuf's `SimpleDtoa`, `%.15g`/`%.17g`) and the authenticator's
//! `std::to_string(double)` (`%f`) of claims copied to headers are built on them.
//!
//! It exists for module size: `format!("{:.N}")` and `format!("{:.Ne}")` link the standard
//! library's float formatting (Grisu with the Dragon4 fallback, exact and shortest modes, and its
//! 40-limb big integer: about 18 KB of module) for these few cold calls. Here a double m x 2^e is
//! written out exactly as a decimal, as far as the rounding needs it: the integer part by division
//! (at most 309 digits), then the fraction, n / 2^s with n below 2^s, nine digits at a time by
//! multiplying n by 10^9 (big integers of 32-bit limbs shared with `authn::decimal`), until the
//! digit after the last one kept is known, a flag telling whether any non-zero digit follows.
//! It is rounded there: up when what is cut off is above 5000..., to even when it is exactly
//! 5000... (a tie, only possible when the expansion ends there). The tests compare it with
//! `format!` and with the C library's `snprintf`.

use crate::authn::decimal::{mul_add, shift_left};

/// The decimal expansion of a finite |d| as far as a rounding needs it: `digits` (values 0-9, no
/// leading zero; none for zero or once rounded to zero) with the value 0.d1 d2 d3... x
/// 10^`point`, and `sticky` when non-zero digits follow the ones written out.
struct Digits {
    digits: Vec<u8>,
    point: i32,
    sticky: bool,
}

const BILLION: u64 = 1_000_000_000;

impl Digits {
    /// |d| written out until it has more than [`Self::keep`] digits (or all of them): the
    /// integer part by division, the fraction n / 2^s nine digits at a time by multiplication.
    fn new(d: f64, precision: i32, significant: bool) -> Digits {
        let bits = d.to_bits();
        let biased = i32::try_from((bits >> 52) & 0x7ff).unwrap_or(0);
        let fraction = bits & ((1 << 52) - 1);
        let (m, e) = if biased == 0 {
            (fraction, -1074)
        } else {
            (fraction | (1 << 52), biased - 1075)
        };
        let s = (-e).max(0).unsigned_abs();
        let mut n = Digits {
            digits: Vec::new(),
            point: 0,
            sticky: false,
        };
        let mut int = vec![1u32];
        mul_add(&mut int, m.checked_shr(s).unwrap_or(0), 0);
        shift_left(&mut int, u64::from(e.max(0).unsigned_abs()));
        // Nine decimal digits at a time, least significant first.
        let mut chunks = Vec::new();
        while int.iter().any(|&limb| limb != 0) {
            let mut rest = 0u64;
            for limb in int.iter_mut().rev() {
                let current = (rest << 32) | u64::from(*limb);
                *limb = u32::try_from(current / BILLION).unwrap_or(0);
                rest = current % BILLION;
            }
            chunks.push(rest);
        }
        for &chunk in chunks.iter().rev() {
            n.push_nine(chunk, false);
        }
        n.point = i32::try_from(n.digits.len()).unwrap_or(0);
        // The fraction: below 2^s, times 10^9 it is below 10^9 x 2^s, so its bits from s
        // on (two limbs at most) are the next nine digits.
        let (low, r) = (usize::try_from(s / 32).unwrap_or(0), s % 32);
        let mut frac = vec![1u32];
        mul_add(
            &mut frac,
            m & 1u64.checked_shl(s).map_or(u64::MAX, |bit| bit - 1),
            0,
        );
        frac.resize(low + 1, 0);
        while frac.iter().any(|&limb| limb != 0)
            && i32::try_from(n.digits.len()).unwrap_or(i32::MAX) <= n.keep(precision, significant)
        {
            mul_add(&mut frac, BILLION, 0);
            let high = u64::from(frac.get(low + 1).copied().unwrap_or(0)) << 32;
            let chunk = (high | u64::from(frac.get(low).copied().unwrap_or(0))) >> r;
            frac.truncate(low + 1);
            if let Some(limb) = frac.last_mut() {
                *limb &= (1 << r) - 1;
            }
            n.push_nine(chunk, true);
        }
        n.sticky = frac.iter().any(|&limb| limb != 0);
        n
    }

    /// Appends the nine digits of `chunk`; in the fraction, zeros before the first digit move
    /// the point down.
    fn push_nine(&mut self, chunk: u64, fraction: bool) {
        let mut power = BILLION / 10;
        while power > 0 {
            let digit = chunk / power % 10;
            if digit != 0 || !self.digits.is_empty() {
                self.digits.push(u8::try_from(digit).unwrap_or(0));
            } else if fraction {
                self.point -= 1;
            }
            power /= 10;
        }
    }

    /// How many digits a rounding keeps: `precision` significant ones, or the integer digits
    /// and `precision` decimals.
    fn keep(&self, precision: i32, significant: bool) -> i32 {
        if significant {
            precision
        } else {
            self.point.saturating_add(precision)
        }
    }

    /// Keeps the first `keep` digits (none when `keep` <= 0), rounding half to even.
    fn round(&mut self, keep: i32) {
        let Ok(at) = usize::try_from(keep) else {
            self.digits.clear();
            return;
        };
        let Some((&first, rest)) = self
            .digits
            .split_at_checked(at)
            .and_then(|(_, t)| t.split_first())
        else {
            return;
        };
        let odd = self
            .digits
            .get(at.wrapping_sub(1))
            .is_some_and(|d| d % 2 == 1);
        let up = first > 5 || (first == 5 && (odd || self.sticky || rest.iter().any(|&d| d != 0)));
        self.digits.truncate(at);
        if !up {
            return;
        }
        while self.digits.last() == Some(&9) {
            self.digits.pop();
        }
        match self.digits.last_mut() {
            Some(last) => *last += 1,
            None => {
                // 9...9 (or nothing) rounded up: 1 one place higher.
                self.digits.push(1);
                self.point += 1;
            }
        }
    }

    /// The digit at `i` places after the point (negative: before it), 0 past the kept digits.
    fn at(&self, i: i32) -> char {
        let digit = usize::try_from(i + self.point - 1)
            .ok()
            .and_then(|i| self.digits.get(i))
            .copied()
            .unwrap_or(0);
        char::from(b'0' + digit)
    }
}

/// `%.{decimals}f` of a finite `d`: `-` for any negative (`-0.000000`), at least one integer digit.
pub fn fixed(d: f64, decimals: usize) -> String {
    let decimals = i32::try_from(decimals).unwrap_or(i32::MAX).min(1100);
    let mut n = Digits::new(d, decimals, false);
    n.round(n.keep(decimals, false));
    let mut out = String::new();
    if d.is_sign_negative() {
        out.push('-');
    }
    let integer_digits = if n.digits.is_empty() {
        1
    } else {
        n.point.max(1)
    };
    for i in 1 - integer_digits..=0 {
        out.push(n.at(i));
    }
    if decimals > 0 {
        out.push('.');
        for i in 1..=decimals {
            out.push(n.at(i));
        }
    }
    out
}

/// `%.{precision - 1}e` of a finite `d` as its parts: the sign, `precision` significant digits
/// (ASCII, zeros when `d` is zero) and the decimal exponent of the first one.
pub fn significant(d: f64, precision: usize) -> (bool, String, i32) {
    let precision = i32::try_from(precision).unwrap_or(i32::MAX).clamp(1, 1100);
    let mut n = Digits::new(d, precision, true);
    n.round(precision);
    let exponent = if n.digits.is_empty() { 0 } else { n.point - 1 };
    let mut digits = String::new();
    for i in 1..=precision {
        digits.push(n.at(i - n.point));
    }
    (d.is_sign_negative(), digits, exponent)
}

/// The random inputs of the formatting tests: doubles of five shapes in turn (any bits, binary
/// fractions, short decimals, moderate exponents, subnormals) with the bits they came from, from
/// a xorshift generator seeded with `seed`.
#[cfg(test)]
pub(crate) fn sample_doubles(seed: u64) -> impl Iterator<Item = (u64, f64)> {
    let mut state = seed;
    (0u32..).map(move |i| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let bits = state;
        let d = match i % 5 {
            0 => f64::from_bits(bits),
            1 => (bits >> 11) as f64 / (1u64 << (bits % 60)) as f64,
            2 => (bits % 10_000_000) as f64 / 1000.0,
            3 => f64::from_bits((bits & 0x800f_ffff_ffff_ffff) | ((1000 + bits % 90) << 52)),
            _ => f64::from_bits(bits & 0x800f_ffff_ffff_ffff),
        };
        (bits, d)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `significant` spelled as `format!("{:.Ne}")` spells it (`1.50e-7`, `2e0`).
    fn as_rust_exp(d: f64, precision: usize) -> String {
        let (negative, digits, exponent) = significant(d, precision);
        let (first, rest) = digits.split_at(1);
        let point = if rest.is_empty() { "" } else { "." };
        let sign = if negative { "-" } else { "" };
        format!("{sign}{first}{point}{rest}e{exponent}")
    }

    fn check(d: f64, decimals: usize, precision: usize) {
        assert_eq!(
            fixed(d, decimals),
            format!("{d:.decimals$}"),
            "{d:e} ({:#x}) %.{decimals}f",
            d.to_bits()
        );
        assert_eq!(
            as_rust_exp(d, precision),
            format!("{d:.*e}", precision - 1),
            "{d:e} ({:#x}) %.{}e",
            d.to_bits(),
            precision - 1
        );
    }

    const EDGES: [f64; 40] = [
        0.0,
        -0.0,
        5e-324,
        -5e-324,
        2.225_073_858_507_201e-308,
        2.225_073_858_507_201_4e-308,
        f64::MIN_POSITIVE,
        f64::MAX,
        f64::MIN,
        f64::EPSILON,
        0.5,
        1.5,
        2.5,
        -2.5,
        3.5,
        0.125,
        0.375,
        0.05,
        0.15,
        0.25,
        9.5,
        99.5,
        999.999_999_5,
        0.999_999_9,
        1e21,
        1e22,
        1e23,
        1e-7,
        1e-5,
        1e15 + 0.25,
        1e15 + 0.75,
        123_456_789_012.5,
        0.1,
        1.0 / 3.0,
        2.0 / 3.0,
        9_007_199_254_740_993.0,
        18_446_744_073_709_551_616.0,
        1.797_693_134_862_315_7e308,
        4_503_599_627_370_495.5,
        0.000_123_456_789_012_345_67,
    ];

    #[test]
    fn edge_cases_print_as_format_prints_them() {
        let powers = (-1074..=1023).map(|e| 2f64.powi(e));
        let tens = (-323..=308).map(|e| format!("1e{e}").parse::<f64>().unwrap());
        for d in EDGES.into_iter().chain(powers).chain(tens) {
            for (decimals, precision) in [
                (0, 1),
                (1, 2),
                (2, 6),
                (6, 15),
                (17, 17),
                (20, 21),
                (40, 40),
            ] {
                check(d, decimals, precision);
            }
        }
    }

    #[test]
    fn halfway_cases_round_to_even_as_printf_does() {
        assert_eq!(fixed(0.5, 0), "0");
        assert_eq!(fixed(1.5, 0), "2");
        assert_eq!(fixed(2.5, 0), "2");
        assert_eq!(fixed(-2.5, 0), "-2");
        assert_eq!(fixed(0.125, 2), "0.12");
        assert_eq!(fixed(0.375, 2), "0.38");
        // not a tie: 0.15 is 0.1499999999999999944...
        assert_eq!(fixed(0.15, 1), "0.1");
        assert_eq!(fixed(9.5, 0), "10");
        assert_eq!(fixed(-1e-300, 6), "-0.000000");
        assert_eq!(fixed(0.0, 0), "0");
        assert_eq!(significant(2.5, 1), (false, "2".to_string(), 0));
        assert_eq!(significant(9.96, 2), (false, "10".to_string(), 1));
        assert_eq!(significant(-0.0, 3), (true, "000".to_string(), 0));
    }

    #[test]
    fn random_doubles_print_as_format_prints_them() {
        for (bits, d) in sample_doubles(0x2545_f491_4f6c_dd1d).take(100_000) {
            if d.is_finite() {
                let choice = usize::try_from(bits.rotate_left(29) % 24).unwrap();
                check(d, choice, choice % 18 + 1);
            }
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn random_doubles_print_as_the_c_library_prints_them() {
        use std::ffi::{c_char, c_int, CStr};
        extern "C" {
            fn snprintf(buf: *mut c_char, size: usize, format: *const c_char, ...) -> c_int;
        }
        let printf = |format: &CStr, precision: c_int, d: f64| {
            let mut buf = [0 as c_char; 400];
            // SAFETY: `%.*e` with at most 24 digits needs about 32 bytes, `%.*f` with at most 23
            // decimals of a double below 1e300 at most 325: within the 400 bytes.
            unsafe { snprintf(buf.as_mut_ptr(), buf.len(), format.as_ptr(), precision, d) };
            // SAFETY: snprintf always writes a terminating NUL within `size`.
            unsafe { CStr::from_ptr(buf.as_ptr()) }
                .to_str()
                .unwrap()
                .to_string()
        };
        for (bits, d) in sample_doubles(0x9e37_79b9_7f4a_7c15).take(50_000) {
            if !d.is_finite() || d.abs() >= 1e300 {
                continue;
            }
            let precision = c_int::try_from(bits.rotate_left(29) % 24).unwrap();
            let decimals = usize::try_from(precision).unwrap();
            assert_eq!(
                fixed(d, decimals),
                printf(c"%.*f", precision, d),
                "{d:e} %.{precision}f"
            );
            let (negative, digits, exponent) = significant(d, decimals + 1);
            let (first, rest) = digits.split_at(1);
            let ours = format!(
                "{}{first}{}{rest}e{}{:02}",
                if negative { "-" } else { "" },
                if rest.is_empty() { "" } else { "." },
                if exponent < 0 { '-' } else { '+' },
                exponent.unsigned_abs()
            );
            assert_eq!(ours, printf(c"%.*e", precision, d), "{d:e} %.{precision}e");
        }
    }
}
