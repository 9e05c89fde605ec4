//! `float_text`: meshguard's `%.Nf` / `%.Ne` formatting of doubles (`authn::float_text`, what
//! protobuf's `SimpleDtoa` and `std::to_string(double)` of claims copied to headers are built on)
//! against the standard library's `format!("{:.N}")` and `format!("{:.Ne}")`, the correctly
//! rounded (ties to even, as glibc) reference it replaced.
//!
//! The first eight bytes are the double's bits (any finite one: subnormals, huge, negative zero),
//! the ninth the number of decimals and significant digits (0-40).
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshguard_core::authn::float_text;

fuzz_target!(|data: &[u8]| {
    let mut bits = [0u8; 8];
    for (b, d) in bits.iter_mut().zip(data) {
        *b = *d;
    }
    let d = f64::from_bits(u64::from_le_bytes(bits));
    if !d.is_finite() {
        return;
    }
    let n = usize::from(data.get(8).copied().unwrap_or(6) % 41);
    assert_eq!(float_text::fixed(d, n), format!("{d:.n$}"), "{d:e} %.{n}f");
    let (negative, digits, exponent) = float_text::significant(d, n + 1);
    let (first, rest) = digits.split_at(1);
    let ours = format!(
        "{}{first}{}{rest}e{exponent}",
        if negative { "-" } else { "" },
        if rest.is_empty() { "" } else { "." },
    );
    assert_eq!(ours, format!("{d:.n$e}"), "{d:e} %.{n}e");
});
