//! JSON text whose parts stay text: the members of an object and the elements of an array,
//! each held as the slice of the text it spans, and an object of string values. They stand
//! in for serde_json's `RawValue` and typed reads (`Vec<&RawValue>`, `BTreeMap<String,
//! String>`), which link serde_json's `invalid_type` and with it serde's `Unexpected` and
//! core's float formatting: every value is read here through `deserialize_any` only.
//!
//! They accept and refuse exactly the texts those reads did, with the same messages:
//! serde_json checks the text first (a value that is not read is skipped by `IgnoredAny`,
//! through the same `ignore_value` as a `RawValue`), and only then are the parts located, in
//! a text now known to be JSON. A value of the wrong type is refused as serde_json's
//! `deserialize_map` / `deserialize_seq` / `deserialize_str` refused it (`invalid type:
//! map, expected a sequence`), at the same position.

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;

use serde::de::{
    Deserialize, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor,
};

use super::reader::{check_keys, Json, Unexpected};
use super::string_map::StringMap;
use crate::error::ConfigResult as Result;

type JsonResult<T> = std::result::Result<T, RawError>;

/// Why a text was refused: serde_json's own error (syntax, end of input), or a value of the
/// wrong type, worded as serde_json's typed reads worded it. The second is meshguard's own
/// text, not a `serde_json::Error` made with `Error::custom`: that would link serde_json's
/// `make_error` and with it the standard library's two-way substring search.
#[derive(Debug)]
pub enum RawError {
    /// serde_json refused the text.
    Json(serde_json::Error),
    /// `invalid type: <what>, expected <wanted>`, without a position (the loader drops it).
    Type(String),
}

impl From<serde_json::Error> for RawError {
    fn from(e: serde_json::Error) -> Self {
        RawError::Json(e)
    }
}

impl fmt::Display for RawError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RawError::Json(e) => e.fmt(f),
            RawError::Type(reason) => f.write_str(reason),
        }
    }
}

/// An object whose member values stay JSON text, each parsed when it is read: the top level
/// of the configuration (its `resources` are parsed one at a time) and a resource's object and
/// metadata (fields that are ignored are only checked as JSON, as serde's `IgnoredAny` did).
pub struct RawMembers<'a> {
    members: Vec<(Cow<'a, str>, &'a str)>,
}

impl<'a> RawMembers<'a> {
    /// serde's refusals of the keys for a struct with `fields` (see [`check_keys`]).
    pub fn check(&self, fields: &[&str], deny_unknown: bool) -> Result<()> {
        check_keys(
            &mut self.members.iter().map(|(k, _)| k.as_ref()),
            fields,
            deny_unknown,
        )
    }

    /// The text of member `name`, `null` included.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.members
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| *v)
    }

    /// The text of member `name`; `None` when missing or `null` (an `Option` field).
    pub fn get_some(&self, name: &str) -> Option<&'a str> {
        self.get(name).filter(|v| *v != "null")
    }

    /// The members, in document order.
    pub fn iter(&self) -> impl Iterator<Item = (&Cow<'a, str>, &'a str)> + '_ {
        self.members.iter().map(|(k, v)| (k, *v))
    }
}

/// The object `text` with its members' values as text, as serde_json read a struct of
/// `&RawValue` members named `name` (anything but an object is `invalid type: ..., expected
/// struct <name>`).
pub fn raw_members<'a>(text: &'a str, name: &str) -> JsonResult<RawMembers<'a>> {
    match first_byte(text) {
        Some(b'{') => {
            check(text)?;
            Ok(RawMembers {
                members: members(text)?,
            })
        }
        first => Err(not_a(text, first, &format!("struct {name}"))),
    }
}

/// The elements of the array `text`, each as text, as serde_json read a `Vec<&RawValue>`.
pub fn raw_items(text: &str) -> JsonResult<Vec<&str>> {
    match first_byte(text) {
        Some(b'[') => {
            check(text)?;
            Ok(items(text))
        }
        first => Err(not_a(text, first, "a sequence")),
    }
}

/// The JSON value `text` (all of it), as `serde_json::from_str`.
pub fn parse_json(text: &str) -> std::result::Result<Json<'_>, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value = Json::deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// An object of strings read as `serde_json::from_str::<BTreeMap<String, String>>` read it
/// (and `StringMap`'s own `Deserialize`, which it replaced):
/// the last of repeated keys kept, and its refusals in the same words at the same line and
/// column (the message of the `serde_json::Error` that read gave).
pub fn string_object(text: &str) -> std::result::Result<StringMap, String> {
    let b = text.as_bytes();
    let first = ws(b, 0);
    match b.get(first) {
        // serde_json refuses an array (or, below, an object as a member's value) without
        // reading it, at the position of its bracket.
        Some(b'[') => Err(at(
            text,
            Some(first),
            "invalid type: sequence, expected a map",
        )),
        Some(b'{') => {
            let refused = Cell::new(None);
            let mut de = serde_json::Deserializer::from_str(text);
            let read = de
                .deserialize_any(StringObject(&refused))
                .and_then(|map| de.end().map(|()| map));
            // The first value refused comes before any later syntax error: serde_json stopped
            // there.
            match refused.take() {
                Some(Refused::Container(what, member)) => Err(at(
                    text,
                    value_start(text, member),
                    &format!("invalid type: {what}, expected a string"),
                )),
                Some(Refused::Scalar(what, member)) => {
                    let end = value_start(text, member).map(|start| value_end(b, start));
                    Err(at(
                        text,
                        end,
                        &format!("invalid type: {what}, expected a string"),
                    ))
                }
                None => read.map_err(|e| e.to_string()),
            }
        }
        // serde_json reads a scalar (and refuses what is not one) before refusing it, at the
        // position after it.
        _ => {
            let mut de = serde_json::Deserializer::from_str(text);
            match Json::deserialize(&mut de) {
                Ok(value) => Err(at(
                    text,
                    Some(value_end(b, first)),
                    &format!("invalid type: {}, expected a map", Unexpected(&value)),
                )),
                Err(e) => Err(e.to_string()),
            }
        }
    }
}

/// serde_json's message `reason` at byte `index` (its `position_of_index`).
fn at(text: &str, index: Option<usize>, reason: &str) -> String {
    let before = text
        .as_bytes()
        .get(..index.unwrap_or(0))
        .unwrap_or_default();
    let line_start = before
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |i| i + 1);
    let line = 1 + before.iter().filter(|b| **b == b'\n').count();
    let column = index.unwrap_or(0).saturating_sub(line_start);
    format!("{reason} at line {line} column {column}")
}

/// Where the value of the member at `index` of the object `text` starts (the text is JSON up
/// to that value).
fn value_start(text: &str, index: usize) -> Option<usize> {
    let b = text.as_bytes();
    let mut i = ws(b, ws(b, 0) + 1);
    for _ in 0..index {
        i = ws(b, ws(b, string_end(b, i)) + 1);
        i = ws(b, ws(b, value_end(b, i)) + 1);
    }
    Some(ws(b, ws(b, string_end(b, i)) + 1))
}

/// The first byte after whitespace.
fn first_byte(text: &str) -> Option<u8> {
    let b = text.as_bytes();
    b.get(ws(b, 0)).copied()
}

/// Checks `text` is one JSON value as serde_json checked it (the values of members and
/// elements are skipped as a `RawValue` was).
fn check(text: &str) -> JsonResult<()> {
    let mut de = serde_json::Deserializer::from_str(text);
    de.deserialize_any(Skip)?;
    Ok(de.end()?)
}

/// serde_json's refusal of a value where `expected` was wanted, for a value that starts with
/// `first` and is not an object or array of what was wanted.
fn not_a(text: &str, first: Option<u8>, expected: &str) -> RawError {
    let what = match first {
        Some(b'[') => "sequence".to_string(),
        Some(b'{') => "map".to_string(),
        // serde_json reads a scalar (and refuses what is not one) before refusing it.
        _ => {
            let mut de = serde_json::Deserializer::from_str(text);
            match Json::deserialize(&mut de) {
                Ok(value) => Unexpected(&value).to_string(),
                Err(e) => return RawError::Json(e),
            }
        }
    };
    RawError::Type(format!("invalid type: {what}, expected {expected}"))
}

/// The members of the object `text`, known to be JSON.
fn members(text: &str) -> JsonResult<Vec<(Cow<'_, str>, &str)>> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = ws(b, 0) + 1;
    loop {
        i = ws(b, i);
        if b.get(i) != Some(&b'"') {
            return Ok(out);
        }
        let key_end = string_end(b, i);
        let key = match text.get(i + 1..key_end.saturating_sub(1)) {
            Some(key) if !key.contains('\\') => Cow::Borrowed(key),
            _ => match parse_json(text.get(i..key_end).unwrap_or_default())? {
                Json::String(key) => key,
                _ => Cow::Borrowed(""),
            },
        };
        let start = ws(b, ws(b, key_end) + 1);
        let end = value_end(b, start);
        out.push((key, text.get(start..end).unwrap_or_default()));
        i = ws(b, end);
        if b.get(i) == Some(&b',') {
            i += 1;
        }
    }
}

/// The elements of the array `text`, known to be JSON.
fn items(text: &str) -> Vec<&str> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = ws(b, 0) + 1;
    loop {
        i = ws(b, i);
        if matches!(b.get(i), None | Some(b']')) {
            return out;
        }
        let end = value_end(b, i);
        out.push(text.get(i..end).unwrap_or_default());
        i = ws(b, end);
        if b.get(i) == Some(&b',') {
            i += 1;
        }
    }
}

/// The index of the first byte at or after `i` that is not JSON whitespace.
fn ws(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

/// The index after the string whose opening quote is at `i`.
fn string_end(b: &[u8], mut i: usize) -> usize {
    i += 1;
    loop {
        match b.get(i) {
            None => return i,
            Some(b'"') => return i + 1,
            Some(b'\\') => i += 2,
            Some(_) => i += 1,
        }
    }
}

/// The index after the value that starts at `start`.
fn value_end(b: &[u8], start: usize) -> usize {
    let scalar = !matches!(b.get(start), Some(b'"' | b'[' | b'{'));
    let mut depth = 0usize;
    let mut i = start;
    loop {
        match b.get(i) {
            None => return i,
            Some(b'"') => i = string_end(b, i),
            Some(b'[' | b'{') => {
                depth += 1;
                i += 1;
            }
            Some(b']' | b'}') if depth == 0 => return i,
            Some(b']' | b'}') => {
                depth -= 1;
                i += 1;
            }
            Some(b',' | b' ' | b'\t' | b'\n' | b'\r') if scalar => return i,
            Some(_) => i += 1,
        }
        if depth == 0 && !scalar {
            return i;
        }
    }
}

/// Any value, checked and dropped: an object's or array's parts as serde_json skipped a
/// `RawValue` (`IgnoredAny`).
struct Skip;

impl<'de> Visitor<'de> for Skip {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> std::result::Result<(), E> {
        Ok(())
    }

    fn visit_bool<E>(self, _: bool) -> std::result::Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> std::result::Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> std::result::Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> std::result::Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> std::result::Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<(), A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<(), A::Error> {
        while map.next_key::<IgnoredAny>()?.is_some() {
            map.next_value::<IgnoredAny>()?;
        }
        Ok(())
    }
}

/// The first member value of a [`string_object`] that is not a string: what it was and the
/// member's index (its position is found in the text afterwards).
enum Refused {
    /// An array or object, refused by serde_json before it was read, at its bracket.
    Container(&'static str, usize),
    /// A scalar, refused after it was read, at the position after it.
    Scalar(String, usize),
}

/// A member's value of a [`string_object`]: a string, or the first refusal recorded (and the
/// value skipped, so the read goes on; what it finds after the refusal is not reported).
struct StringValue<'c> {
    refused: &'c Cell<Option<Refused>>,
    member: usize,
}

impl StringValue<'_> {
    fn refuse(&self, refusal: Refused) -> String {
        let first = self.refused.take();
        self.refused.set(Some(first.unwrap_or(refusal)));
        String::new()
    }

    fn scalar(&self, value: &Json<'_>) -> String {
        self.refuse(Refused::Scalar(Unexpected(value).to_string(), self.member))
    }
}

impl<'de> DeserializeSeed<'de> for StringValue<'_> {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> std::result::Result<String, D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StringValue<'_> {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E>(self, s: &str) -> std::result::Result<String, E> {
        Ok(s.to_string())
    }

    fn visit_unit<E>(self) -> std::result::Result<String, E> {
        Ok(self.scalar(&Json::Null))
    }

    fn visit_bool<E>(self, b: bool) -> std::result::Result<String, E> {
        Ok(self.scalar(&Json::Bool(b)))
    }

    fn visit_u64<E>(self, n: u64) -> std::result::Result<String, E> {
        Ok(self.scalar(&Json::Unsigned(n)))
    }

    fn visit_i64<E>(self, n: i64) -> std::result::Result<String, E> {
        Ok(self.scalar(&Json::Signed(n)))
    }

    fn visit_f64<E>(self, x: f64) -> std::result::Result<String, E> {
        Ok(self.scalar(&Json::Float(x)))
    }

    // Recorded before the contents are skipped: serde_json refused them unread, so a syntax
    // error inside comes after the refusal.
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> std::result::Result<String, A::Error> {
        let refused = self.refuse(Refused::Container("sequence", self.member));
        Skip.visit_seq(seq).map(|()| refused)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> std::result::Result<String, A::Error> {
        let refused = self.refuse(Refused::Container("map", self.member));
        Skip.visit_map(map).map(|()| refused)
    }
}

/// The object of [`string_object`], its first refused value recorded in `.0`.
struct StringObject<'c>(&'c Cell<Option<Refused>>);

impl<'de> Visitor<'de> for StringObject<'_> {
    type Value = StringMap;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<StringMap, A::Error> {
        let mut pairs = Vec::new();
        let mut member = 0;
        while let Some(key) = map.next_key::<Json<'_>>()? {
            let value = map.next_value_seed(StringValue {
                refused: self.0,
                member,
            })?;
            if let Json::String(key) = key {
                pairs.push((key.into_owned(), value));
            }
            member += 1;
        }
        Ok(StringMap::with_last_of_repeated_keys(pairs))
    }

    // Never called (an object is read only when its text starts with `{`), but defined so
    // that `deserialize_any` links no default refusal.
    fn visit_unit<E>(self) -> std::result::Result<Self::Value, E> {
        Ok(StringMap::new())
    }

    fn visit_bool<E>(self, _: bool) -> std::result::Result<Self::Value, E> {
        Ok(StringMap::new())
    }

    fn visit_u64<E>(self, _: u64) -> std::result::Result<Self::Value, E> {
        Ok(StringMap::new())
    }

    fn visit_i64<E>(self, _: i64) -> std::result::Result<Self::Value, E> {
        Ok(StringMap::new())
    }

    fn visit_f64<E>(self, _: f64) -> std::result::Result<Self::Value, E> {
        Ok(StringMap::new())
    }

    fn visit_str<E>(self, _: &str) -> std::result::Result<Self::Value, E> {
        Ok(StringMap::new())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> std::result::Result<Self::Value, A::Error> {
        Skip.visit_seq(seq).map(|()| StringMap::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::value::RawValue;

    /// Texts around each way a value can be refused: every type in every place, syntax errors
    /// before and after a refusal, whitespace and lines before the refused value.
    const TEXTS: &[&str] = &[
        "",
        "  ",
        "{}",
        "[]",
        "null",
        "true",
        "fals",
        "5",
        "-7",
        "1.5",
        "1e400",
        "-0",
        "\"s\\u00e9\"",
        "\"bad\\x\"",
        "x",
        "[1, {\"a\": [}",
        "{\"a\": \"b\"}",
        "{\"a\": \"b\", \"a\": \"c\"}",
        "{\"a\": \"b\"} x",
        "{\"a\": \"b\",}",
        "{\"a\": 1.0}",
        "{\"a\": 1e21}",
        "{\"a\": -3, \"b\": [}",
        "{\"a\": \"x\",\n  \"b\": [1, 2]}",
        "{\"a\": \"x\",\n\"b\":\n{\"c\": }}",
        "{\"a\": \"x\", \"b\": null}",
        "{\"a\": true}",
        "{\"a\\n\": \"x\", \"c\": {\"d\": [1, 1e999999]}}",
        "{\"a\": [1, 2], \"b\": 3}",
        "{1: 2}",
        "{\"a\" \"b\"}",
        "{\"a\": \"b\"",
        "[1, [2, {\"x\": \"]\"}], \"\\\"\", 3.5e2]",
        "[1 2]",
        "[1,]",
        "\n\n   [\"a\"]",
        "  7  ",
        "\n true",
        "{\"a\":\n 1e21 , \"b\": [}",
        "{\"a\": \"x\", \"b\": {\"c\": 1}, \"d\": 2}",
        "{\"a\": 5 x",
        "{\"a\": null, \"b\": [1, 2]}",
        "{\"a\": [1, 2], \"b\": null}",
        "{\"a\": \"\\u00e9\", \"b\": false}",
    ];

    /// The old read of a struct of raw members, as the message `json_error` kept.
    fn raw_value_members(text: &str) -> std::result::Result<Vec<(String, String)>, String> {
        struct Members;
        impl<'de> Visitor<'de> for Members {
            type Value = Vec<(String, &'de RawValue)>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("struct Meta")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    out.push((key, map.next_value()?));
                }
                Ok(out)
            }
        }
        let mut de = serde_json::Deserializer::from_str(text);
        let members = de
            .deserialize_map(Members)
            .and_then(|m| de.end().map(|()| m))
            .map_err(|e| e.to_string())?;
        Ok(members
            .into_iter()
            .map(|(k, v)| (k, v.get().to_string()))
            .collect())
    }

    /// A message without its position when serde_json gave a type error one (`json_error`
    /// drops it), as the loader compares them.
    fn unpositioned(message: String) -> String {
        match message.split_once(" at line ") {
            Some((reason, _)) if reason.starts_with("invalid type") => reason.to_string(),
            _ => message,
        }
    }

    #[test]
    fn raw_members_read_and_refuse_every_text_as_serde_json_raw_values_did() {
        for text in TEXTS {
            let old = raw_value_members(text).map_err(unpositioned);
            let new = raw_members(text, "Meta")
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect::<Vec<_>>()
                })
                .map_err(|e| unpositioned(e.to_string()));
            assert_eq!(new, old, "{text:?}");
        }
    }

    #[test]
    fn raw_items_read_and_refuse_every_text_as_a_list_of_raw_values_did() {
        for text in TEXTS {
            let old = serde_json::from_str::<Vec<&RawValue>>(text)
                .map(|list| list.iter().map(|v| v.get().to_string()).collect::<Vec<_>>())
                .map_err(|e| unpositioned(e.to_string()));
            let new = raw_items(text)
                .map(|list| list.iter().map(|v| v.to_string()).collect::<Vec<_>>())
                .map_err(|e| unpositioned(e.to_string()));
            assert_eq!(new, old, "{text:?}");
        }
    }

    #[test]
    fn a_string_object_is_read_and_refused_as_a_typed_map_with_the_same_positions() {
        for text in TEXTS {
            let old = serde_json::from_str::<std::collections::BTreeMap<String, String>>(text)
                .map(|map| map.into_iter().collect::<Vec<_>>())
                .map_err(|e| e.to_string());
            let new = string_object(text).map(|map| {
                map.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<Vec<_>>()
            });
            assert_eq!(new, old, "{text:?}");
        }
    }

    #[test]
    fn raw_members_keep_their_text_and_refuse_unknown_keys_only_when_asked() {
        let text = r#"{"name": "a", "uid": {"x": [1e999999]}, "spec": null}"#;
        let members = raw_members(text, "Meta").unwrap();
        assert!(members.check(&["name", "spec"], false).is_ok());
        assert_eq!(
            members
                .check(&["name", "spec"], true)
                .unwrap_err()
                .to_string(),
            "uid: unknown field `uid`, expected `name` or `spec`"
        );
        assert_eq!(members.get("name"), Some("\"a\""));
        assert!(members.get("spec").is_some() && members.get_some("spec").is_none());
        assert_eq!(
            raw_members("[1]", "Meta").err().unwrap().to_string(),
            "invalid type: sequence, expected struct Meta"
        );
    }
}
