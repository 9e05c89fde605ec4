//! Decimal text to the nearest `f64`, ties to even: the conversion protobuf's JSON parser makes
//! (correctly rounded, as `strtod`) for every number of a token's header and payload and of a
//! JWKS document, which `jwt_json` mirrors; and the read-back test of `jwt_json::proto_double`.
//!
//! It exists for module size: the standard library's `f64::from_str` brings a 10 KB table of
//! powers of five and its Eisel-Lemire and decimal-sequence code (about 16 KB of module) for a
//! conversion meshguard makes only here. A number of at most 15 significant digits with a
//! decimal exponent within ±22 (every timestamp, every usual claim) takes Clinger's fast path:
//! one exact integer and one correctly rounded multiplication or division by an exact power of
//! ten. Any other starts from an approximation within a few units in the last place, corrected by
//! comparing the decimal value exactly (big integers of 32-bit limbs) with the midpoints between
//! neighbouring doubles. The tests compare it with `f64::from_str` on edge cases and on random
//! numbers of every length and exponent.

use std::cmp::Ordering;

/// Significant digits kept; any further digit only tells whether the value lies above the kept
/// ones (enough: a midpoint between two doubles has at most 768 significant digits, so a value
/// cut after 800 digits is on the same side of every midpoint as the whole value, or on one).
const MAX_DIGITS: usize = 800;

/// The largest power of five that fits a limb.
const FIVE_13: u64 = 1_220_703_125;

/// `text` (JSON's number grammar: `-? digits (. digits)? ([eE] [+-]? digits)?`, leading zeros
/// accepted) as the nearest double, infinite beyond `f64::MAX`'s rounding range; `None` if
/// `text` is not a number of that form.
pub fn parse(text: &[u8]) -> Option<f64> {
    let (negative, rest) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    let signed = |x: f64| if negative { -x } else { x };
    let (mantissa, exponent) = match rest.iter().position(|c| matches!(c, b'e' | b'E')) {
        Some(at) => (rest.get(..at)?, Some(rest.get(at + 1..)?)),
        None => (rest, None),
    };
    let (int, frac) = match mantissa.iter().position(|&c| c == b'.') {
        Some(at) => (mantissa.get(..at)?, mantissa.get(at + 1..)?),
        None => (mantissa, &[][..]),
    };
    if int.is_empty() || (mantissa.len() > int.len() && frac.is_empty()) {
        return None;
    }
    // The value is D x 10^exp10, D the integer the mantissa's digits spell (the point removed):
    // `count` significant digits, the first 19 of them in `m`.
    let mut count: i64 = 0;
    let mut m = 0u64;
    for &c in int.iter().chain(frac) {
        if !c.is_ascii_digit() {
            return None;
        }
        if count > 0 || c != b'0' {
            count += 1;
            if count <= 19 {
                m = m * 10 + u64::from(c - b'0');
            }
        }
    }
    let exponent = match exponent {
        Some(exponent) => parse_exponent(exponent)?,
        None => 0,
    };
    let exp10 = exponent.saturating_sub(i64::try_from(frac.len()).ok()?);
    if count == 0 || count.saturating_add(exp10) < -324 {
        return Some(signed(0.0));
    }
    if count.saturating_add(exp10) > 310 {
        return Some(signed(f64::INFINITY));
    }
    if count <= 15 && (-22..=22).contains(&exp10) {
        // No allocation on this path (every timestamp takes it).
        let power = exact_power_of_ten(exp10.unsigned_abs());
        let m = m as f64;
        return Some(signed(if exp10 < 0 { m / power } else { m * power }));
    }
    slow(int, frac, exp10, count).map(signed)
}

/// The digits kept (the first [`MAX_DIGITS`] significant ones, trailing zeros removed) and
/// [`nearest`]'s answer for them.
#[inline(never)]
fn slow(int: &[u8], frac: &[u8], exp10: i64, count: i64) -> Option<f64> {
    let mut digits: Vec<u8> = Vec::new();
    let mut sticky = false;
    for &c in int.iter().chain(frac).skip_while(|&&c| c == b'0') {
        if digits.len() < MAX_DIGITS {
            digits.push(c - b'0');
        } else {
            sticky |= c != b'0';
        }
    }
    let mut exp10 = exp10 + count - i64::try_from(digits.len()).ok()?;
    while digits.last() == Some(&0) {
        digits.pop();
        exp10 += 1;
    }
    nearest(&digits, exp10, sticky)
}

/// The exponent's digits after `e`, with their sign, saturated far beyond any double's range.
fn parse_exponent(text: &[u8]) -> Option<i64> {
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, text),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let value = digits.iter().fold(0i64, |e, &d| {
        e.saturating_mul(10)
            .saturating_add(i64::from(d - b'0'))
            .min(1_000_000)
    });
    Some(if negative { -value } else { value })
}

/// 10^n, exact for n <= 22 (5^22 < 2^53).
fn exact_power_of_ten(n: u64) -> f64 {
    (0..n).fold(1.0, |p, _| p * 10.0)
}

/// The double nearest to `digits` x 10^`exp10` (plus a little when `sticky`), positive.
fn nearest(digits: &[u8], exp10: i64, sticky: bool) -> Option<f64> {
    let value = Decimal::new(digits, exp10, sticky);
    // The approximation: the first 19 digits, scaled by powers of ten (each step rounds once).
    let kept = digits.len().min(19);
    let m = digits
        .iter()
        .take(kept)
        .fold(0u64, |m, &d| m * 10 + u64::from(d));
    let mut scale = exp10 + i64::try_from(digits.len() - kept).ok()?;
    let mut approx = m as f64;
    while scale != 0 {
        let step = scale.unsigned_abs().min(22);
        let power = exact_power_of_ten(step);
        if scale < 0 {
            approx /= power;
            scale += i64::try_from(step).ok()?;
        } else {
            approx *= power;
            scale -= i64::try_from(step).ok()?;
        }
    }
    let mut bits = approx.min(f64::MAX).to_bits();
    // Step to the double whose rounding interval holds the value; a few steps at most.
    for _ in 0..4096 {
        if bits >= f64::INFINITY.to_bits() {
            return Some(f64::INFINITY);
        }
        match value.cmp_midpoint_above(bits) {
            Ordering::Greater => {
                bits += 1;
                continue;
            }
            Ordering::Equal if bits & 1 == 1 => {
                bits += 1;
                continue;
            }
            _ => {}
        }
        if bits == 0 {
            return Some(0.0);
        }
        match value.cmp_midpoint_above(bits - 1) {
            Ordering::Less => {
                bits -= 1;
                continue;
            }
            Ordering::Equal if bits & 1 == 1 => {
                bits -= 1;
                continue;
            }
            _ => {}
        }
        return Some(f64::from_bits(bits));
    }
    None
}

/// A decimal value `digits` x 10^`exp10` as the exact fraction `scaled` x 2^`twos` /
/// 5^`fives`, for comparisons with binary midpoints.
struct Decimal {
    /// digits x 5^max(exp10, 0).
    scaled: Vec<u32>,
    /// max(exp10, 0).
    twos: i64,
    /// 5^max(-exp10, 0), the midpoint's multiplier.
    fives: Vec<u32>,
    /// max(-exp10, 0).
    twos_right: i64,
    sticky: bool,
}

impl Decimal {
    fn new(digits: &[u8], exp10: i64, sticky: bool) -> Self {
        let mut scaled = vec![0u32];
        for chunk in digits.chunks(9) {
            let mut factor = 1u64;
            let mut add = 0u64;
            for &d in chunk {
                factor *= 10;
                add = add * 10 + u64::from(d);
            }
            mul_add(&mut scaled, factor, add);
        }
        let mut fives = vec![1u32];
        if exp10 >= 0 {
            mul_pow5(&mut scaled, exp10.unsigned_abs());
        } else {
            mul_pow5(&mut fives, exp10.unsigned_abs());
        }
        Decimal {
            scaled,
            twos: exp10.max(0),
            fives,
            twos_right: (-exp10).max(0),
            sticky,
        }
    }

    /// The value against the midpoint between the finite non-negative double of `bits` and
    /// the next one up: (2M + 1) x 2^(k - 1) for the double M x 2^k.
    fn cmp_midpoint_above(&self, bits: u64) -> Ordering {
        let biased = i64::try_from(bits >> 52).unwrap_or(0);
        let fraction = bits & ((1 << 52) - 1);
        let (m, k) = if biased == 0 {
            (fraction, -1074)
        } else {
            (fraction | (1 << 52), biased - 1075)
        };
        let mut left = self.scaled.clone();
        let mut right = self.fives.clone();
        mul_add(&mut right, 2 * m + 1, 0);
        let right_twos = k - 1 + self.twos_right;
        if self.twos > right_twos {
            shift_left(&mut left, (self.twos - right_twos).unsigned_abs());
        } else {
            shift_left(&mut right, (right_twos - self.twos).unsigned_abs());
        }
        match compare(&left, &right) {
            Ordering::Equal if self.sticky => Ordering::Greater,
            order => order,
        }
    }
}

/// `n` = `n` x `factor` + `add` (little-endian limbs).
pub(crate) fn mul_add(n: &mut Vec<u32>, factor: u64, add: u64) {
    let mut carry = u128::from(add);
    for limb in n.iter_mut() {
        let product = u128::from(*limb) * u128::from(factor) + carry;
        *limb = product as u32;
        carry = product >> 32;
    }
    while carry != 0 {
        n.push(carry as u32);
        carry >>= 32;
    }
}

/// `n` = `n` x 5^`power`.
fn mul_pow5(n: &mut Vec<u32>, mut power: u64) {
    while power >= 13 {
        mul_add(n, FIVE_13, 0);
        power -= 13;
    }
    mul_add(n, 5u64.pow(u32::try_from(power).unwrap_or(0)), 0);
}

/// `n` = `n` x 2^`bits`.
pub(crate) fn shift_left(n: &mut Vec<u32>, bits: u64) {
    let limbs = usize::try_from(bits / 32).unwrap_or(0);
    let bits = bits % 32;
    if bits != 0 {
        let mut carry = 0u32;
        for limb in n.iter_mut() {
            let shifted = (u64::from(*limb) << bits) | u64::from(carry);
            *limb = shifted as u32;
            carry = (shifted >> 32) as u32;
        }
        if carry != 0 {
            n.push(carry);
        }
    }
    n.splice(0..0, std::iter::repeat_n(0, limbs));
}

fn compare(a: &[u32], b: &[u32]) -> Ordering {
    let significant = |n: &[u32]| n.iter().rposition(|&l| l != 0).map_or(0, |at| at + 1);
    let (a, b) = (
        a.get(..significant(a)).unwrap_or(a),
        b.get(..significant(b)).unwrap_or(b),
    );
    a.len()
        .cmp(&b.len())
        .then_with(|| a.iter().rev().cmp(b.iter().rev()))
}

#[cfg(test)]
mod tests {
    use super::parse;

    fn agrees(text: &str) {
        let expected: f64 = text.parse().unwrap();
        let got = parse(text.as_bytes()).unwrap();
        assert_eq!(
            got.to_bits(),
            expected.to_bits(),
            "{text}: {got:e} instead of {expected:e}"
        );
    }

    #[test]
    fn edge_cases_round_as_the_standard_library() {
        for text in [
            "0",
            "-0",
            "0.0",
            "-0.0e10",
            "1",
            "-1",
            "1700000000",
            "9007199254740992",
            "9007199254740993",
            "9007199254740995",
            "18446744073709551615",
            "18446744073709551616",
            "0.1",
            "0.30000000000000004",
            "0.33333333333333331",
            "123456789012345678901234567890",
            "1e22",
            "1e23",
            "8.98846567431158e307",
            "1.7976931348623157e308",
            "1.7976931348623158e308",
            "1.7976931348623159e308",
            "1.797693134862315807e308",
            "1e308",
            "1e309",
            "2e308",
            "2.2250738585072014e-308",
            "2.2250738585072011e-308",
            "2.225073858507201136057409796709131975934819546351645648e-308",
            "4.9406564584124654e-324",
            "2.4703282292062327e-324",
            "2.4703282292062328e-324",
            "2.4703282292062327208828439643411068618252990130716238221279284125033775364e-324",
            "1e-324",
            "3e-324",
            "1e-400",
            "1e400",
            "1e-2147483649",
            "1e2147483648",
            "0.000000000000000000000000000000000001",
            "7.2057594037927933e16",
            "1.00000000000000011102230246251565404236316680908203125",
            "1.00000000000000011102230246251565404236316680908203124",
            "1.00000000000000011102230246251565404236316680908203126",
            "1152921504606847104",
            "1152921504606847105",
            "1152921504606847232",
            "1152921504606847360",
            "5e-324",
            "1.5e-323",
        ] {
            agrees(text);
        }
    }

    #[test]
    fn halfway_between_doubles_rounds_to_even_past_800_digits() {
        // 2^-1075 * 3 exactly (between the two smallest subnormals), then one more digit far out.
        let third = "7.4109846876186981626485318930233205854758970392148714663837852375101326\
                     090531312779794975454245398856969484704316857659638998506553390969459816\
                     219401617281718945106978546710679176872575177347315553307795408549809608\
                     457500958111373034747658096871009590975442271004757307809711118935784838\
                     675653998783503015228055934046593739791790738723868299395818481660169122\
                     019456499931289798411362062484498678713572180352209017023903285791732520\
                     220528974020802906854021606612375549983402671300035812486479041385743401\
                     875520901590172592547146296175134159774938718574737870961645638908718119\
                     841271673056017045493004705269590165763776884908267986972573366521765567\
                     941072508764337560846003984904972149117463085539556354188641513168478436\
                     313080237596295773983001708984375e-324";
        agrees(third);
        agrees(&third.replace("75e-324", "7500000000000000000000001e-324"));
        agrees(&format!("0.{}1", "0".repeat(900)));
        agrees(&format!("1{}", "0".repeat(308)));
        agrees(&format!("1{}", "0".repeat(309)));
        agrees(&format!("9007199254740993.{}1", "0".repeat(1000)));
        agrees(&format!("9007199254740993{}e-1000", "0".repeat(1000)));
    }

    #[test]
    fn random_numbers_of_every_length_and_exponent_round_as_the_standard_library() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let length = 1 + (next() % 40) as usize;
            let digits: String = (0..length)
                .map(|_| char::from(b'0' + (next() % 10) as u8))
                .collect();
            let exponent = (next() % 700) as i64 - 350;
            let point = (next() % (length as u64 + 1)) as usize;
            let (int, frac) = digits.split_at(point);
            let int = if int.is_empty() { "0" } else { int };
            let text = if frac.is_empty() {
                format!("{int}e{exponent}")
            } else {
                format!("{int}.{frac}e{exponent}")
            };
            agrees(&text);
            // Doubles printed with 17 digits and with one digit changed: near midpoints.
            let double = f64::from_bits(next() >> 1);
            if double.is_finite() {
                let printed = format!("{double:.16e}");
                agrees(&printed);
                agrees(&format!("{double:.25e}"));
            }
        }
    }

    #[test]
    fn text_outside_the_json_number_grammar_is_refused() {
        for text in [
            "", "-", ".5", "5.", "1e", "1e+", "+1", "1.2.3", "0x10", "1e5.5", "inf", "1 ",
        ] {
            assert_eq!(parse(text.as_bytes()), None, "{text}");
        }
    }
}
