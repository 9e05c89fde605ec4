//! The JSON value of a token's claims: the JWT header and payload and the JWKS as
//! `authn::jwt_json` reads them (protobuf's `Struct`), and the payload Envoy's
//! `jwt_authn` leaves in the dynamic metadata. It replaces `serde_json::Value`, whose `Map` is a
//! `BTreeMap` in this build, so that the module carries no tree code for tokens.
//!
//! An object is a `Vec` of members sorted by key bytes with no repeated key, looked up by
//! binary search: the order a `BTreeMap<String, _>` (and protobuf's JSON printer, which sorts a
//! `Struct`'s keys) walks them in. Objects are built from their members in document order:
//! [`JsonObject::with_unique_keys`] refuses a repeated key, as protobuf refuses a map key twice;
//! [`JsonObject::with_last_of_repeated_keys`] keeps the last one, as inserting into a map does.

use std::fmt;

/// A JSON value of a token or of `jwt_authn`'s payload metadata.
#[derive(Debug, Clone, PartialEq)]
pub enum JsonValue {
    Null,
    Bool(bool),
    /// A number: protobuf reads every JSON number as a double.
    Number(f64),
    /// An integer literal, as written: only the CLI's `--claims` text (read by `serde_json`)
    /// has them; a token's numbers are doubles and the metadata has none.
    Integer(String),
    String(String),
    Array(Vec<JsonValue>),
    Object(JsonObject),
}

/// A JSON object: members sorted by key bytes, each key once.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JsonObject {
    members: Vec<(String, JsonValue)>,
}

impl JsonValue {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            JsonValue::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_object(&self) -> Option<&JsonObject> {
        match self {
            JsonValue::Object(o) => Some(o),
            _ => None,
        }
    }

    /// A token's number.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            JsonValue::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// Compact JSON text (no whitespace, object keys in byte order), each number as `number`
    /// prints it (an [`JsonValue::Integer`] as written); strings escaped as protobuf and
    /// `serde_json` both escape them (`\"`, `\\`, `\b\f\n\r\t`, other control characters as
    /// `\u00xx`, everything else as it is).
    pub fn write_json(&self, out: &mut String, number: &dyn Fn(f64) -> String) {
        match self {
            JsonValue::Null => out.push_str("null"),
            JsonValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            JsonValue::Number(n) => out.push_str(&number(*n)),
            JsonValue::Integer(n) => out.push_str(n),
            JsonValue::String(s) => write_string(s, out),
            JsonValue::Array(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    v.write_json(out, number);
                }
                out.push(']');
            }
            JsonValue::Object(object) => {
                out.push('{');
                for (i, (k, v)) in object.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_string(k, out);
                    out.push(':');
                    v.write_json(out, number);
                }
                out.push('}');
            }
        }
    }
}

/// `serde_json`'s compact text (its `Value`'s `Display`), which the CLI's rule explanations
/// print: doubles as `serde_json::Number` prints them (`7.0`, `1e21`).
impl fmt::Display for JsonValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        self.write_json(&mut out, &|n| {
            serde_json::Number::from_f64(n).map_or_else(|| "null".to_string(), |n| n.to_string())
        });
        f.write_str(&out)
    }
}

fn write_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

impl JsonObject {
    pub fn new() -> JsonObject {
        JsonObject::default()
    }

    /// The object of `members` (in document order), or `None` when a key repeats.
    pub fn with_unique_keys(members: Vec<(String, JsonValue)>) -> Option<JsonObject> {
        sorted(members, false)
    }

    /// The object of `members` (in document order) where the last of a repeated key wins.
    pub fn with_last_of_repeated_keys(members: Vec<(String, JsonValue)>) -> JsonObject {
        sorted(members, true).unwrap_or_default()
    }

    pub fn get(&self, key: &str) -> Option<&JsonValue> {
        let i = self
            .members
            .binary_search_by(|(k, _)| k.as_str().cmp(key))
            .ok()?;
        self.members.get(i).map(|(_, v)| v)
    }

    /// The members in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &JsonValue)> {
        self.members.iter().map(|(k, v)| (k.as_str(), v))
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
}

/// `members` sorted by key; `None` for a repeated key unless `keep_last`.
fn sorted(mut members: Vec<(String, JsonValue)>, keep_last: bool) -> Option<JsonObject> {
    // Already in order with no repeat (a JWT header `{"alg":..,"kid":..,"typ":..}` often is).
    if members
        .windows(2)
        .all(|pair| matches!(pair, [(a, _), (b, _)] if a < b))
    {
        return Some(JsonObject { members });
    }
    let mut order = order(&members);
    let key = |i: &usize| members.get(*i).map(|m| &m.0);
    let repeats = order
        .windows(2)
        .any(|pair| matches!(pair, [a, b] if key(a) == key(b)));
    if repeats && !keep_last {
        return None;
    }
    // Moves each member to its place, one cycle of the permutation at a time: the member for
    // place `j` is at `order[j]` (places already filled point at themselves).
    for start in 0..order.len() {
        let mut j = start;
        while let Some(&from) = order.get(j) {
            if let Some(done) = order.get_mut(j) {
                *done = j;
            }
            if from == start {
                break;
            }
            members.swap(j, from);
            j = from;
        }
    }
    if repeats {
        // Runs of a repeated key are in document order: the last one stays.
        members.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                std::mem::swap(later, kept);
            }
            same
        });
    }
    Some(JsonObject { members })
}

/// The members' positions in key order, ties (a repeated key) in document order. Sorts
/// `(key bytes, position)` pairs, the instantiation of the standard sort the core already has
/// (`matchers::sort_order`), in `O(n log n)` whatever the token holds.
fn order(members: &[(String, JsonValue)]) -> Vec<usize> {
    let mut pairs: Vec<(&[u8], usize)> =
        members.iter().map(|(k, _)| k.as_bytes()).zip(0..).collect();
    pairs.sort_unstable();
    pairs.into_iter().map(|(_, i)| i).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(members: &[(&str, JsonValue)]) -> Vec<(String, JsonValue)> {
        members
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    fn keys(o: &JsonObject) -> Vec<&str> {
        o.iter().map(|(k, _)| k).collect()
    }

    #[test]
    fn members_are_kept_in_key_byte_order_as_a_btree_map_holds_them() {
        let names = ["b", "é", "B", "a", "ab", "", "~", "a\u{0}"];
        let members: Vec<(String, JsonValue)> = names
            .iter()
            .zip(0..)
            .map(|(k, i)| (k.to_string(), JsonValue::Number(f64::from(i))))
            .collect();
        let o = JsonObject::with_unique_keys(members.clone()).unwrap();
        let tree: std::collections::BTreeMap<String, JsonValue> = members.into_iter().collect();
        assert!(o.iter().map(|(k, _)| k).eq(tree.keys().map(String::as_str)));
        for (k, v) in &tree {
            assert_eq!(o.get(k), Some(v));
        }
        assert_eq!(o.get("c"), None);
        assert_eq!(o.len(), names.len());
    }

    #[test]
    fn a_repeated_key_is_refused_or_its_last_value_kept() {
        let members = object(&[
            ("k", JsonValue::Integer("1".into())),
            ("a", JsonValue::Null),
            ("k", JsonValue::Integer("2".into())),
            ("b", JsonValue::Null),
            ("k", JsonValue::Integer("3".into())),
        ]);
        assert_eq!(JsonObject::with_unique_keys(members.clone()), None);
        let last = JsonObject::with_last_of_repeated_keys(members);
        assert_eq!(keys(&last), ["a", "b", "k"]);
        assert_eq!(last.get("k"), Some(&JsonValue::Integer("3".into())));
        // Sorted input takes the fast path, a repeat there too.
        let sorted = object(&[("a", JsonValue::Null), ("a", JsonValue::Bool(true))]);
        assert_eq!(JsonObject::with_unique_keys(sorted.clone()), None);
        let last = JsonObject::with_last_of_repeated_keys(sorted);
        assert_eq!(last.get("a"), Some(&JsonValue::Bool(true)));
        assert!(JsonObject::with_unique_keys(Vec::new()).unwrap().is_empty());
    }

    #[test]
    fn many_members_in_any_order_are_sorted_and_found() {
        let mut seed = 0x2545_f491_u32;
        let mut members = Vec::new();
        for i in 0..2000u32 {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            members.push((format!("{seed:x}-{i}"), JsonValue::Integer(i.to_string())));
        }
        let o = JsonObject::with_unique_keys(members.clone()).unwrap();
        assert!(keys(&o).windows(2).all(|w| w[0] < w[1]));
        for (k, v) in &members {
            assert_eq!(o.get(k), Some(v));
        }
    }

    #[test]
    fn compact_text_matches_serde_json_for_what_serde_json_can_hold() {
        let text = r#"{"z":[1.5,7.0,null,true,{"b":"\u0001\"\\\/\n\té"}],"a":-3,"m":{}}"#;
        let serde: serde_json::Value = serde_json::from_str(text).unwrap();
        fn convert(v: &serde_json::Value) -> JsonValue {
            match v {
                serde_json::Value::Null => JsonValue::Null,
                serde_json::Value::Bool(b) => JsonValue::Bool(*b),
                serde_json::Value::Number(n) if n.is_f64() => {
                    JsonValue::Number(n.as_f64().unwrap())
                }
                serde_json::Value::Number(n) => JsonValue::Integer(n.to_string()),
                serde_json::Value::String(s) => JsonValue::String(s.clone()),
                serde_json::Value::Array(a) => JsonValue::Array(a.iter().map(convert).collect()),
                serde_json::Value::Object(o) => JsonValue::Object(
                    JsonObject::with_unique_keys(
                        o.iter().map(|(k, v)| (k.clone(), convert(v))).collect(),
                    )
                    .unwrap(),
                ),
            }
        }
        assert_eq!(convert(&serde).to_string(), serde.to_string());
        assert_eq!(
            convert(&serde).to_string(),
            r#"{"a":-3,"m":{},"z":[1.5,7.0,null,true,{"b":"\u0001\"\\/\n\té"}]}"#
        );
    }
}
