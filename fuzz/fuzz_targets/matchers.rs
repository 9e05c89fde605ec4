//! `matchers`: the compiled leaf matchers and the host wire-format decoders, on hostile input.
//!
//! The first byte selects the API; the rest is its input. Besides "never panics", each case
//! checks a property:
//! * `PathMatch`: a template's `literal_head` (the rule index's anchor) is a prefix of every
//!   path the template matches; a path is never matched by a pattern and its `notPaths` twin
//!   differently between `matches(url_path(p))` calls (determinism).
//! * `StringMatch`/`ValueMatch`: a case-sensitive match implies the case-insensitive one.
//! * `Glob`: agrees with a straightforward dynamic-programming matcher of the same language
//!   (`.` and `.*` that never match `\n`).
//! * `Cidr`: a parsed range contains its own address.
//! * `pairs`: `decode_exact(encode(x)) == x`, `decode` accepts whatever `decode_exact` does,
//!   and `decode_untyped` terminates for any depth.
#![no_main]

#[path = "common.rs"]
mod common;

use std::net::IpAddr;

use arbitrary::{Result, Unstructured};
use common::*;
use libfuzzer_sys::fuzz_target;
use meshguard_core::matchers::identity_match::{IdentityMatch, TrustBundle};
use meshguard_core::request::peer::Peer;
use meshguard_core::matchers::cidr::{parse_socket_ip, Cidr};
use meshguard_core::matchers::string_match::{is_dot_plus, Glob, GlobToken, Star, StringMatch, ValueMatch};
use meshguard_core::request::header_pairs;
use meshguard_core::matchers::path_match::{url_path, PathMatch};
use meshguard_core::egress::sidecar::resolve;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let mut u = Unstructured::new(rest);
    let _ = match selector % 8 {
        0 => path_match(&mut u),
        1 => string_match(&mut u),
        2 => glob(&mut u),
        3 => cidr(&mut u),
        4 => {
            raw_pairs(rest);
            Ok(())
        }
        5 => pairs_round_trip(&mut u),
        6 => identity(&mut u),
        _ => {
            misc(rest);
            Ok(())
        }
    };
});

fn path_match(u: &mut Unstructured<'_>) -> Result<()> {
    let pattern = pieces(u, PATH_PIECES)?;
    let path = if u.ratio(1, 4)? {
        short_bytes(u, 64)?
    } else {
        pieces(
            u,
            &[
                "/", "api", "x", "%2F", "?", "#", "//", "{", "*", ".", "é", "\n", "=",
            ],
        )?
        .into_bytes()
    };
    debug("pattern", &pattern);
    debug("path", &String::from_utf8_lossy(&path));
    let Ok(m) = PathMatch::parse(&pattern) else {
        return Ok(());
    };
    let p = url_path(&path);
    let first = m.matches(p);
    assert_eq!(first, m.matches(p));
    if let PathMatch::Template(t) = &m {
        if first {
            if let Some(head) = t.literal_head() {
                assert!(
                    p.starts_with(&head),
                    "template {pattern:?} matched {:?} outside its literal head {:?}",
                    String::from_utf8_lossy(p),
                    String::from_utf8_lossy(&head)
                );
            }
        }
    }
    Ok(())
}

fn string_match(u: &mut Unstructured<'_>) -> Result<()> {
    let pattern = pieces(u, &["*", "a", "A", "b", "é", "\n", ""])?;
    let value = if u.ratio(1, 4)? {
        short_bytes(u, 32)?
    } else {
        pieces(u, &["a", "A", "b", "*", "é", "É", "\n"])?.into_bytes()
    };
    let star = if u.arbitrary()? {
        Star::Present
    } else {
        Star::NonEmpty
    };
    let kind = StringMatch::parse(&pattern, star);
    let sensitive = kind.matches(&value);
    let insensitive = ValueMatch::new(kind.clone(), true).matches(&value);
    assert!(
        !sensitive || insensitive,
        "{pattern:?} matched case-sensitively only"
    );
    assert_eq!(sensitive, ValueMatch::parse(&pattern, star).matches(&value));
    let _ = is_dot_plus(&value);
    Ok(())
}

#[derive(Debug, Clone, Copy)]
enum T<'a> {
    Lit(&'a [u8]),
    One,
    Run,
}

/// Reference semantics: DP over (token, position).
fn reference(tokens: &[T<'_>], input: &[u8]) -> bool {
    // reach[i] = the input prefix of length i is matched by the tokens seen so far.
    let n = input.len();
    let mut reach = vec![false; n + 1];
    reach[0] = true;
    for t in tokens {
        let mut next = vec![false; n + 1];
        for i in 0..=n {
            if !reach[i] {
                continue;
            }
            match t {
                T::Lit(l) => {
                    if input[i..].starts_with(l) {
                        next[i + l.len()] = true;
                    }
                }
                T::One => {
                    if i < n && input[i] != b'\n' {
                        next[i + 1] = true;
                    }
                }
                T::Run => {
                    next[i] = true;
                    let mut j = i;
                    while j < n && input[j] != b'\n' {
                        j += 1;
                        next[j] = true;
                    }
                }
            }
        }
        reach = next;
    }
    reach[n]
}

fn glob(u: &mut Unstructured<'_>) -> Result<()> {
    const LITS: &[&[u8]] = &[b"a", b"b", b"ab", b"/ns/", b"/", b"\n", b""];
    let count = u.int_in_range(0..=8)?;
    let mut spec = Vec::with_capacity(count);
    let mut runs = 0;
    for _ in 0..count {
        spec.push(match u.int_in_range(0..=2)? {
            0 => T::Lit(*u.choose(LITS)?),
            1 => T::One,
            // Several `.*` are O(n^k) for the backtracking matcher: a handful is what istiod
            // generates (namespaces with stars), bounded so slow inputs are real findings.
            _ if runs < 4 => {
                runs += 1;
                T::Run
            }
            _ => T::One,
        });
    }
    let input = if u.ratio(1, 4)? {
        short_bytes(u, 64)?
    } else {
        pieces(u, &["a", "b", "/ns/", "/", "\n", "ab"])?.into_bytes()
    };
    let tokens: Vec<GlobToken> = spec
        .iter()
        .map(|t| match t {
            T::Lit(l) => GlobToken::Literal((*l).into()),
            T::One => GlobToken::AnyOne,
            T::Run => GlobToken::AnyRun,
        })
        .collect();
    let got = Glob::new(tokens).matches(&input);
    let want = reference(&spec, &input);
    assert_eq!(
        got,
        want,
        "glob {spec:?} on {:?}",
        String::from_utf8_lossy(&input)
    );
    Ok(())
}

fn cidr(u: &mut Unstructured<'_>) -> Result<()> {
    let text = if u.ratio(1, 2)? {
        pick(u, CIDRS)?
    } else {
        let addr: IpAddr = u.arbitrary()?;
        let len: u8 = u.arbitrary()?;
        format!("{addr}/{len}")
    };
    let ip: IpAddr = u.arbitrary()?;
    debug("cidr", &text);
    if let Ok(c) = Cidr::parse(&text) {
        let _ = c.contains(ip);
        let addr = text.split_once('/').map_or(text.as_str(), |(a, _)| a);
        if let Ok(own) = addr.parse::<IpAddr>() {
            assert!(c.contains(own), "{text} does not contain its own address");
        }
    }
    Ok(())
}

fn raw_pairs(bytes: &[u8]) {
    let loose = header_pairs::decode(bytes);
    let exact = header_pairs::decode_exact(bytes);
    if let Some(exact) = &exact {
        assert_eq!(loose.as_ref(), Some(exact));
    }
    for depth in [0, 1, 8, u8::MAX] {
        let _ = header_pairs::decode_untyped(bytes, depth);
    }
}

fn pairs_round_trip(u: &mut Unstructured<'_>) -> Result<()> {
    let items: Vec<(String, String)> = list(u, 6, |u| Ok((short_string(u)?, short_string(u)?)))?;
    let refs: Vec<(&str, &str)> = items
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let encoded = header_pairs::encode(&refs);
    let decoded = header_pairs::decode_exact(&encoded).expect("an encoding decodes");
    let expected: Vec<(&[u8], &[u8])> = refs
        .iter()
        .map(|(k, v)| (k.as_bytes(), v.as_bytes()))
        .collect();
    assert_eq!(decoded, expected);
    let _ = header_pairs::decode_untyped(&encoded, 8);
    // Nested: a map whose values are encodings themselves.
    let inner = String::from_utf8_lossy(&encoded).into_owned();
    let nested = header_pairs::encode(&[("k", inner.as_str())]);
    let _ = header_pairs::decode_untyped(&nested, u.arbitrary()?);
    Ok(())
}

fn identity(u: &mut Unstructured<'_>) -> Result<()> {
    let value = pick(u, IDENTITIES)?;
    let td = pick(u, &["cluster.local", "td", "*", ""])?;
    let aliases = list(u, 2, |u| {
        pick(u, &["alias.td", "*.td", "cluster.local", "", "*"])
    })?;
    let bundle = TrustBundle::new(&td, &aliases);
    let peer = Peer::new(
        Some(if u.ratio(1, 4)? {
            short_bytes(u, 64)?
        } else {
            pieces(
                u,
                &[
                    "spiffe://",
                    "cluster.local",
                    "td",
                    "/ns/",
                    "foo",
                    "/sa/",
                    "bar",
                    "/",
                    "*",
                    "\n",
                ],
            )?
            .into_bytes()
        }),
        None,
        if u.arbitrary()? {
            Some(short_bytes(u, 16)?)
        } else {
            None
        },
    );
    let mut matchers = vec![
        IdentityMatch::namespace(&value),
        IdentityMatch::service_account(&value, "foo"),
        IdentityMatch::trust_domain(&value),
    ];
    for p in bundle.expand_principal(&value) {
        matchers.push(IdentityMatch::principal(&p));
    }
    for t in bundle.expand_trust_domain(&value) {
        matchers.push(IdentityMatch::trust_domain(&t));
    }
    for m in &matchers {
        let _ = m.matches(Some(&peer));
        let _ = m.matches(None);
    }
    Ok(())
}

fn misc(bytes: &[u8]) {
    let _ = parse_socket_ip(bytes);
    let _ = url_path(bytes);
    let text = String::from_utf8_lossy(bytes);
    let _ = resolve(&text, "foo");
    let _ = resolve(&text, "");
}
