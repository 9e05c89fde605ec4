//! The proxy-wasm "pairs" wire format, decoded and encoded without trusting the host.
//!
//! Header maps, map-valued properties (`xds.node.metadata.LABELS`) and list-valued properties
//! all arrive as: `u32 count`, then `count` pairs of `(u32 key_len, u32 value_len)`, then each
//! key and value followed by a NUL byte (little-endian; Envoy `serializeValue`). A list is
//! encoded with its elements as keys and empty values. The SDK's own decoder indexes and
//! unwraps; this one returns `None` on any malformed input.

use crate::request::json_value::{JsonObject, JsonValue};

/// Decodes a pairs buffer into `(key, value)` byte pairs.
pub fn decode(bytes: &[u8]) -> Option<Vec<(&[u8], &[u8])>> {
    decode_prefix(bytes).map(|(pairs, _)| pairs)
}

/// Like [`decode`], but only when the encoding covers `bytes` exactly.
pub fn decode_exact(bytes: &[u8]) -> Option<Vec<(&[u8], &[u8])>> {
    match decode_prefix(bytes)? {
        (pairs, used) if used == bytes.len() => Some(pairs),
        _ => None,
    }
}

/// Decodes a CEL value that Envoy serialized without type information (a `Struct` from
/// dynamic metadata): NUL-free bytes are a string; an exact pairs encoding is a list (all
/// values empty) or a map (values decoded recursively); anything else (a number or a bool)
/// becomes `null`, which no string pattern matches.
pub fn decode_untyped(bytes: &[u8], depth: u8) -> JsonValue {
    if !bytes.contains(&0) {
        return match std::str::from_utf8(bytes) {
            Ok(s) => JsonValue::String(s.to_string()),
            Err(_) => JsonValue::Null,
        };
    }
    let Some(pairs) = decode_exact(bytes).filter(|_| depth > 0) else {
        return JsonValue::Null;
    };
    let text = |b: &[u8]| std::str::from_utf8(b).ok().map(str::to_string);
    if !pairs.is_empty() && pairs.iter().all(|(_, v)| v.is_empty()) {
        return JsonValue::Array(
            pairs
                .iter()
                .filter_map(|(k, _)| text(k).map(JsonValue::String))
                .collect(),
        );
    }
    // A later repeated key wins, as inserting into a map would have it.
    let members = pairs
        .iter()
        .filter_map(|(k, v)| Some((text(k)?, decode_untyped(v, depth - 1))))
        .collect();
    JsonValue::Object(JsonObject::with_last_of_repeated_keys(members))
}

/// Decoded pairs and the number of bytes they occupied.
type Decoded<'b> = (Vec<(&'b [u8], &'b [u8])>, usize);

fn decode_prefix(bytes: &[u8]) -> Option<Decoded<'_>> {
    if bytes.is_empty() {
        return Some((Vec::new(), 0));
    }
    let count = read_u32(bytes, 0)? as usize;
    let header_end = count.checked_mul(8)?.checked_add(4)?;
    if header_end > bytes.len() {
        return None;
    }
    // Allocated at its final length and filled in place: one call where a `push` per pair is
    // one each at the core's opt-level "z" (this runs on every request's header map).
    let empty: &[u8] = &[];
    let mut out = vec![(empty, empty); count];
    let mut cursor = header_end;
    let mut i = 0;
    while let Some(slot) = out.get_mut(i) {
        let key_len = read_u32(bytes, 4 + i * 8)? as usize;
        let value_len = read_u32(bytes, 8 + i * 8)? as usize;
        let key = bytes.get(cursor..cursor.checked_add(key_len)?)?;
        cursor = cursor.checked_add(key_len)?.checked_add(1)?;
        let value = bytes.get(cursor..cursor.checked_add(value_len)?)?;
        cursor = cursor.checked_add(value_len)?.checked_add(1)?;
        *slot = (key, value);
        i += 1;
    }
    Some((out, cursor))
}

/// Encodes header pairs for `proxy_send_local_response` and friends.
pub fn encode(pairs: &[(&str, &str)]) -> Vec<u8> {
    let size = 4 + pairs
        .iter()
        .map(|(k, v)| 8 + k.len() + v.len() + 2)
        .sum::<usize>();
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
    for (k, v) in pairs {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    }
    for (k, v) in pairs {
        out.extend_from_slice(k.as_bytes());
        out.push(0);
        out.extend_from_slice(v.as_bytes());
        out.push(0);
    }
    out
}

fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let raw: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_le_bytes(raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_repeated_keys() {
        let bytes = encode(&[("x-role", "user"), ("x-role", "admin"), (":path", "/")]);
        let pairs = decode(&bytes).unwrap();
        assert_eq!(
            pairs,
            vec![
                (&b"x-role"[..], &b"user"[..]),
                (&b"x-role"[..], &b"admin"[..]),
                (&b":path"[..], &b"/"[..])
            ]
        );
    }

    #[test]
    fn decodes_envoy_labels_map_as_observed() {
        // xds.node.metadata.LABELS as Envoy 1.40 returned it: {version: v1, app: b}.
        let bytes: Vec<u8> = [
            &[2, 0, 0, 0, 7, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 1, 0, 0, 0][..],
            b"version\0v1\0app\0b\0",
        ]
        .concat();
        let pairs = decode(&bytes).unwrap();
        assert_eq!(
            pairs,
            vec![(&b"version"[..], &b"v1"[..]), (&b"app"[..], &b"b"[..])]
        );
    }

    #[test]
    fn untyped_values_decode_to_strings_lists_and_maps() {
        let text = |v: &JsonValue| v.to_string();
        assert_eq!(text(&decode_untyped(b"alice", 8)), r#""alice""#);
        let list = encode(&[("a", ""), ("b", "")]);
        assert_eq!(text(&decode_untyped(&list, 8)), r#"["a","b"]"#);
        let inner = encode(&[("admin", ""), ("user", "")]);
        let inner = String::from_utf8(inner).unwrap();
        let map = encode(&[("roles", inner.as_str()), ("name", "x")]);
        assert_eq!(
            text(&decode_untyped(&map, 8)),
            r#"{"name":"x","roles":["admin","user"]}"#
        );
        // An 8-byte double (1.0) is neither a string nor a pairs encoding.
        assert_eq!(decode_untyped(&1.0f64.to_le_bytes(), 8), JsonValue::Null);
        assert_eq!(decode_untyped(&[0], 8), JsonValue::Null);
    }

    #[test]
    fn an_untyped_map_keeps_the_last_value_of_a_repeated_key_as_collecting_would() {
        let bytes = encode(&[("k", "1"), ("a", "x"), ("k", "2"), ("b", "y"), ("a", "z")]);
        let collected: std::collections::BTreeMap<String, String> = decode_exact(&bytes)
            .unwrap()
            .iter()
            .map(|(k, v)| {
                (
                    String::from_utf8(k.to_vec()).unwrap(),
                    decode_untyped(v, 7).to_string(),
                )
            })
            .collect();
        let JsonValue::Object(decoded) = decode_untyped(&bytes, 8) else {
            panic!("not an object")
        };
        assert!(decoded
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .eq(collected));
        assert_eq!(
            decode_untyped(&bytes, 8).to_string(),
            r#"{"a":"z","b":"y","k":"2"}"#
        );
    }

    #[test]
    fn malformed_input_is_rejected_not_panicking() {
        assert_eq!(decode(&[]), Some(vec![]));
        assert!(decode(&[1, 0, 0]).is_none());
        assert!(decode(&[1, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0]).is_none());
        assert!(decode(&[255, 255, 255, 255]).is_none());
        let mut truncated = encode(&[("k", "value")]);
        truncated.truncate(truncated.len() - 3);
        assert!(decode(&truncated).is_none());
    }
}
