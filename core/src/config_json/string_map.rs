//! The configuration's string maps (workload labels, selectors and `matchLabels`, SecurityRule
//! inventory labels, annotations, deny-response headers, JWKS clusters): a boxed slice of
//! `(key, value)` pairs sorted by key bytes, found by binary search, so that the module carries
//! no `BTreeMap<String, String>` code.
//!
//! It holds and iterates exactly what the `BTreeMap<String, String>` it replaces held: one entry
//! per key, in key order (bytes compared lexicographically, as `str` compares), the last of a
//! repeated key kept, as `BTreeMap::insert`, `collect` and serde's map visitor keep it. The order
//! comes from sorting `(key bytes, position)` pairs, the instantiation of the standard sort the
//! core already carries (`matchers::sort_order`, `request::json_value`).

use std::fmt;

/// Strings keyed by strings, in key order, one value per key.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct StringMap {
    entries: Box<[(String, String)]>,
}

impl StringMap {
    pub fn new() -> StringMap {
        StringMap::default()
    }

    /// The map of `pairs` (in the order read) where the last of a repeated key wins.
    pub fn with_last_of_repeated_keys(pairs: Vec<(String, String)>) -> StringMap {
        let order = order(&pairs);
        let mut slots: Vec<Option<(String, String)>> = pairs.into_iter().map(Some).collect();
        let mut entries: Vec<(String, String)> = Vec::with_capacity(order.len());
        for i in order {
            let Some(pair) = slots.get_mut(i).and_then(Option::take) else {
                continue;
            };
            // Ties are in reading order: a later repeat replaces the one kept so far.
            match entries.last_mut() {
                Some(last) if last.0 == pair.0 => *last = pair,
                _ => entries.push(pair),
            }
        }
        StringMap {
            entries: entries.into_boxed_slice(),
        }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        let i = self
            .entries
            .binary_search_by(|(k, _)| k.as_bytes().cmp(key.as_bytes()))
            .ok()?;
        self.entries.get(i).map(|(_, v)| v.as_str())
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// The entries in key order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The keys in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(k, _)| k.as_str())
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The pairs' positions in key order, ties (a repeated key) in reading order.
fn order(pairs: &[(String, String)]) -> Vec<usize> {
    let mut keys: Vec<(&[u8], usize)> = pairs.iter().map(|(k, _)| k.as_bytes()).zip(0..).collect();
    keys.sort_unstable();
    keys.into_iter().map(|(_, i)| i).collect()
}

impl FromIterator<(String, String)> for StringMap {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(pairs: I) -> StringMap {
        StringMap::with_last_of_repeated_keys(pairs.into_iter().collect())
    }
}

impl IntoIterator for StringMap {
    type Item = (String, String);
    type IntoIter = std::vec::IntoIter<(String, String)>;

    /// The entries in key order.
    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_vec().into_iter()
    }
}

/// Formats as `BTreeMap<String, String>` does: `{"key": "value", ...}` in key order.
impl fmt::Debug for StringMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// Writes a map in key order, as `BTreeMap<String, String>` does (the CLI's JSON output).
impl serde::Serialize for StringMap {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

/// Reads a JSON object of strings as serde's `BTreeMap<String, String>` did: the same
/// refusals and messages (`expected a map`, a value's `expected a string`), the last of a
/// repeated key kept.
impl<'de> serde::Deserialize<'de> for StringMap {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<StringMap, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = StringMap;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<StringMap, A::Error> {
                let mut pairs = Vec::new();
                while let Some(pair) = map.next_entry::<String, String>()? {
                    pairs.push(pair);
                }
                Ok(StringMap::with_last_of_repeated_keys(pairs))
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn tree_of(items: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs(items).into_iter().collect()
    }

    #[test]
    fn entries_iterate_in_btree_map_order_with_the_last_repeated_key() {
        let items = [
            ("b", "1"),
            ("a", "2"),
            ("b", "3"),
            ("", "4"),
            ("a", "5"),
            ("ab", "6"),
            ("é", "7"),
            ("z", "8"),
            ("A", "9"),
            ("b", "10"),
        ];
        let map = StringMap::with_last_of_repeated_keys(pairs(&items));
        let tree: BTreeMap<String, String> = pairs(&items).into_iter().collect();
        assert!(map
            .iter()
            .eq(tree.iter().map(|(k, v)| (k.as_str(), v.as_str()))));
        assert_eq!(map.len(), tree.len());
        assert_eq!(format!("{map:?}"), format!("{tree:?}"));
        assert!(map.clone().into_iter().eq(tree.into_iter()));
        assert_eq!(map.get("b"), Some("10"));
        assert_eq!(
            serde_json::to_string(&map).unwrap(),
            serde_json::to_string(&tree_of(&items)).unwrap()
        );
        assert_eq!(map.get("a"), Some("5"));
    }

    #[test]
    fn lookup_finds_every_key_and_nothing_else() {
        // Many keys in a scrambled order, with prefixes and non-ASCII bytes.
        let keys: Vec<String> = (0..200u32)
            .map(|i| format!("{}k{}", ["", "é", "a/"][(i % 3) as usize], (i * 7919) % 211))
            .collect();
        let map: StringMap = keys.iter().map(|k| (k.clone(), format!("v{k}"))).collect();
        for k in &keys {
            assert_eq!(map.get(k), Some(format!("v{k}").as_str()));
            assert!(map.contains_key(k));
        }
        for absent in ["", "k", "k1000", "zz", "a"] {
            assert_eq!(map.get(absent), None);
        }
        assert!(map.iter().zip(map.iter().skip(1)).all(|(a, b)| a.0 < b.0));
    }

    #[test]
    fn an_empty_map_finds_nothing_and_formats_as_a_btree_map() {
        let map = StringMap::new();
        assert!(map.is_empty());
        assert_eq!(map.get(""), None);
        assert_eq!(format!("{map:?}"), "{}");
        assert_eq!(map, StringMap::with_last_of_repeated_keys(Vec::new()));
    }

    #[test]
    fn serde_reads_what_a_btree_map_read_and_refuses_what_it_refused() {
        let text = r#"{"x-b": "1", "x-a": "2", "x-b": "3"}"#;
        let map: StringMap = serde_json::from_str(text).unwrap();
        let tree: BTreeMap<String, String> = serde_json::from_str(text).unwrap();
        assert!(map
            .iter()
            .eq(tree.iter().map(|(k, v)| (k.as_str(), v.as_str()))));
        for bad in [
            r#"{"a": 1}"#,
            "[]",
            r#""a""#,
            r#"{"a": "b""#,
            "null",
            r#"{"a":"b"} x"#,
        ] {
            let ours = serde_json::from_str::<StringMap>(bad).unwrap_err();
            let theirs = serde_json::from_str::<BTreeMap<String, String>>(bad).unwrap_err();
            assert_eq!(ours.to_string(), theirs.to_string(), "{bad}");
        }
    }
}
