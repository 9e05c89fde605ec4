//! The core's one stable sort: every list the core orders by a byte-string key (rules by name,
//! JWT providers by issuer, query parameters by name, namespaces and header names) goes through
//! [`sort_by_bytes`], so the module carries a single instantiation of the standard library's
//! sort instead of one full driftsort per element type (each about 4 KB of Wasm).
//!
//! The order is exactly `slice::sort_by(|a, b| key(a).cmp(key(b)))`: bytes compared
//! lexicographically (as `str` and `String` compare), items with equal keys in their original
//! order. Envoy's RBAC engine checks its policies in name order and `jwt_authn` rebuilds the
//! query string grouped by parameter name, each name's values in request order, which is what
//! the callers rely on.

/// Sorts `items` stably by the bytes `key` returns for each.
pub fn sort_by_bytes<T>(items: &mut Vec<T>, key: impl Fn(&T) -> &[u8]) {
    let order = sorted_positions(items.iter().map(key).collect());
    let mut slots: Vec<Option<T>> = items.drain(..).map(Some).collect();
    items.extend(
        order
            .into_iter()
            .filter_map(|i| slots.get_mut(i).and_then(Option::take)),
    );
}

/// The positions of map entries read in document order, in the order a `BTreeMap` would
/// hold them: by key, only the last of repeated keys. Not generic: a caller walks its entries
/// by position instead of a `BTreeMap` instantiation per value type in the module.
pub fn map_order(keys: Vec<&[u8]>) -> Vec<usize> {
    let positions = sorted_positions(keys.clone());
    let mut out = Vec::with_capacity(positions.len());
    for (n, &i) in positions.iter().enumerate() {
        let next = positions.get(n + 1).and_then(|j| keys.get(*j));
        if next.is_none() || next != keys.get(i) {
            out.push(i);
        }
    }
    out
}

/// For each key, the position of the first key equal to it (its own position at a key's first
/// appearance): numbering by first appearance without a hash map of the keys.
pub fn first_appearances(keys: Vec<&[u8]>) -> Vec<usize> {
    let positions = sorted_positions(keys.clone());
    let mut first: Vec<usize> = (0..keys.len()).collect();
    let mut run: Option<(&[u8], usize)> = None;
    for i in positions {
        let key = keys.get(i).copied().unwrap_or_default();
        match run {
            // Stable order: the first of a run of equal keys is the key's first appearance.
            Some((k, start)) if k == key => {
                if let Some(slot) = first.get_mut(i) {
                    *slot = start;
                }
            }
            _ => run = Some((key, i)),
        }
    }
    first
}

/// The original positions of `keys` in stable sorted order: the position breaks ties, so an
/// unstable sort of `(key, position)` pairs gives the stable order.
#[inline(never)]
fn sorted_positions(keys: Vec<&[u8]>) -> Vec<usize> {
    let mut pairs: Vec<(&[u8], usize)> = keys.into_iter().zip(0..).collect();
    pairs.sort_unstable();
    pairs.into_iter().map(|(_, i)| i).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_order_is_btree_map_order_with_the_last_repeated_key() {
        let keys = ["b", "a", "b", "", "a", "ab"];
        let map: std::collections::BTreeMap<&str, usize> =
            keys.iter().enumerate().map(|(i, k)| (*k, i)).collect();
        let order = map_order(keys.iter().map(|k| k.as_bytes()).collect());
        assert!(order.into_iter().eq(map.into_values()));
        assert!(map_order(Vec::new()).is_empty());
    }

    #[test]
    fn first_appearances_point_every_key_at_its_first_occurrence() {
        let keys = ["b", "a", "b", "", "a", "ab", "b"];
        let expected: Vec<usize> = (0..keys.len())
            .map(|i| keys.iter().position(|k| *k == keys[i]).unwrap())
            .collect();
        let got = first_appearances(keys.iter().map(|k| k.as_bytes()).collect());
        assert_eq!(got, expected);
        assert!(first_appearances(Vec::new()).is_empty());
    }

    #[test]
    fn equal_keys_keep_their_original_order() {
        let mut v = vec![("b", 0), ("a", 1), ("b", 2), ("a", 3), ("c", 4), ("a", 5)];
        sort_by_bytes(&mut v, |p| p.0.as_bytes());
        assert_eq!(
            v,
            [("a", 1), ("a", 3), ("a", 5), ("b", 0), ("b", 2), ("c", 4)]
        );
    }

    #[test]
    fn the_order_is_the_standard_stable_sort_by_bytes() {
        // Pseudo-random keys over a small alphabet (many ties, prefixes, non-ASCII bytes),
        // at the lengths where the standard library switches algorithms (20, larger runs).
        let mut seed = 0x9e37_79b9_u32;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed
        };
        for len in [0, 1, 2, 19, 20, 21, 64, 500, 3000] {
            let items: Vec<(Vec<u8>, usize)> = (0..len)
                .map(|i| {
                    let n = (next() % 4) as usize;
                    let key = (0..n)
                        .map(|_| [b'a', b'b', 0xc3][next() as usize % 3])
                        .collect();
                    (key, i)
                })
                .collect();
            let mut expected = items.clone();
            expected.sort_by(|a, b| a.0.cmp(&b.0));
            let mut got = items;
            sort_by_bytes(&mut got, |p| &p.0);
            assert_eq!(got, expected, "length {len}");
        }
    }

    #[test]
    fn strings_sort_as_str_compares_them() {
        let mut v: Vec<String> = ["é", "Z", "a", "", "ab", "a"].map(String::from).to_vec();
        let mut expected = v.clone();
        expected.sort();
        sort_by_bytes(&mut v, |s| s.as_bytes());
        assert_eq!(v, expected);
    }
}
