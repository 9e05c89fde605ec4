//! IP addresses and CIDR ranges for `ipBlocks`, `remoteIpBlocks`, `source.ip`, `remote.ip` and
//! `destination.ip`.
//!
//! Istio accepts a bare address (`10.1.2.3`, a /32 or /128) or a prefix (`10.0.0.0/8`), parsed
//! with Go's `netip.ParseAddr` / `netip.ParsePrefix`, and hands Envoy a `CidrRange`. Envoy's
//! `CidrRange` masks the host bits (so `10.1.2.3/8` means `10.0.0.0/8`) and never matches an
//! IPv4 address against an IPv6 range or the reverse (an IPv4-mapped IPv6 peer `::ffff:10.0.0.1`
//! is not in `10.0.0.0/8`).

use std::net::IpAddr;

/// `network/len`, as an `ipBlocks` value (the host bits already masked).
impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix_len)
    }
}

/// A parsed CIDR range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix_len: u8,
}

impl Cidr {
    /// Parses `addr` or `addr/len` as istiod does; the error says what is wrong.
    pub fn parse(value: &str) -> Result<Cidr, String> {
        let (addr, len) = match value.split_once('/') {
            Some((addr, len)) => (addr, Some(len)),
            None => (value, None),
        };
        let network: IpAddr = addr
            .parse()
            .map_err(|_| format!("bad IP address ({value})"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix_len = match len {
            None => max,
            Some(len) => {
                // Go's ParsePrefix rejects signs and leading zeros ("01").
                let plain = !len.is_empty()
                    && len.bytes().all(|b| b.is_ascii_digit())
                    && (len == "0" || !len.starts_with('0'));
                match len.parse::<u8>() {
                    Ok(n) if plain && n <= max => n,
                    _ => return Err(format!("bad CIDR range ({value})")),
                }
            }
        };
        Ok(Cidr {
            network,
            prefix_len,
        })
    }

    /// True when `ip` is inside the range (same address family only).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = mask_u32(self.prefix_len);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = mask_u128(self.prefix_len);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

fn mask_u32(len: u8) -> u32 {
    match len {
        0 => 0,
        n => u32::MAX << (32 - u32::from(n.min(32))),
    }
}

fn mask_u128(len: u8) -> u128 {
    match len {
        0 => 0,
        n => u128::MAX << (128 - u32::from(n.min(128))),
    }
}

/// Parses Envoy's `ip:port` / `[v6]:port` address strings (`source.address`,
/// `destination.address`) into the IP part.
pub fn parse_socket_ip(address: &[u8]) -> Option<IpAddr> {
    let text = std::str::from_utf8(address).ok()?;
    if let Some(rest) = text.strip_prefix('[') {
        let (host, _) = rest.split_once(']')?;
        return host.parse().ok();
    }
    match text.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host.parse().ok(),
        _ => text.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn bare_address_is_a_host_route() {
        let c = Cidr::parse("10.1.2.3").unwrap();
        assert!(c.contains(ip("10.1.2.3")));
        assert!(!c.contains(ip("10.1.2.4")));
    }

    #[test]
    fn prefix_masks_host_bits() {
        let c = Cidr::parse("10.1.2.3/8").unwrap();
        assert!(c.contains(ip("10.200.0.1")));
        assert!(!c.contains(ip("11.0.0.1")));
        let all = Cidr::parse("0.0.0.0/0").unwrap();
        assert!(all.contains(ip("203.0.113.9")));
    }

    #[test]
    fn families_never_cross() {
        let v4 = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(!v4.contains(ip("::ffff:10.0.0.1")));
        let v6 = Cidr::parse("2001:db8::/32").unwrap();
        assert!(v6.contains(ip("2001:db8::1")));
        assert!(!v6.contains(ip("10.0.0.1")));
    }

    #[test]
    fn malformed_ranges_are_rejected() {
        for bad in [
            "",
            "10.0.0",
            "10.0.0.0/33",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "10.0.0.0/08",
            "x/8",
            "::/129",
        ] {
            assert!(Cidr::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn socket_addresses_lose_their_port() {
        assert_eq!(parse_socket_ip(b"127.0.0.1:49770"), Some(ip("127.0.0.1")));
        assert_eq!(parse_socket_ip(b"[::1]:80"), Some(ip("::1")));
        assert_eq!(parse_socket_ip(b"10.0.0.1"), Some(ip("10.0.0.1")));
        assert_eq!(parse_socket_ip(b"garbage"), None);
    }
}
