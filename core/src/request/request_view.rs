//! The engine's view of one request: the header map (read once, every value of repeated
//! headers kept) and the connection attributes, which the host resolves lazily.
//!
//! The engine never calls the host itself. The proxy-wasm glue implements [`Connection`] with
//! cached, on-demand property reads, so a policy that needs only headers costs no property
//! read at all; native tests implement it with a plain struct.

use std::net::IpAddr;

use crate::request::peer::Peer;

/// Request headers as Envoy hands them to a filter: lower-case names, pseudo-headers
/// (`:method`, `:path`, `:authority`, `:scheme`) included, one entry per value.
#[derive(Debug, Clone, Copy)]
pub struct Headers<'a> {
    pairs: Pairs<'a>,
}

/// Owned pairs (tests, the CLI, headers edited by authentication) or slices of the host's
/// buffer (the filter: no copy per header).
#[derive(Debug, Clone, Copy)]
enum Pairs<'a> {
    Owned(&'a [(String, Vec<u8>)]),
    Wire(&'a [(&'a [u8], &'a [u8])]),
}

impl<'a> Headers<'a> {
    pub fn new(pairs: &'a [(String, Vec<u8>)]) -> Headers<'a> {
        Headers {
            pairs: Pairs::Owned(pairs),
        }
    }

    /// Pairs decoded in place from the host's header-map buffer.
    pub fn from_wire(pairs: &'a [(&'a [u8], &'a [u8])]) -> Headers<'a> {
        Headers {
            pairs: Pairs::Wire(pairs),
        }
    }

    /// Every `(name, value)`, in arrival order.
    pub fn iter(&self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> + 'a {
        let (owned, wire) = match self.pairs {
            Pairs::Owned(p) => (p, &[][..]),
            Pairs::Wire(p) => (&[][..], p),
        };
        owned
            .iter()
            .map(|(n, v)| (n.as_bytes(), v.as_slice()))
            .chain(wire.iter().copied())
    }

    /// Every value of header `name` (lower-case), in arrival order.
    pub fn values(&self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        let name = lookup_name(name).as_bytes();
        self.iter()
            .filter(move |(n, _)| same_name(n, name))
            .map(|(_, v)| v)
    }

    /// Whether some value of header `name` satisfies `test` (what [`Headers::values`]`.any`
    /// answers), in plain loops over the pairs: this runs for every header condition of every
    /// request, and the core's opt-level "z" leaves each step of an iterator chain a call.
    pub fn any_value(&self, name: &str, mut test: impl FnMut(&[u8]) -> bool) -> bool {
        let name = lookup_name(name).as_bytes();
        match self.pairs {
            Pairs::Owned(pairs) => {
                for (n, v) in pairs {
                    if same_name(n.as_bytes(), name) && test(v) {
                        return true;
                    }
                }
            }
            Pairs::Wire(pairs) => {
                for (n, v) in pairs {
                    if same_name(n, name) && test(v) {
                        return true;
                    }
                }
            }
        }
        false
    }

    /// The first value of `name`; for pseudo-headers, which occur once. Plain loops, as
    /// [`Headers::any_value`].
    pub fn first(&self, name: &str) -> Option<&'a [u8]> {
        let name = lookup_name(name).as_bytes();
        match self.pairs {
            Pairs::Owned(pairs) => {
                for (n, v) in pairs {
                    if same_name(n.as_bytes(), name) {
                        return Some(v);
                    }
                }
            }
            Pairs::Wire(pairs) => {
                for (n, v) in pairs {
                    if same_name(n, name) {
                        return Some(v);
                    }
                }
            }
        }
        None
    }

    /// True for a gRPC request (`content-type: application/grpc...`).
    pub fn is_grpc(&self) -> bool {
        self.first("content-type")
            .is_some_and(|v| v.starts_with(b"application/grpc"))
    }
}

/// Header names compared ASCII case-insensitively, the lengths first, in a loop written out so
/// that it compiles into the caller: at the core's opt-level "z", `eq_ignore_ascii_case` (of
/// slices or of bytes) or a `zip` stays a call for every name of the map.
#[inline(always)]
#[allow(clippy::manual_ignore_case_cmp)]
pub fn same_name(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while let (Some(x), Some(y)) = (a.get(i), b.get(i)) {
        if x.to_ascii_lowercase() != y.to_ascii_lowercase() {
            return false;
        }
        i += 1;
    }
    true
}

/// The name Envoy's request header map looks `name` up under: the legacy `host` is an alias of
/// `:authority` (`Headers::HostLegacy` in Envoy's static lookup table), so Envoy's RBAC header
/// matcher on `host` (Istio `request.headers[host]`) reads the `:authority` value. The map handed
/// to a filter never holds a separate `host` entry.
#[inline(always)]
fn lookup_name(name: &str) -> &str {
    if same_name(name.as_bytes(), b"host") {
        ":authority"
    } else {
        name
    }
}

/// Connection attributes, read from the host only when a rule needs them.
///
/// `None` means the attribute is absent (for `peer`: no client certificate). Absent
/// attributes never match a positive field and always match a `not*` field.
pub trait Connection {
    /// The verified client certificate's identities; `None` on plaintext or without a cert.
    fn peer(&self) -> Option<&Peer>;
    /// The physical downstream peer address (Envoy `direct_remote_ip`). `Err(Unknown)` when
    /// the host cannot tell it (X-Forwarded-For replaced the address Envoy exposes).
    fn source_ip(&self) -> Result<Option<IpAddr>, Unknown>;
    /// The client address as Envoy computed it (`remote_ip`: XFF with trusted hops, PROXY).
    fn remote_ip(&self) -> Option<IpAddr>;
    /// The local address the connection arrived on.
    fn destination_ip(&self) -> Option<IpAddr>;
    /// The local port the connection arrived on (the workload port on a sidecar).
    fn destination_port(&self) -> Option<u16>;
    /// The TLS SNI; `None` without TLS.
    fn sni(&self) -> Option<&[u8]>;
    /// Dynamic metadata `filter_metadata[filter][key]`.
    fn metadata(&self, filter: &str, key: &str) -> Option<MetadataValue>;
}

/// An attribute the host cannot determine. Rules depending on it evaluate to "unknown":
/// never enough to allow, always enough to deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unknown;

/// A dynamic metadata value as far as `experimental.envoy.filters.*` conditions care.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataValue {
    String(Vec<u8>),
    List(Vec<Vec<u8>>),
    /// Bytes from the host, whose type the ABI does not say: a string's bytes, or a list in
    /// the pairs encoding. Read as whichever form the condition asks for.
    Raw(Vec<u8>),
}

/// A plain, fully-known connection for native tests and the CLI.
#[derive(Debug, Clone, Default)]
pub struct StaticConnection {
    pub peer: Option<Peer>,
    pub source_ip: Option<IpAddr>,
    /// Simulates a host that cannot tell the physical peer (`source_ip` is then ignored).
    pub source_ip_unknown: bool,
    pub remote_ip: Option<IpAddr>,
    pub destination_ip: Option<IpAddr>,
    pub destination_port: Option<u16>,
    pub sni: Option<Vec<u8>>,
    pub metadata: Vec<(String, String, MetadataValue)>,
}

impl Connection for StaticConnection {
    fn peer(&self) -> Option<&Peer> {
        self.peer.as_ref()
    }
    fn source_ip(&self) -> Result<Option<IpAddr>, Unknown> {
        if self.source_ip_unknown {
            Err(Unknown)
        } else {
            Ok(self.source_ip)
        }
    }
    fn remote_ip(&self) -> Option<IpAddr> {
        self.remote_ip
    }
    fn destination_ip(&self) -> Option<IpAddr> {
        self.destination_ip
    }
    fn destination_port(&self) -> Option<u16> {
        self.destination_port
    }
    fn sni(&self) -> Option<&[u8]> {
        self.sni.as_deref()
    }
    fn metadata(&self, filter: &str, key: &str) -> Option<MetadataValue> {
        self.metadata
            .iter()
            .find(|(f, k, _)| f == filter && k == key)
            .map(|(_, _, v)| v.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned() -> Vec<(String, Vec<u8>)> {
        [
            (":authority", "example.com"),
            (":path", "/a?b"),
            ("X-Tenant", "t1"),
            ("x-tenant", "t2"),
            ("x-tenanT-id", "t3"),
        ]
        .iter()
        .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
        .collect()
    }

    #[test]
    fn first_and_any_value_answer_as_the_iterator_does_for_both_pair_forms() {
        let owned = owned();
        let wire: Vec<(&[u8], &[u8])> = owned
            .iter()
            .map(|(n, v)| (n.as_bytes(), v.as_slice()))
            .collect();
        for headers in [Headers::new(&owned), Headers::from_wire(&wire)] {
            for name in [
                ":path",
                "x-tenant",
                "X-TENANT",
                "host",
                ":authority",
                "x-ten",
                "",
            ] {
                let by_iterator = headers
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(lookup_name(name).as_bytes()));
                assert_eq!(headers.first(name), by_iterator.map(|(_, v)| v), "{name}");
                let values: Vec<&[u8]> = headers.values(name).collect();
                for wanted in [&b"t1"[..], b"t2", b"t3", b"example.com", b"/a?b"] {
                    assert_eq!(
                        headers.any_value(name, |v| v == wanted),
                        values.contains(&wanted),
                        "{name} {wanted:?}"
                    );
                }
            }
        }
        assert!(same_name(b"X-Tenant", b"x-tenant"));
        assert!(!same_name(b"x-tenant", b"x-tenanz"));
        assert!(!same_name(b"x-tenant", b"x-tenant-id"));
    }
}
