//! The proxy-wasm "pairs" wire format, decoded and encoded without trusting the host.
//!
//! Header maps, map-valued properties (`xds.node.metadata.LABELS`) and list-valued properties
//! all arrive as: `u32 count`, then `count` pairs of `(u32 key_len, u32 value_len)`, then each
//! key and value followed by a NUL byte (little-endian; Envoy `serializeValue`). A list is
//! encoded with its elements as keys and empty values. The SDK's own decoder indexes and
//! unwraps; this one returns `None` on any malformed input.

/// Decodes a pairs buffer into `(key, value)` byte pairs.
pub fn decode(bytes: &[u8]) -> Option<Vec<(&[u8], &[u8])>> {
    if bytes.is_empty() {
        return Some(Vec::new());
    }
    let count = read_u32(bytes, 0)? as usize;
    let header_end = count.checked_mul(8)?.checked_add(4)?;
    if header_end > bytes.len() {
        return None;
    }
    let mut out = Vec::with_capacity(count);
    let mut cursor = header_end;
    for i in 0..count {
        let key_len = read_u32(bytes, 4 + i * 8)? as usize;
        let value_len = read_u32(bytes, 8 + i * 8)? as usize;
        let key = bytes.get(cursor..cursor.checked_add(key_len)?)?;
        cursor = cursor.checked_add(key_len)?.checked_add(1)?;
        let value = bytes.get(cursor..cursor.checked_add(value_len)?)?;
        cursor = cursor.checked_add(value_len)?.checked_add(1)?;
        out.push((key, value));
    }
    Some(out)
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
