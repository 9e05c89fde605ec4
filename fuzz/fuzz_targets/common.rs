//! Helpers shared by the fuzz targets: picking from vocabularies (so the structured inputs
//! reach the interesting compiler and matcher paths) with an escape hatch to arbitrary values.
#![allow(dead_code)]

use arbitrary::{Result, Unstructured};

/// One of `vocab`, or (1 time in 8) an arbitrary string.
pub fn pick(u: &mut Unstructured<'_>, vocab: &[&str]) -> Result<String> {
    if u.ratio(1, 8)? || vocab.is_empty() {
        return short_string(u);
    }
    Ok((*u.choose(vocab)?).to_string())
}

/// Only from `vocab`.
pub fn pick_strict<'a>(u: &mut Unstructured<'_>, vocab: &[&'a str]) -> Result<&'a str> {
    Ok(*u.choose(vocab)?)
}

/// A string of 0..=3 vocabulary pieces concatenated, or an arbitrary one.
pub fn pieces(u: &mut Unstructured<'_>, vocab: &[&str]) -> Result<String> {
    if u.ratio(1, 8)? {
        return short_string(u);
    }
    let n = u.int_in_range(0..=4)?;
    let mut s = String::new();
    for _ in 0..n {
        s.push_str(u.choose(vocab)?);
    }
    Ok(s)
}

/// An arbitrary UTF-8 string of at most 64 bytes.
pub fn short_string(u: &mut Unstructured<'_>) -> Result<String> {
    let s: String = u.arbitrary()?;
    Ok(truncate(s, 64))
}

/// Arbitrary bytes, at most `max` long.
pub fn short_bytes(u: &mut Unstructured<'_>, max: usize) -> Result<Vec<u8>> {
    let len = u.int_in_range(0..=max)?;
    Ok(u.bytes(len.min(u.len()))?.to_vec())
}

fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

/// A list of 0..=max items produced by `f`.
pub fn list<T>(
    u: &mut Unstructured<'_>,
    max: usize,
    mut f: impl FnMut(&mut Unstructured<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let n = u.int_in_range(0..=max)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(f(u)?);
    }
    Ok(out)
}

/// Prints what a structured input decoded to when `MESHGUARD_FUZZ_DEBUG` is set (to turn a
/// crash found by a structured target into a plain regression test).
pub fn debug(what: &str, value: &dyn std::fmt::Debug) {
    if std::env::var_os("MESHGUARD_FUZZ_DEBUG").is_some() {
        eprintln!("{what}: {value:?}");
    }
}

pub const PATH_PIECES: &[&str] = &[
    "/", "/api", "/admin", "{*}", "/{*}", "{**}", "/{**}", "*", "/*", "{", "}", "{id}", "..",
    "/..", "/.", "%2F", "%2e", "?", "#", "a b", "//", "/v1", "x", "=", "~", "\n", "é",
];

pub const CIDRS: &[&str] = &[
    "10.0.0.0/8",
    "10.1.2.3",
    "0.0.0.0/0",
    "::/0",
    "2001:db8::/32",
    "::1",
    "::ffff:10.0.0.1",
    "192.168.1.1/32",
    "10.0.0.0/33",
    "10.0.0.0/08",
    "10.0.0.0/+8",
    "10.0.0.0/",
    "/8",
    "",
    "300.1.1.1",
    "fe80::1%eth0",
    "1.2.3.4/-1",
    "::/129",
    "10.0.0",
    "1.2.3.4/255",
];

pub const PORTS: &[&str] = &[
    "80", "8080", "0", "65535", "65536", "-1", "", "08", "+80", "1e3", " 80",
];

pub const IDENTITIES: &[&str] = &[
    "*",
    "cluster.local/ns/foo/sa/bar",
    "cluster.local/ns/foo/*",
    "*/ns/foo/sa/bar",
    "*bar",
    "td/ns/foo/sa/bar",
    "alias.td/ns/foo/sa/bar",
    "*.td/ns/foo/sa/bar",
    "a/b/c/d/e",
    "a/b/c/d/e/f",
    "foo",
    "foo*",
    "*foo",
    "f*o",
    "**",
    "ns/sa",
    "foo/bar",
    "/",
    "a//b",
    "*td",
    "td*",
    "https://issuer.example.com/alice",
    "https://issuer.example.com/*",
    "*/alice",
    "iss/*",
];

pub const HEADER_VALUES: &[&str] = &[
    "*", "", "GET", "POST", "admin", "admin*", "*admin", "a*b", "x\ny",
];

pub const WHEN_KEYS: &[&str] = &[
    "request.headers[x-role]",
    "request.headers[X-Role]",
    "request.headers[:path]",
    "request.headers[]",
    "request.headers",
    "request.headers[x",
    "source.ip",
    "remote.ip",
    "destination.ip",
    "destination.port",
    "source.namespace",
    "source.principal",
    "source.serviceAccount",
    "source.trustDomain",
    "connection.sni",
    "destination.namespace",
    "destination.name",
    "destination.user",
    "destination.labels[app]",
    "request.auth.principal",
    "request.auth.audiences",
    "request.auth.presenter",
    "request.auth.claims[groups]",
    "request.auth.claims[a][b]",
    "request.auth.claims[[a]",
    "request.auth.claims[]",
    "request.auth.claims[a]b",
    "request.auth.claims",
    "experimental.envoy.filters.network.mysql_proxy[db.table]",
    "experimental.envoy.filters.a[b]",
    "experimental.envoy.filters.[b]",
    "experimental.envoy.filters.a[]",
    "experimental.envoy.filters.",
    "",
];
