//! JSON as Envoy's `jwt_authn` reads it: the token header, the payload and JWKS documents go
//! through protobuf's `JsonStringToMessage` into a `google.protobuf.Struct`, and this module
//! accepts exactly what that parser accepts and builds the same value.
//!
//! Mirrors protobuf's JSON lexer (measured against Envoy 1.40): the top level must be an
//! object (or `null`, read as an empty one); a repeated key in an object is an error (protobuf
//! refuses a map key twice, after unescaping), nesting deeper than 100 levels (the top-level
//! object counts) is an error, a trailing comma before `}` or `]` is accepted, strings must be
//! valid UTF-8 with valid escapes (no lone surrogates; raw control characters are kept),
//! single-quoted strings and unquoted keys (protobuf's legacy syntax) are accepted, and every
//! number becomes an `f64` (a `Struct` holds doubles, so `9007199254740993` is
//! `9007199254740992` afterwards). [`to_proto_json`] prints a value
//! back as protobuf's JSON printer does (keys sorted, shortest round-trip doubles), which is
//! what Envoy base64-encodes for a list or object claim copied to a header.

use crate::authn::decimal;
use crate::authn::float_text;
use crate::request::json_value::{JsonObject, JsonValue};

/// Protobuf's JSON recursion limit, the outermost object included.
pub const MAX_DEPTH: usize = 100;

/// Parses `text` as protobuf parses a `Struct`: an object (top-level `null` is the empty
/// one, as for any message), or `None`.
pub fn parse_object(text: &[u8]) -> Option<JsonObject> {
    let mut p = Parser { s: text, i: 0 };
    p.ws();
    let map = match p.peek()? {
        b'{' => match p.value(1)? {
            JsonValue::Object(map) => map,
            _ => return None,
        },
        b'n' => {
            p.literal(b"null", JsonValue::Null)?;
            JsonObject::new()
        }
        _ => return None,
    };
    p.ws();
    (p.i == p.s.len()).then_some(map)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    /// Inlined: called for every byte of a token's JSON (the core is built at opt-level "z").
    #[inline(always)]
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn literal(&mut self, word: &[u8], value: JsonValue) -> Option<JsonValue> {
        if self.s.get(self.i..self.i + word.len()) == Some(word) {
            self.i += word.len();
            Some(value)
        } else {
            None
        }
    }

    /// A value at nesting `depth` (containers count; a scalar inside the 100th is fine).
    fn value(&mut self, depth: usize) -> Option<JsonValue> {
        self.ws();
        let c = self.peek()?;
        if matches!(c, b'{' | b'[') && depth > MAX_DEPTH {
            return None;
        }
        match c {
            b'{' => {
                self.i += 1;
                // Members in document order; a repeated key (after unescaping) is refused
                // when the object is built.
                let mut members = Vec::new();
                loop {
                    if self.eat(b'}') {
                        return JsonObject::with_unique_keys(members).map(JsonValue::Object);
                    }
                    self.ws();
                    let key = if matches!(self.peek(), Some(b'"' | b'\'')) {
                        self.string()?
                    } else {
                        self.bare_word()?
                    };
                    if !self.eat(b':') {
                        return None;
                    }
                    members.push((key, self.value(depth + 1)?));
                    if !self.eat(b',') {
                        if !self.eat(b'}') {
                            return None;
                        }
                        return JsonObject::with_unique_keys(members).map(JsonValue::Object);
                    }
                }
            }
            b'[' => {
                self.i += 1;
                let mut items = Vec::new();
                loop {
                    if self.eat(b']') {
                        return Some(JsonValue::Array(items));
                    }
                    items.push(self.value(depth + 1)?);
                    if !self.eat(b',') {
                        return self.eat(b']').then_some(JsonValue::Array(items));
                    }
                }
            }
            b'"' | b'\'' => self.string().map(JsonValue::String),
            b't' => self.literal(b"true", JsonValue::Bool(true)),
            b'f' => self.literal(b"false", JsonValue::Bool(false)),
            b'n' => self.literal(b"null", JsonValue::Null),
            _ => self.number(),
        }
    }

    fn number(&mut self) -> Option<JsonValue> {
        let start = self.i;
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek()? {
            b'0' => self.i += 1,
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if !self.peek()?.is_ascii_digit() {
                return None;
            }
            self.digits();
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if !self.peek()?.is_ascii_digit() {
                return None;
            }
            self.digits();
        }
        let n = decimal::parse(self.s.get(start..self.i)?)?;
        n.is_finite().then_some(JsonValue::Number(n))
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
    }

    fn hex4(&mut self) -> Option<u32> {
        let h = std::str::from_utf8(self.s.get(self.i..self.i + 4)?).ok()?;
        self.i += 4;
        u32::from_str_radix(h, 16).ok()
    }

    /// An unquoted object key (protobuf's legacy syntax): letters, digits and `_`.
    fn bare_word(&mut self) -> Option<String> {
        let start = self.i;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_')
        {
            self.i += 1;
        }
        let word = self.s.get(start..self.i)?;
        if word.is_empty() {
            return None;
        }
        String::from_utf8(word.to_vec()).ok()
    }

    /// A string in double or single quotes; raw control characters are kept, as protobuf does.
    fn string(&mut self) -> Option<String> {
        let quote = self.peek().filter(|q| matches!(q, b'"' | b'\''))?;
        self.i += 1;
        let mut out: Vec<u8> = Vec::new();
        loop {
            let c = self.peek()?;
            self.i += 1;
            match c {
                c if c == quote => return String::from_utf8(out).ok(),
                b'\\' => {
                    let e = self.peek()?;
                    self.i += 1;
                    let ch = match e {
                        b'"' => '"',
                        b'\'' => '\'',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let hi = self.hex4()?;
                            let code = if (0xD800..0xDC00).contains(&hi) {
                                if self.s.get(self.i..self.i + 2) != Some(b"\\u") {
                                    return None;
                                }
                                self.i += 2;
                                let lo = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return None;
                                }
                                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                            } else {
                                hi
                            };
                            char::from_u32(code)?
                        }
                        _ => return None,
                    };
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                }
                _ => {
                    // The run of plain bytes up to the next quote or escape, copied at once
                    // (one call where a `push` per byte is one each at opt-level "z").
                    let start = self.i - 1;
                    while self.peek().is_some_and(|b| b != quote && b != b'\\') {
                        self.i += 1;
                    }
                    out.extend_from_slice(self.s.get(start..self.i).unwrap_or_default());
                }
            }
        }
    }
}

/// Protobuf's JSON text of a `Value`: compact, object keys sorted (a [`JsonObject`] holds them
/// in key order), numbers as [`proto_double`].
pub fn to_proto_json(value: &JsonValue) -> String {
    let mut out = String::new();
    value.write_json(&mut out, &proto_double);
    out
}

/// A double as protobuf prints it in JSON (`io::SimpleDtoa`): `%.15g` when that reads back as
/// the same double, else `%.17g` (17 digits, not the shortest round-trip form: `1/3` prints as
/// `0.33333333333333331`); above `DBL_MAX / 1.000000000000001` always `%.17g`.
pub fn proto_double(d: f64) -> String {
    let fifteen = (d.abs() <= f64::MAX / 1.000000000000001)
        .then(|| printf_g(d, 15))
        .filter(|text| decimal::parse(text.as_bytes()) == Some(d));
    fifteen.unwrap_or_else(|| printf_g(d, 17))
}

/// C's `%.{precision}g`: `precision` significant digits (correctly rounded, ties to even, as
/// glibc rounds), fixed notation when the decimal exponent is in `[-4, precision)`, else
/// `d.ddde±XX`; trailing zeros and a bare point removed.
fn printf_g(d: f64, precision: usize) -> String {
    let (negative, digits, exp) = float_text::significant(d, precision);
    if exp < -4 || exp >= i32::try_from(precision).unwrap_or(17) {
        let (first, rest) = digits.split_at_checked(1).unwrap_or((&digits, ""));
        let rest = rest.trim_end_matches('0');
        format!(
            "{}{first}{}{rest}e{}{:02}",
            if negative { "-" } else { "" },
            if rest.is_empty() { "" } else { "." },
            if exp < 0 { '-' } else { '+' },
            exp.unsigned_abs()
        )
    } else {
        let decimals = usize::try_from(i32::try_from(precision).unwrap_or(17) - 1 - exp);
        trim_fraction(&float_text::fixed(d, decimals.unwrap_or(0))).to_string()
    }
}

fn trim_fraction(number: &str) -> &str {
    if number.contains('.') {
        number.trim_end_matches('0').trim_end_matches('.')
    } else {
        number
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authn::float_text::sample_doubles;

    #[test]
    fn strings_are_unescaped_and_objects_nest() {
        let m = parse_object(
            br#"{"s":"a\"b\\c\/d\n\u00e9\ud83d\ude00",'q':'it\'s',"o":{"p":{"q":[1,{"r":"x"}]}}}"#,
        )
        .unwrap();
        assert_eq!(
            m.get("s").and_then(JsonValue::as_str),
            Some("a\"b\\c/d\n\u{e9}\u{1f600}")
        );
        assert_eq!(m.get("q").and_then(JsonValue::as_str), Some("it's"));
        let inner = m
            .get("o")
            .and_then(JsonValue::as_object)
            .and_then(|o| o.get("p"))
            .and_then(JsonValue::as_object)
            .and_then(|p| p.get("q"));
        let Some(JsonValue::Array(items)) = inner else {
            panic!("{inner:?}")
        };
        assert_eq!(items.first(), Some(&JsonValue::Number(1.0)));
        assert_eq!(
            items
                .get(1)
                .and_then(JsonValue::as_object)
                .and_then(|o| o.get("r")),
            Some(&JsonValue::String("x".into()))
        );
    }

    #[test]
    fn printed_objects_are_sorted_by_key_bytes_at_every_level() {
        let m = parse_object(
            br#"{"z":{"y":1,"b":[{"d":true,"c":false}],"B":"\u0001\t"},"a":[],"\u00e9":null}"#,
        )
        .unwrap();
        assert_eq!(
            to_proto_json(&JsonValue::Object(m)),
            r#"{"a":[],"z":{"B":"\u0001\t","b":[{"c":false,"d":true}],"y":1},"é":null}"#
        );
    }

    #[test]
    fn duplicate_keys_are_invalid_even_when_escaped() {
        assert!(parse_object(br#"{"role":"admin","role":"user"}"#).is_none());
        assert!(parse_object(br#"{"sub":"a","s\u0075b":"b"}"#).is_none());
        assert!(parse_object(br#"{"a":{"x":1},"b":{"x":1}}"#).is_some());
        assert!(parse_object(br#"{"a":{"x":1,"y":2,"x":3}}"#).is_none());
        assert!(parse_object(br#"{"a":1,"b":2,"a":3,}"#).is_none());
        assert!(parse_object(br#"{a:1,'a':2}"#).is_none());
    }

    #[test]
    fn nesting_is_limited_to_one_hundred_levels_with_the_outer_object() {
        let nested = |n: usize| format!("{{\"d\":{}{}}}", "[".repeat(n), "]".repeat(n));
        assert!(parse_object(nested(99).as_bytes()).is_some());
        assert!(parse_object(nested(100).as_bytes()).is_none());
        let objects = |n: usize| format!("{{\"d\":{}1{}}}", "{\"a\":".repeat(n), "}".repeat(n));
        assert!(parse_object(objects(99).as_bytes()).is_some());
        assert!(parse_object(objects(100).as_bytes()).is_none());
    }

    #[test]
    fn trailing_commas_are_accepted_but_not_empty_members() {
        assert!(parse_object(br#"{"a":[1,2,],}"#).is_some());
        assert!(parse_object(br#"{,}"#).is_none());
        assert!(parse_object(br#"{"a":[,]}"#).is_none());
        assert!(parse_object(br#"{"a":1,,}"#).is_none());
    }

    #[test]
    fn only_objects_with_nothing_after_them_are_structs() {
        assert!(parse_object(b"[1]").is_none());
        assert_eq!(parse_object(b" null ").map(|m| m.len()), Some(0));
        assert!(parse_object(b"nul").is_none());
        assert!(parse_object(b"\"x\"").is_none());
        assert!(parse_object(b" {} \n").is_some());
        assert!(parse_object(b"{} x").is_none());
        assert!(parse_object(b"{\"a\":NaN}").is_none());
        assert!(parse_object(b"{\"a\":1e400}").is_none());
        assert!(parse_object(b"{\"a\":\"\\ud800\"}").is_none());
        assert!(parse_object(b"{\"a\":\"\xff\"}").is_none());
        assert!(parse_object(b"{\"a\":01}").is_none());
        assert!(parse_object(b"{\"a\":\"\x01\"}").is_some());
        assert!(parse_object(b"{a_1:'x',\"b\":'\\''}").is_some());
        assert!(parse_object(b"{\x0c\"a\":1}").is_none());
    }

    #[test]
    fn numbers_become_doubles() {
        let m = parse_object(br#"{"n":9007199254740993,"e":4e9,"i":7}"#).unwrap();
        assert_eq!(m.get("n"), Some(&JsonValue::Number(9007199254740992.0)));
        assert_eq!(m.get("e").and_then(JsonValue::as_f64), Some(4e9));
        assert_eq!(m.get("i"), Some(&JsonValue::Number(7.0)));
    }

    #[test]
    fn protobuf_json_prints_object_keys_in_byte_order_whatever_the_insertion_order() {
        let text = br#"{"b":null,"\u00e9":null,"B":null,"a":null,"ab":null,"":null}"#;
        let m = parse_object(text).unwrap();
        assert_eq!(
            to_proto_json(&JsonValue::Object(m)),
            r#"{"":null,"B":null,"a":null,"ab":null,"b":null,"é":null}"#
        );
    }

    #[test]
    fn protobuf_json_sorts_keys_and_prints_doubles_as_simple_dtoa() {
        let v = serde_json::json!({"team": "core", "a": [1.5, 7, null, true]});
        let v = JsonValue::Object(parse_object(v.to_string().as_bytes()).unwrap());
        assert_eq!(
            to_proto_json(&v),
            r#"{"a":[1.5,7,null,true],"team":"core"}"#
        );
        assert_eq!(proto_double(1e21), "1e+21");
        assert_eq!(
            proto_double(12345678901234567890.0),
            "1.2345678901234567e+19"
        );
        assert_eq!(proto_double(-0.5), "-0.5");
        assert_eq!(proto_double(1e-7), "1e-07");
        assert_eq!(proto_double(7.0), "7");
        assert_eq!(proto_double(1e15), "1e+15");
        assert_eq!(proto_double(123456789012.5), "123456789012.5");
        assert_eq!(proto_double(-0.0), "-0");
        assert_eq!(proto_double(0.1), "0.1");
        // 15 digits do not read back: 17 digits, not the shortest form
        assert_eq!(proto_double(1.0 / 3.0), "0.33333333333333331");
        assert_eq!(proto_double(-2.0 / 3.0), "-0.66666666666666663");
        assert_eq!(proto_double(1e-7 / 3.0), "3.3333333333333334e-08");
        // an exact tie at the 17th digit rounds to even
        assert_eq!(proto_double(1e15 + 0.25), "1000000000000000.2");
        assert_eq!(proto_double(1e15 + 0.75), "1000000000000000.8");
        assert_eq!(proto_double(5e-324), "4.94065645841247e-324");
        // above DBL_MAX / 1.000000000000001 the 15-digit form is not tried
        assert_eq!(proto_double(f64::MAX), "1.7976931348623157e+308");
        assert_eq!(proto_double(1.7e308), "1.7e+308");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn doubles_print_as_the_c_library_prints_simple_dtoa() {
        use std::ffi::{c_char, c_int, CStr};
        extern "C" {
            fn snprintf(buf: *mut c_char, size: usize, format: *const c_char, ...) -> c_int;
        }
        let printf = |precision: c_int, d: f64| {
            let mut buf = [0 as c_char; 64];
            // SAFETY: the buffer is 64 bytes, `%.*g` of a double with 17 digits needs at most 25.
            unsafe { snprintf(buf.as_mut_ptr(), buf.len(), c"%.*g".as_ptr(), precision, d) };
            // SAFETY: snprintf always writes a terminating NUL within `size`.
            unsafe { CStr::from_ptr(buf.as_ptr()) }
                .to_str()
                .unwrap()
                .to_string()
        };
        let simple_dtoa = |d: f64| {
            let fifteen = printf(15, d);
            if d.abs() <= f64::MAX / 1.000000000000001 && fifteen.parse::<f64>().unwrap() == d {
                fifteen
            } else {
                printf(17, d)
            }
        };
        for (bits, d) in sample_doubles(0x9e37_79b9_7f4a_7c15).take(200_000) {
            if d.is_finite() {
                assert_eq!(proto_double(d), simple_dtoa(d), "{d:e} ({bits:#x})");
            }
        }
    }
}
