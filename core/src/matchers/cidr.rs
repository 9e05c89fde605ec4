//! IP addresses and CIDR ranges for `ipBlocks`, `remoteIpBlocks`, `source.ip`, `remote.ip` and
//! `destination.ip`.
//!
//! Istio accepts a bare address (`10.1.2.3`, a /32 or /128) or a prefix (`10.0.0.0/8`), parsed
//! with Go's `netip.ParseAddr` / `netip.ParsePrefix`, and hands Envoy a `CidrRange`. Envoy's
//! `CidrRange` masks the host bits (so `10.1.2.3/8` means `10.0.0.0/8`) and never matches an
//! IPv4 address against an IPv6 range or the reverse (an IPv4-mapped IPv6 peer `::ffff:10.0.0.1`
//! is not in `10.0.0.0/8`).
//!
//! Addresses are read by [`parse_ip`], which accepts exactly what `IpAddr::from_str` accepts
//! (the standard library's `core::net::parser`, step for step: dotted-quad IPv4 without leading
//! zeros; IPv6 with one `::` and an IPv4 tail) in a fraction of its code; the tests compare the
//! two on every short string over the address alphabet and on many generated addresses.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

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
        let network =
            parse_ip(addr.as_bytes()).ok_or_else(|| format!("bad IP address ({value})"))?;
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
        return parse_ip(host.as_bytes());
    }
    match text.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => parse_ip(host.as_bytes()),
        _ => parse_ip(text.as_bytes()),
    }
}

/// Parses an IPv4 or IPv6 address exactly as `IpAddr::from_str` does (the whole input must be
/// the address; an input that starts with a complete IPv4 address is never read as IPv6).
pub fn parse_ip(text: &[u8]) -> Option<IpAddr> {
    let mut p = Parser { text, pos: 0 };
    let ip = match p.ipv4() {
        Some(octets) => IpAddr::V4(Ipv4Addr::from(octets)),
        None => IpAddr::V6(p.ipv6()?),
    };
    (p.pos == text.len()).then_some(ip)
}

/// A cursor over the address text; a read that fails leaves the position where it was.
struct Parser<'a> {
    text: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    /// Consumes `c` if it is next.
    fn eat(&mut self, c: u8) -> bool {
        let next = self.text.get(self.pos) == Some(&c);
        self.pos += usize::from(next);
        next
    }

    /// Up to `max` decimal (or hexadecimal) digits, as the standard parser's `read_number`: more
    /// digits fail, and so does a leading zero of several digits unless `zero_prefix`.
    fn number(&mut self, hex: bool, max: usize, zero_prefix: bool) -> Option<u32> {
        let rest = self.text.get(self.pos..).unwrap_or_default();
        let radix = if hex { 16 } else { 10 };
        let mut value = 0_u32;
        let mut count = 0;
        for &b in rest {
            let Some(digit) = digit(b, hex) else {
                break;
            };
            if count == max {
                return None;
            }
            value = value * radix + digit;
            count += 1;
        }
        if count == 0 || (count > 1 && !zero_prefix && rest.first() == Some(&b'0')) {
            return None;
        }
        self.pos += count;
        Some(value)
    }

    /// Four dotted decimal octets, each 0-255 in at most three digits without a leading zero.
    /// One pass over the bytes (the request path reads the peer's address with it).
    fn ipv4(&mut self) -> Option<[u8; 4]> {
        let rest = self.text.get(self.pos..).unwrap_or_default();
        let mut octets = [0_u8; 4];
        let (mut index, mut value, mut digits, mut leading_zero) = (0, 0_u32, 0, false);
        let mut used = 0;
        for &b in rest {
            if b.is_ascii_digit() {
                if digits == 3 {
                    return None;
                }
                leading_zero |= digits == 0 && b == b'0';
                value = value * 10 + u32::from(b - b'0');
                digits += 1;
            } else if b == b'.' && digits > 0 && index < 3 {
                *octets.get_mut(index)? = octet(value, digits, leading_zero)?;
                (index, value, digits, leading_zero) = (index + 1, 0, 0, false);
            } else {
                break;
            }
            used += 1;
        }
        if index != 3 || digits == 0 {
            return None;
        }
        *octets.get_mut(3)? = octet(value, digits, leading_zero)?;
        self.pos += used;
        Some(octets)
    }

    /// Up to `groups.len()` `:`-separated groups of one to four hex digits, the last two
    /// possibly an IPv4 address; how many were read and whether an IPv4 address ended them.
    fn groups(&mut self, groups: &mut [u16]) -> (usize, bool) {
        let limit = groups.len();
        for i in 0..limit {
            let before = self.pos;
            let separated = i == 0 || self.eat(b':');
            if separated && i + 1 < limit {
                if let Some([a, b, c, d]) = self.ipv4() {
                    let pair = [u16::from_be_bytes([a, b]), u16::from_be_bytes([c, d])];
                    if let Some(slots) = groups.get_mut(i..i + 2) {
                        slots.copy_from_slice(&pair);
                    }
                    return (i + 2, true);
                }
            }
            let group = if separated {
                self.number(true, 4, true)
            } else {
                None
            };
            match (group, groups.get_mut(i)) {
                (Some(g), Some(slot)) => *slot = u16::try_from(g).unwrap_or(0),
                _ => {
                    self.pos = before;
                    return (i, false);
                }
            }
        }
        (limit, false)
    }

    /// Eight groups, or fewer with one `::` standing for at least one zero group; an IPv4 tail
    /// only after the `::` or as the seventh and eighth groups.
    fn ipv6(&mut self) -> Option<Ipv6Addr> {
        let mut head = [0_u16; 8];
        let (head_size, head_ipv4) = self.groups(&mut head);
        if head_size == 8 {
            return Some(Ipv6Addr::from(head));
        }
        if head_ipv4 || !self.eat(b':') || !self.eat(b':') {
            return None;
        }
        let mut tail = [0_u16; 7];
        let (tail_size, _) = self.groups(tail.get_mut(..7 - head_size)?);
        head.get_mut(8 - tail_size..)?
            .copy_from_slice(tail.get(..tail_size)?);
        Some(Ipv6Addr::from(head))
    }
}

/// A decimal octet's value: at most 255, no leading zero unless it is `0` itself.
fn octet(value: u32, digits: usize, leading_zero: bool) -> Option<u8> {
    if leading_zero && digits > 1 {
        return None;
    }
    u8::try_from(value).ok()
}

/// The value of an ASCII digit (hexadecimal digits of either case when `hex`).
fn digit(b: u8, hex: bool) -> Option<u32> {
    match b {
        b'0'..=b'9' => Some(u32::from(b - b'0')),
        b'a'..=b'f' if hex => Some(u32::from(b - b'a') + 10),
        b'A'..=b'F' if hex => Some(u32::from(b - b'A') + 10),
        _ => None,
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

    fn std_parse(text: &[u8]) -> Option<IpAddr> {
        std::str::from_utf8(text).ok()?.parse().ok()
    }

    /// Every string of up to six bytes over the characters addresses are made of (and a few
    /// that are not): `parse_ip` accepts exactly what `IpAddr::from_str` accepts, with the
    /// same address.
    #[test]
    fn parse_ip_agrees_with_std_on_every_short_string() {
        let alphabet = b"0129af:.F/g";
        let mut level: Vec<Vec<u8>> = vec![Vec::new()];
        for _ in 0..6 {
            let mut next = Vec::with_capacity(level.len() * alphabet.len());
            for s in &level {
                for &c in alphabet {
                    let mut t = s.clone();
                    t.push(c);
                    assert_eq!(
                        parse_ip(&t),
                        std_parse(&t),
                        "{}",
                        String::from_utf8_lossy(&t)
                    );
                    next.push(t);
                }
            }
            level = next;
        }
    }

    /// Generated addresses in every shape the grammar has (IPv4 with and without leading
    /// zeros and out-of-range octets, IPv6 with 1-9 groups, `::` anywhere, IPv4 tails, long
    /// groups, stray separators), each also mutated by one inserted, dropped or changed byte.
    #[test]
    fn parse_ip_agrees_with_std_on_generated_addresses() {
        let mut seed = 0x2545_f491_u32;
        let mut next = move |n: u32| {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed % n
        };
        let mut accepted = 0;
        for _ in 0..200_000 {
            let mut text = String::new();
            let v4 = |next: &mut dyn FnMut(u32) -> u32, out: &mut String| {
                for i in 0..3 + next(3) {
                    if i > 0 {
                        out.push('.');
                    }
                    match next(6) {
                        0 => out.push_str(&format!("0{}", next(100))),
                        1 => out.push_str(&next(1000).to_string()),
                        _ => out.push_str(&next(256).to_string()),
                    }
                }
            };
            if next(3) == 0 {
                v4(&mut next, &mut text);
            } else {
                let groups = 1 + next(9);
                let gap = next(groups + 2);
                for i in 0..groups {
                    if i == gap {
                        text.push_str("::");
                    } else if i > 0 {
                        text.push(':');
                    }
                    if i + 1 == groups && next(4) == 0 {
                        v4(&mut next, &mut text);
                    } else {
                        let digits = 1 + next(5);
                        for _ in 0..digits {
                            text.push(
                                b"0123456789abcdefABCDEF"
                                    .get(next(22) as usize)
                                    .map_or('0', |&b| char::from(b)),
                            );
                        }
                    }
                }
                if gap == groups {
                    text.push_str("::");
                }
            }
            let mut bytes = text.into_bytes();
            if next(2) == 0 && !bytes.is_empty() {
                let at = next(bytes.len() as u32) as usize;
                match next(3) {
                    0 => {
                        bytes.remove(at);
                    }
                    1 => bytes.insert(at, b"0:.f"[next(4) as usize]),
                    _ => bytes[at] = b"0:.9"[next(4) as usize],
                }
            }
            let ours = parse_ip(&bytes);
            assert_eq!(
                ours,
                std_parse(&bytes),
                "{}",
                String::from_utf8_lossy(&bytes)
            );
            accepted += usize::from(ours.is_some());
        }
        // The generator reaches both outcomes in quantity.
        assert!(accepted > 20_000, "{accepted}");
    }

    #[test]
    fn parse_ip_reads_the_address_forms() {
        for text in [
            "0.0.0.0",
            "255.255.255.255",
            "::",
            "::1",
            "1::",
            "2001:db8::8a2e:370:7334",
            "::ffff:10.0.0.1",
            "1:2:3:4:5:6:1.2.3.4",
            "1:2:3:4:5:6:7:8",
            "FFFF::0000",
        ] {
            assert_eq!(parse_ip(text.as_bytes()), Some(ip(text)), "{text}");
        }
        for text in [
            "01.2.3.4",
            "1.2.3.256",
            "1.2.3.4:80",
            "1:2:3:4:5:6:7::1.2.3.4",
            "1.2.3.4::",
            "1::2::3",
            "12345::",
            ":::",
            "1:2:3:4:5:6:7:8:9",
            "",
        ] {
            assert_eq!(parse_ip(text.as_bytes()), None, "{text}");
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
