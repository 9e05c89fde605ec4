//! `decimal`: meshguard's decimal-to-double conversion (`authn::decimal`, what the token and JWKS
//! parser uses for every number) against the standard library's `f64::from_str`, the correctly
//! rounded reference it replaced.
//!
//! Each input is read twice:
//! * as raw text: whatever `decimal::parse` accepts must be a number `f64::from_str` reads to the
//!   same bits (the standard library accepts more: `inf`, `+1`, `.5`, `1.`, which JSON refuses);
//! * shaped into JSON's number grammar (sign, integer digits, fraction digits, exponent with its
//!   sign, lengths and digits taken from the bytes, long runs of 9s and 0s and exponents near the
//!   limits of `f64` made likely): both must accept it and agree on the bits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshguard_core::authn::decimal;

fuzz_target!(|data: &[u8]| {
    if let Some(ours) = decimal::parse(data) {
        let text = std::str::from_utf8(data).expect("an accepted number is ASCII");
        let reference: f64 = text.parse().expect("an accepted number is a number");
        assert_eq!(ours.to_bits(), reference.to_bits(), "raw {text:?}");
    }
    let text = shape(data);
    let reference: f64 = text.parse().expect("a shaped number is a number");
    let ours = decimal::parse(text.as_bytes());
    assert_eq!(ours.map(f64::to_bits), Some(reference.to_bits()), "shaped {text:?}");
});

/// `data` as a number of JSON's grammar: the first bytes choose the sign, the lengths of the
/// integer and fraction parts, how digits are drawn and the exponent; the rest are the digits.
fn shape(data: &[u8]) -> String {
    let mut bytes = data.iter().copied();
    let mut next = || bytes.next().unwrap_or(0);
    let flags = next();
    let int_len = usize::from(next() % 40) + 1;
    let frac_len = if flags & 2 != 0 { usize::from(next()) * 4 % 900 } else { 0 };
    let exponent = if flags & 4 != 0 { i32::from(i16::from_le_bytes([next(), next()])) % 400 } else { 0 };
    let mut digit = |position: usize| -> char {
        let b = next();
        let d = match flags >> 5 {
            0 => b % 10,
            1 => if b < 200 { 9 } else { b % 10 },
            2 => if b < 200 { 0 } else { b % 10 },
            3 if position > 17 => 0,
            _ => b % 10,
        };
        char::from(b'0' + d)
    };
    let mut text = String::new();
    if flags & 1 != 0 {
        text.push('-');
    }
    for position in 0..int_len {
        text.push(digit(position));
    }
    if frac_len > 0 {
        text.push('.');
        for position in 0..frac_len {
            text.push(digit(int_len + position));
        }
    }
    if flags & 4 != 0 {
        text.push(if flags & 8 != 0 { 'E' } else { 'e' });
        if exponent >= 0 && flags & 16 != 0 {
            text.push('+');
        }
        text.push_str(&exponent.to_string());
    }
    text
}
