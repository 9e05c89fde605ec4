//! Reads the plugin configuration's JSON into the configuration types, by hand: one small
//! document type ([`Json`], parsed by `serde_json`) and typed getters over it, in place of a
//! `#[derive(Deserialize)]` expansion per type (43 of them were 102 KB of the Wasm module).
//!
//! It mirrors what serde's derive with `serde_json` accepted and refused, so every type reads as
//! it did:
//! * a struct is a JSON object; a key that is no field is refused (`deny_unknown_fields`), and so
//!   is a field given twice; a map (`labels`, `annotations`) keeps the last of repeated keys.
//!   [`Json`] keeps an object's members in order with their repetitions, which
//!   `serde_json::Value` would merge;
//! * `Option` fields are `None` when missing or `null`; `#[serde(default)]` fields take their
//!   default when missing and refuse `null`; other fields are required;
//! * integers are taken as serde took them (`u32` refuses `-1`, `5000000000` and `1.0`);
//! * the messages are serde's (`unknown field `x`, expected one of ...`, `missing field `x``,
//!   `duplicate field `x``, `invalid type: string "x", expected a sequence`,
//!   `unknown variant ...`), and the path names the field, the list element or the map entry:
//!   an unknown or repeated key names that key, a missing field names its object.
//!
//! Two spellings serde's derive also took are refused (the Kubernetes schema of these resources
//! refuses them too; README, "Deliberate differences from Istio"): a JSON array in place of a
//! struct (serde read it as the fields in declaration order) and `{"VARIANT": null}` in place of
//! an enum string. An enum given a non-string is refused as before, now with `invalid type`.

use crate::config_json::string_map::StringMap;
use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::error::ConfigError;
use crate::error::{config_err as err, ConfigPath, ConfigResult as Result};

/// A JSON value of the configuration. Numbers keep `serde_json`'s split (a non-negative integer,
/// a negative integer, anything else), object members their order and repetitions. Strings
/// borrow from the text when they have no escapes.
#[derive(Debug, Clone, PartialEq)]
pub enum Json<'a> {
    Null,
    Bool(bool),
    Unsigned(u64),
    Signed(i64),
    Float(f64),
    String(Cow<'a, str>),
    Array(Vec<Json<'a>>),
    Object(Vec<(Cow<'a, str>, Json<'a>)>),
}

/// A configuration type read from a [`Json`] value; errors are relative to the value.
pub trait FromJson: Sized {
    fn from_json(value: &Json<'_>) -> Result<Self>;
}

/// The fields of a JSON object read as a struct (keys already checked).
pub struct Fields<'v, 'a> {
    members: &'v [(Cow<'a, str>, Json<'a>)],
}

impl<'a> Json<'a> {
    /// Reads this value as the struct `name` with the JSON field names `fields`: a key that is
    /// not one of them, or one given twice, is refused as serde refused it.
    pub fn fields(&self, name: &str, fields: &[&str]) -> Result<Fields<'_, 'a>> {
        let Json::Object(members) = self else {
            return Err(self.invalid_type(&format!("struct {name}")));
        };
        check_keys(&mut members.iter().map(|(k, _)| k.as_ref()), fields, true)?;
        Ok(Fields { members })
    }

    pub fn string(&self) -> Result<String> {
        match self {
            Json::String(s) => Ok(s.to_string()),
            _ => Err(self.invalid_type("a string")),
        }
    }

    pub fn boolean(&self) -> Result<bool> {
        match self {
            Json::Bool(b) => Ok(*b),
            _ => Err(self.invalid_type("a boolean")),
        }
    }

    pub fn u64(&self) -> Result<u64> {
        self.integer("u64", 0, u64::MAX.into())
            .map(|n| u64::try_from(n).unwrap_or_default())
    }

    pub fn u32(&self) -> Result<u32> {
        self.integer("u32", 0, u32::MAX.into())
            .map(|n| u32::try_from(n).unwrap_or_default())
    }

    pub fn usize(&self) -> Result<usize> {
        let max = u64::try_from(usize::MAX).unwrap_or(u64::MAX);
        self.integer("usize", 0, max.into())
            .map(|n| usize::try_from(n).unwrap_or_default())
    }

    pub fn i64(&self) -> Result<i64> {
        self.integer("i64", i64::MIN.into(), i64::MAX.into())
            .map(|n| i64::try_from(n).unwrap_or_default())
    }

    /// An integer in `min..=max`, named `ty` in errors (serde's primitive visitors).
    fn integer(&self, ty: &str, min: i128, max: i128) -> Result<i128> {
        let n = match self {
            Json::Unsigned(n) => i128::from(*n),
            Json::Signed(n) => i128::from(*n),
            _ => return Err(self.invalid_type(ty)),
        };
        if (min..=max).contains(&n) {
            return Ok(n);
        }
        // Printed from the JSON's own integer: formatting the `i128` would link core's
        // 128-bit integer formatting for this message alone.
        let text = match self {
            Json::Signed(n) => n.to_string(),
            _ => u64::try_from(n).unwrap_or_default().to_string(),
        };
        err(
            "",
            format!("invalid value: integer `{text}`, expected {ty}"),
        )
    }

    /// A list, each element read by `read`; an element's error names its index.
    pub fn list<T>(&self, read: impl Fn(&Json<'a>) -> Result<T>) -> Result<Vec<T>> {
        let items = self.array()?;
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            out.push(read(item).map_err(|e| e.at_index(i))?);
        }
        Ok(out)
    }

    /// A list of strings.
    pub fn strings(&self) -> Result<Vec<String>> {
        self.list(Json::string)
    }

    fn array(&self) -> Result<&[Json<'a>]> {
        match self {
            Json::Array(items) => Ok(items),
            _ => Err(self.invalid_type("a sequence")),
        }
    }

    /// A map with string keys as `(key, value)` pairs in document order, repeated keys
    /// included (walk them with `matchers::sort_order::map_order` to see what a map
    /// keeps); a value's error names its key as a field (`labels.app`).
    pub fn entries<T>(&self, read: impl Fn(&Json<'a>) -> Result<T>) -> Result<Vec<(String, T)>> {
        let Json::Object(members) = self else {
            return Err(self.invalid_type("a map"));
        };
        let mut out = Vec::with_capacity(members.len());
        for (key, value) in members {
            let v = read(value).map_err(|e| e.within(ConfigPath::root().field(key.to_string())))?;
            out.push((key.to_string(), v));
        }
        Ok(out)
    }

    /// A map of strings to strings; the last of repeated keys is kept. A value's error names
    /// its key as a field (`labels.app`), as before.
    pub fn string_map(&self) -> Result<StringMap> {
        self.entries(Json::string)
            .map(StringMap::with_last_of_repeated_keys)
    }

    /// `None` for `null`, else the value read by `read` (an `Option` element of a list).
    pub fn nullable<T>(&self, read: impl Fn(&Json<'a>) -> Result<T>) -> Result<Option<T>> {
        match self {
            Json::Null => Ok(None),
            _ => read(self).map(Some),
        }
    }

    /// Any value (accepted and ignored, serde's `IgnoredAny` or `Value`).
    pub fn any(&self) -> Result<()> {
        Ok(())
    }

    /// The enum variant spelt by this string, from `(spelling, variant)` pairs.
    pub fn variant<T: Copy>(&self, variants: &[(&str, T)]) -> Result<T> {
        let spelt = match self {
            Json::String(s) => variants.iter().find(|(spelling, _)| spelling == s),
            _ => None,
        };
        if let Some((_, v)) = spelt {
            return Ok(*v);
        }
        let spellings: Vec<&str> = variants.iter().map(|(s, _)| *s).collect();
        match self {
            Json::String(s) => err(
                "",
                format!("unknown variant `{s}`, expected {}", one_of(&spellings)),
            ),
            _ => Err(self.invalid_type(&one_of(&spellings))),
        }
    }

    /// serde's `invalid type: <what this is>, expected <expected>`, at this value.
    fn invalid_type(&self, expected: &str) -> ConfigError {
        ConfigError::new(
            ConfigPath::root(),
            format!("invalid type: {}, expected {expected}", Unexpected(self)),
        )
    }
}

impl<'v, 'a> Fields<'v, 'a> {
    // Not inlined into each field's read: V8 compiles the whole module at load with its
    // optimizing compiler, and the memory it leaves behind grows with the largest function
    // (README, "What sets the memory at rest"); a struct's `from_json` reads every field.
    #[inline(never)]
    fn get(&self, name: &str) -> Option<&'v Json<'a>> {
        self.members.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// A field that must be present (`null` goes to `read`, which refuses it).
    pub fn required<T>(
        &self,
        name: &'static str,
        read: impl FnOnce(&'v Json<'a>) -> Result<T>,
    ) -> Result<T> {
        match self.get(name) {
            Some(v) => read(v).map_err(|e| e.within(name)),
            None => Err(missing_field(name)),
        }
    }

    /// An `Option` field: `None` when missing or `null`.
    pub fn optional<T>(
        &self,
        name: &'static str,
        read: impl FnOnce(&'v Json<'a>) -> Result<T>,
    ) -> Result<Option<T>> {
        match self.get(name) {
            None | Some(Json::Null) => Ok(None),
            Some(v) => read(v).map(Some).map_err(|e| e.within(name)),
        }
    }

    /// A `#[serde(default)]` field: the default when missing (`null` goes to `read`).
    pub fn or_default<T: Default>(
        &self,
        name: &'static str,
        read: impl FnOnce(&'v Json<'a>) -> Result<T>,
    ) -> Result<T> {
        match self.get(name) {
            None => Ok(T::default()),
            Some(v) => read(v).map_err(|e| e.within(name)),
        }
    }
}

/// serde's error for a missing required field.
#[inline(never)]
fn missing_field(name: &str) -> ConfigError {
    ConfigError::new("", format!("missing field `{name}`"))
}

/// serde's refusals of an object's keys, in document order: a key that is not one of `fields`
/// (when `deny_unknown`), then a field given a second time. Errors name the key.
pub fn check_keys(
    keys: &mut dyn Iterator<Item = &str>,
    fields: &[&str],
    deny_unknown: bool,
) -> Result<()> {
    // Which fields were seen, by index (every configuration type has fewer than 64 fields).
    let mut seen: u64 = 0;
    for key in keys {
        let at = || ConfigPath::root().field(key.to_string());
        let Some(index) = fields.iter().position(|f| *f == key) else {
            if deny_unknown {
                let expected = if fields.is_empty() {
                    "there are no fields".to_string()
                } else {
                    format!("expected {}", one_of(fields))
                };
                return err(at(), format!("unknown field `{key}`, {expected}"));
            }
            continue;
        };
        let bit = 1u64
            .checked_shl(u32::try_from(index).unwrap_or(u32::MAX))
            .unwrap_or(0);
        if seen & bit != 0 {
            return err(at(), format!("duplicate field `{key}`"));
        }
        seen |= bit;
    }
    Ok(())
}

/// serde's `OneOf`: "`a`", "`a` or `b`", "one of `a`, `b`, `c`".
fn one_of(names: &[&str]) -> String {
    match names {
        [one] => format!("`{one}`"),
        [a, b] => format!("`{a}` or `{b}`"),
        _ => {
            let mut out = String::from("one of ");
            for (i, name) in names.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push('`');
                out.push_str(name);
                out.push('`');
            }
            out
        }
    }
}

/// What a value is, as serde_json says it in `invalid type` errors.
pub(super) struct Unexpected<'v, 'a>(pub(super) &'v Json<'a>);

impl fmt::Display for Unexpected<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Json::Null => f.write_str("null"),
            Json::Bool(b) => write!(f, "boolean `{b}`"),
            Json::Unsigned(n) => write!(f, "integer `{n}`"),
            Json::Signed(n) => write!(f, "integer `{n}`"),
            // serde_json prints floats as its `Number` does (`1.0`, `1e21`), never with
            // core's float formatting (which only this would link). A parsed number is finite.
            Json::Float(x) => match serde_json::Number::from_f64(*x) {
                Some(n) => write!(f, "floating point `{n}`"),
                None if x.is_nan() => f.write_str("floating point `NaN`"),
                None if *x > 0.0 => f.write_str("floating point `inf`"),
                None => f.write_str("floating point `-inf`"),
            },
            Json::String(s) => write!(f, "string {s:?}"),
            Json::Array(_) => f.write_str("sequence"),
            Json::Object(_) => f.write_str("map"),
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Json<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        deserializer.deserialize_any(JsonVisitor(PhantomData))
    }
}

struct JsonVisitor<'a>(PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for JsonVisitor<'a> {
    type Value = Json<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> std::result::Result<Json<'a>, E> {
        Ok(Json::Null)
    }

    fn visit_bool<E>(self, b: bool) -> std::result::Result<Json<'a>, E> {
        Ok(Json::Bool(b))
    }

    fn visit_u64<E>(self, n: u64) -> std::result::Result<Json<'a>, E> {
        Ok(Json::Unsigned(n))
    }

    fn visit_i64<E>(self, n: i64) -> std::result::Result<Json<'a>, E> {
        Ok(Json::Signed(n))
    }

    fn visit_f64<E>(self, x: f64) -> std::result::Result<Json<'a>, E> {
        Ok(Json::Float(x))
    }

    fn visit_borrowed_str<E>(self, s: &'de str) -> std::result::Result<Json<'a>, E> {
        Ok(Json::String(Cow::Borrowed(s)))
    }

    fn visit_str<E>(self, s: &str) -> std::result::Result<Json<'a>, E> {
        Ok(Json::String(Cow::Owned(s.to_string())))
    }

    fn visit_string<E>(self, s: String) -> std::result::Result<Json<'a>, E> {
        Ok(Json::String(Cow::Owned(s)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Json<'a>, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Json<'a>, A::Error> {
        let mut members = Vec::new();
        while let Some(Key(key)) = map.next_key()? {
            members.push((key, map.next_value()?));
        }
        Ok(Json::Object(members))
    }
}

/// An object key, borrowed from the text when it has no escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Key<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        deserializer.deserialize_str(KeyVisitor(PhantomData))
    }
}

struct KeyVisitor<'a>(PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for KeyVisitor<'a> {
    type Value = Key<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E>(self, s: &'de str) -> std::result::Result<Key<'a>, E> {
        Ok(Key(Cow::Borrowed(s)))
    }

    fn visit_str<E>(self, s: &str) -> std::result::Result<Key<'a>, E> {
        Ok(Key(Cow::Owned(s.to_string())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct Port {
        number: Option<u32>,
        name: String,
        hosts: Vec<String>,
        labels: StringMap,
    }

    impl FromJson for Port {
        fn from_json(value: &Json<'_>) -> Result<Port> {
            let f = value.fields("Port", &["number", "name", "hosts", "labels"])?;
            Ok(Port {
                number: f.optional("number", Json::u32)?,
                name: f.required("name", Json::string)?,
                hosts: f.or_default("hosts", Json::strings)?,
                labels: f.or_default("labels", Json::string_map)?,
            })
        }
    }

    /// Reads `{"ports": [...]}` and returns the error as `path: reason`.
    fn read(text: &str) -> std::result::Result<Vec<Port>, String> {
        let json: Json = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let f = json
            .fields("Outer", &["ports"])
            .map_err(|e| e.to_string())?;
        f.required("ports", |v| v.list(Port::from_json))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_struct_reads_its_fields_with_defaults_for_missing_and_null_options() {
        let ports = read(
            r#"{"ports": [{"name": "a", "number": null}, {"name": "b", "number": 7,
            "hosts": ["h"], "labels": {"x": "y"}}]}"#,
        )
        .unwrap();
        assert_eq!(ports[0].number, None);
        assert!(ports[0].hosts.is_empty() && ports[0].labels.is_empty());
        assert_eq!(ports[1].number, Some(7));
        assert_eq!(ports[1].hosts, ["h"]);
    }

    #[test]
    fn an_unknown_key_is_refused_naming_the_key_and_the_fields() {
        assert_eq!(
            read(r#"{"ports": [{"name": "a"}, {"name": "b", "nmuber": 1}]}"#).unwrap_err(),
            "ports[1].nmuber: unknown field `nmuber`, expected one of `number`, `name`, `hosts`, \
            `labels`"
        );
        assert_eq!(
            read(r#"{"port": []}"#).unwrap_err(),
            "port: unknown field `port`, expected `ports`"
        );
    }

    #[test]
    fn a_field_given_twice_is_refused_but_a_map_keeps_the_last_repeated_key() {
        assert_eq!(
            read(r#"{"ports": [{"name": "a", "name": "b"}]}"#).unwrap_err(),
            "ports[0].name: duplicate field `name`"
        );
        let ports = read(r#"{"ports": [{"name": "a", "labels": {"x": "1", "x": "2"}}]}"#).unwrap();
        assert_eq!(ports[0].labels.get("x"), Some("2"));
    }

    #[test]
    fn a_wrong_type_is_refused_naming_the_value_and_what_was_expected() {
        assert_eq!(
            read(r#"{"ports": [{"name": 5}]}"#).unwrap_err(),
            "ports[0].name: invalid type: integer `5`, expected a string"
        );
        assert_eq!(
            read(r#"{"ports": [{"name": "a", "hosts": ["h", null]}]}"#).unwrap_err(),
            "ports[0].hosts[1]: invalid type: null, expected a string"
        );
        assert_eq!(
            read(r#"{"ports": [{"name": "a", "labels": {"x": true}}]}"#).unwrap_err(),
            "ports[0].labels.x: invalid type: boolean `true`, expected a string"
        );
        assert_eq!(
            read(r#"{"ports": ["a"]}"#).unwrap_err(),
            "ports[0]: invalid type: string \"a\", expected struct Port"
        );
        // A positional array in place of a struct (which serde's derive read) is refused.
        assert_eq!(
            read(r#"{"ports": [[7, "a"]]}"#).unwrap_err(),
            "ports[0]: invalid type: sequence, expected struct Port"
        );
    }

    #[test]
    fn a_default_field_refuses_null_and_a_required_field_must_be_present() {
        assert_eq!(
            read(r#"{"ports": [{"name": "a", "hosts": null}]}"#).unwrap_err(),
            "ports[0].hosts: invalid type: null, expected a sequence"
        );
        assert_eq!(
            read(r#"{"ports": [{"number": 1}]}"#).unwrap_err(),
            "ports[0]: missing field `name`"
        );
    }

    #[test]
    fn integers_are_taken_as_serde_took_them() {
        for (number, reason) in [
            ("-1", "invalid value: integer `-1`, expected u32"),
            (
                "4294967296",
                "invalid value: integer `4294967296`, expected u32",
            ),
            ("1.0", "invalid type: floating point `1.0`, expected u32"),
            ("-0", "invalid type: floating point `-0.0`, expected u32"),
            ("\"1\"", "invalid type: string \"1\", expected u32"),
        ] {
            let text = format!(r#"{{"ports": [{{"name": "a", "number": {number}}}]}}"#);
            assert_eq!(
                read(&text).unwrap_err(),
                format!("ports[0].number: {reason}")
            );
        }
        let big: Json = serde_json::from_str("9223372036854775808").unwrap();
        assert_eq!(
            big.i64().unwrap_err().to_string(),
            "invalid value: integer `9223372036854775808`, expected i64"
        );
        let negative: Json = serde_json::from_str("-80").unwrap();
        assert_eq!(negative.i64().unwrap(), -80);
    }

    #[test]
    fn an_enum_takes_only_its_spellings() {
        let modes = [("STRICT", 1), ("PERMISSIVE", 2)];
        let read = |text: &str| {
            let json: Json = serde_json::from_str(text).unwrap();
            json.variant(&modes).map_err(|e| e.to_string())
        };
        assert_eq!(read(r#""PERMISSIVE""#), Ok(2));
        assert_eq!(
            read(r#""strict""#).unwrap_err(),
            "unknown variant `strict`, expected `STRICT` or `PERMISSIVE`"
        );
        assert_eq!(
            read(r#"{"STRICT": null}"#).unwrap_err(),
            "invalid type: map, expected `STRICT` or `PERMISSIVE`"
        );
    }
}
