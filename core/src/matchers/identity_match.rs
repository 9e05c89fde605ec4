//! The peer's mTLS identity and the Source fields matched against it: `principals`,
//! `namespaces`, `serviceAccounts`, `trustDomains` and the `source.principal`,
//! `source.namespace`, `source.serviceAccount`, `source.trustDomain` conditions.
//!
//! Identity comes only from the downstream TLS connection, never from a header. Envoy's RBAC
//! `authenticated` matcher is false without TLS, and otherwise tries the URI SANs, then the DNS
//! SANs, then the certificate subject; it is true if any of them matches. Through proxy-wasm
//! meshguard sees the first URI SAN, the first DNS SAN and the subject, and tries them in that
//! order (a small, documented difference for certificates with several SANs of one kind).
//! Matchers only a `spiffe://` identity can satisfy (exact and prefix principals, service
//! accounts, trust domains) look at the URI SAN alone: a DNS SAN (a host name) or an RFC 2253
//! subject can never match them, so those two are not read.
//!
//! Each field compiles to the matcher istiod generates (`model/generator.go`):
//! * `principals`: `spiffe://` is prepended; `*` is `.+`; `*x` is `spiffe://.*x` (the regex
//!   keeps the `spiffe://` prefix); `x*` is prefix `spiffe://x`; otherwise exact.
//! * `namespaces`: regex `.*/ns/<ns>/.*` where every `*` of the value is `.*` and everything else
//!   is literal (PR #59992 quoting).
//! * `serviceAccounts`: `spiffe://.+/ns/<NS>/(.+/|)sa/<SA>(/.+)?`, namespace defaulting to the
//!   policy's namespace (quoted, CVE-2026-39350).
//! * `trustDomains`: `*` is prefix `spiffe://`; `td` is prefix `spiffe://td/`; `pre*` / `*suf`
//!   match the trust-domain segment by prefix / suffix.
//!
//! Trust-domain aliases mirror istiod's `trustdomain/bundle.go`: a principal of exactly five
//! `/`-separated parts whose trust domain is the local one, an alias, or the literal
//! `cluster.local` is expanded to one principal per trust domain of the bundle.

use crate::matchers::sort_order::sort_by_bytes;
use crate::matchers::string_match::{Glob, GlobToken, StringMatch};
use crate::matchers::substring;
use crate::request::peer::Peer;

/// One compiled identity matcher (a single policy value).
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)]
pub enum IdentityMatch {
    /// `principals` / `source.principal` values, already carrying the `spiffe://` prefix.
    String(StringMatch),
    /// Regex-equivalent globs (`namespaces`, `serviceAccounts`, suffix principals); any may match.
    Globs(Vec<Glob>),
    /// `trustDomains` values other than `*`.
    TrustDomain(TrustDomainMatch),
    /// The regex `.*<literal>.*`: the literal occurs and the identity has no newline.
    Contains(Box<[u8]>),
    /// Several `namespaces` values without `*` or `/`, ORed: some `/ns/<x>/` segment of the
    /// identity is in the set (equal to an OR of `Contains("/ns/<x>/")`). The set is a map
    /// with empty values of the rule index's table type, so one copy of that code ships.
    Namespaces(hashbrown::HashMap<Box<[u8]>, Vec<u32>>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrustDomainMatch {
    Exact(Box<[u8]>),
    Prefix(Box<[u8]>),
    Suffix(Box<[u8]>),
}

const SPIFFE: &str = "spiffe://";

impl IdentityMatch {
    /// True when the peer presented a certificate and one of its identities matches.
    pub fn matches(&self, peer: Option<&Peer>) -> bool {
        let Some(peer) = peer else {
            return false;
        };
        if self.uri_only() {
            return peer
                .uri_san
                .as_deref()
                .is_some_and(|id| self.matches_id(id));
        }
        peer.candidates().any(|id| self.matches_id(id))
    }

    /// True when only a `spiffe://` identity can match, so the DNS SAN and subject need not be
    /// read: a DNS SAN is a host name (no `:`) and a subject an RFC 2253 string, which starts
    /// with an attribute type (letters, digits, `-`, `.`) and `=`, never with `spiffe:`.
    fn uri_only(&self) -> bool {
        let spiffe = SPIFFE.as_bytes();
        match self {
            IdentityMatch::String(StringMatch::Exact(v) | StringMatch::Prefix(v)) => {
                v.starts_with(spiffe)
            }
            IdentityMatch::Globs(globs) => globs.iter().all(|g| g.anchored_at(spiffe)),
            IdentityMatch::TrustDomain(_) => true,
            IdentityMatch::String(_)
            | IdentityMatch::Contains(_)
            | IdentityMatch::Namespaces(_) => false,
        }
    }

    fn matches_id(&self, id: &[u8]) -> bool {
        match self {
            IdentityMatch::String(m) => m.matches(id),
            IdentityMatch::Globs(globs) => globs.iter().any(|g| g.matches(id)),
            IdentityMatch::Contains(needle) => {
                !id.contains(&b'\n') && substring::contains(id, needle)
            }
            IdentityMatch::Namespaces(set) => {
                !id.contains(&b'\n') && namespace_segments(id).any(|ns| set.contains_key(ns))
            }
            IdentityMatch::TrustDomain(td) => {
                let Some(rest) = id.strip_prefix(SPIFFE.as_bytes()) else {
                    return false;
                };
                let Some(slash) = rest.iter().position(|c| *c == b'/') else {
                    return false;
                };
                let domain = rest.get(..slash).unwrap_or_default();
                match td {
                    TrustDomainMatch::Exact(d) => domain == &d[..],
                    TrustDomainMatch::Prefix(p) => domain.starts_with(p),
                    TrustDomainMatch::Suffix(s) => domain.ends_with(s),
                }
            }
        }
    }

    /// A `principals` / `source.principal` value (after trust-domain alias expansion).
    pub fn principal(value: &str) -> IdentityMatch {
        if value == "*" {
            return IdentityMatch::String(StringMatch::NonEmpty);
        }
        if let Some(rest) = value.strip_prefix('*') {
            return IdentityMatch::Globs(vec![Glob::new(vec![
                lit(SPIFFE),
                GlobToken::AnyRun,
                lit(rest),
            ])]);
        }
        // `spiffe://<value>` is neither `*` nor `*`-prefixed: a prefix when it ends with `*`,
        // else exact (the forms `StringMatch::parse` would pick).
        let (body, prefix) = match value.strip_suffix('*') {
            Some(body) => (body, true),
            None => (value, false),
        };
        let uri: Box<[u8]> = [SPIFFE.as_bytes(), body.as_bytes()].concat().into();
        IdentityMatch::String(if prefix {
            StringMatch::Prefix(uri)
        } else {
            StringMatch::Exact(uri)
        })
    }

    /// A `namespaces` / `source.namespace` value: `.*/ns/<value with * as .*>/.*`.
    pub fn namespace(value: &str) -> IdentityMatch {
        // Without a `*`, `.*/ns/<ns>/.*` is exactly "contains `/ns/<ns>/` and no newline".
        if !value.contains('*') {
            return IdentityMatch::Contains(format!("/ns/{value}/").into_bytes().into());
        }
        let mut tokens = vec![GlobToken::AnyRun, lit("/ns/")];
        let mut parts = value.split('*').peekable();
        while let Some(part) = parts.next() {
            if !part.is_empty() {
                tokens.push(lit(part));
            }
            if parts.peek().is_some() {
                tokens.push(GlobToken::AnyRun);
            }
        }
        tokens.push(lit("/"));
        tokens.push(GlobToken::AnyRun);
        IdentityMatch::Globs(vec![Glob::new(tokens)])
    }

    /// A `serviceAccounts` / `source.serviceAccount` value (`sa` or `ns/sa`).
    pub fn service_account(value: &str, policy_namespace: &str) -> IdentityMatch {
        let (ns, sa) = value.split_once('/').unwrap_or((policy_namespace, value));
        // spiffe://.+/ns/NS/(.+/|)sa/SA(/.+)?  as four alternatives.
        let base = |middle: bool, trailing: bool| {
            let mut t = vec![lit(SPIFFE), GlobToken::AnyOne, GlobToken::AnyRun];
            t.push(lit(&format!("/ns/{ns}/")));
            if middle {
                t.extend([GlobToken::AnyOne, GlobToken::AnyRun, lit("/")]);
            }
            t.push(lit(&format!("sa/{sa}")));
            if trailing {
                t.extend([lit("/"), GlobToken::AnyOne, GlobToken::AnyRun]);
            }
            Glob::new(t)
        };
        IdentityMatch::Globs(vec![
            base(false, false),
            base(false, true),
            base(true, false),
            base(true, true),
        ])
    }

    /// A `trustDomains` / `source.trustDomain` value.
    pub fn trust_domain(value: &str) -> IdentityMatch {
        if value == "*" {
            return IdentityMatch::String(StringMatch::Prefix(SPIFFE.as_bytes().into()));
        }
        let td = if let Some(rest) = value.strip_prefix('*') {
            TrustDomainMatch::Suffix(rest.as_bytes().into())
        } else if let Some(rest) = value.strip_suffix('*') {
            TrustDomainMatch::Prefix(rest.as_bytes().into())
        } else {
            TrustDomainMatch::Exact(value.as_bytes().into())
        };
        IdentityMatch::TrustDomain(td)
    }
}

/// The source field an identity matcher stands for (for explanations).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityField {
    Principals,
    Namespaces,
    ServiceAccounts,
    TrustDomains,
}

impl IdentityMatch {
    /// Which source field this matcher was compiled from, and its values as the policy wrote
    /// them (`cluster.local/ns/foo/sa/bar`, `foo`, `ns/sa`, `td*`).
    pub fn describe(&self) -> (IdentityField, Vec<String>) {
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let unspiffe = |b: &[u8]| text(b.strip_prefix(SPIFFE.as_bytes()).unwrap_or(b));
        match self {
            IdentityMatch::String(StringMatch::Exact(v)) => {
                (IdentityField::Principals, vec![unspiffe(v)])
            }
            IdentityMatch::String(StringMatch::Prefix(v)) if &v[..] == SPIFFE.as_bytes() => {
                (IdentityField::TrustDomains, vec!["*".into()])
            }
            IdentityMatch::String(StringMatch::Prefix(v)) => {
                (IdentityField::Principals, vec![format!("{}*", unspiffe(v))])
            }
            IdentityMatch::String(m) => (IdentityField::Principals, vec![m.to_string()]),
            IdentityMatch::Contains(needle) => {
                let ns = needle
                    .strip_prefix(b"/ns/")
                    .and_then(|s| s.strip_suffix(b"/"))
                    .unwrap_or(needle);
                (IdentityField::Namespaces, vec![text(ns)])
            }
            IdentityMatch::Namespaces(set) => {
                let mut values: Vec<String> = set.keys().map(|ns| text(ns)).collect();
                sort_by_bytes(&mut values, |s| s.as_bytes());
                (IdentityField::Namespaces, values)
            }
            IdentityMatch::TrustDomain(td) => {
                let value = match td {
                    TrustDomainMatch::Exact(d) => text(d),
                    TrustDomainMatch::Prefix(p) => format!("{}*", text(p)),
                    TrustDomainMatch::Suffix(s) => format!("*{}", text(s)),
                };
                (IdentityField::TrustDomains, vec![value])
            }
            IdentityMatch::Globs(globs) => {
                let tokens = globs.first().map(|g| g.tokens()).unwrap_or_default();
                describe_glob(tokens)
            }
        }
    }
}

/// The field and value behind one of the globs [`IdentityMatch`] builds.
fn describe_glob(tokens: &[GlobToken]) -> (IdentityField, Vec<String>) {
    let mut pattern = String::new();
    let mut last_star = false;
    for token in tokens {
        match token {
            GlobToken::Literal(l) => {
                pattern.push_str(&String::from_utf8_lossy(l));
                last_star = false;
            }
            GlobToken::AnyOne | GlobToken::AnyRun => {
                if !last_star {
                    pattern.push('*');
                }
                last_star = true;
            }
        }
    }
    let service_account = matches!(tokens.get(1), Some(GlobToken::AnyOne));
    if service_account {
        // spiffe://*/ns/NS/sa/SA -> NS/SA
        let after_ns =
            substring::find(pattern.as_bytes(), b"/ns/").and_then(|at| pattern.get(at + 4..));
        let value = match after_ns {
            Some(rest) => match substring::find(rest.as_bytes(), b"/sa/") {
                Some(at) => {
                    let (ns, sa) = (rest.get(..at), rest.get(at + 4..));
                    format!("{}/{}", ns.unwrap_or_default(), sa.unwrap_or_default())
                }
                None => rest.to_string(),
            },
            None => pattern,
        };
        return (IdentityField::ServiceAccounts, vec![value]);
    }
    if let Some(ns) = pattern
        .strip_prefix("*/ns/")
        .and_then(|rest| rest.strip_suffix("/*"))
    {
        return (IdentityField::Namespaces, vec![ns.to_string()]);
    }
    let value = pattern
        .strip_prefix(SPIFFE)
        .map(str::to_string)
        .unwrap_or(pattern);
    (IdentityField::Principals, vec![value])
}

/// Every `<x>` such that `/ns/<x>/` occurs in `id` (occurrences may overlap).
fn namespace_segments(id: &[u8]) -> impl Iterator<Item = &[u8]> {
    (0..id.len()).filter_map(move |start| {
        // A slice pattern, not `strip_prefix`: it compiles to four byte tests where the core's
        // opt-level "z" would call `strip_prefix` and `memcmp` for every position.
        let [b'/', b'n', b's', b'/', rest @ ..] = id.get(start..)? else {
            return None;
        };
        let end = rest.iter().position(|c| *c == b'/')?;
        rest.get(..end)
    })
}

impl IdentityMatch {
    /// Folds an OR of namespace matchers into one set lookup where that is exact.
    pub fn fold_namespaces(alternatives: Vec<IdentityMatch>) -> Vec<IdentityMatch> {
        let mut set = hashbrown::HashMap::new();
        let mut rest = Vec::new();
        for m in alternatives {
            match m {
                IdentityMatch::Contains(needle) => {
                    let segment = needle
                        .strip_prefix(b"/ns/")
                        .and_then(|s| s.strip_suffix(b"/"))
                        .filter(|s| !s.contains(&b'/'));
                    match segment {
                        Some(ns) => {
                            set.insert(Box::<[u8]>::from(ns), Vec::new());
                        }
                        None => rest.push(IdentityMatch::Contains(needle)),
                    }
                }
                other => rest.push(other),
            }
        }
        if set.len() > 1 {
            rest.push(IdentityMatch::Namespaces(set));
        } else {
            rest.extend(
                set.keys()
                    .map(|ns| IdentityMatch::Contains([&b"/ns/"[..], ns, b"/"].concat().into())),
            );
        }
        rest
    }
}

fn lit(s: &str) -> GlobToken {
    GlobToken::Literal(s.as_bytes().into())
}

/// The mesh trust domain and its aliases (`trustDomain` + `trustDomainAliases`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustBundle {
    domains: Vec<String>,
}

/// The literal istiod treats as "the local trust domain and its aliases".
const CLUSTER_LOCAL: &str = "cluster.local";

impl TrustBundle {
    pub fn new(trust_domain: &str, aliases: &[String]) -> TrustBundle {
        let mut domains = vec![trust_domain.to_string()];
        domains.extend(aliases.iter().cloned());
        TrustBundle { domains }
    }

    /// istiod `ReplaceTrustDomainAliases` for one principal value.
    pub fn expand_principal(&self, principal: &str) -> Vec<String> {
        // `<td>/ns/<ns>/sa/<sa>`: five `/`-separated parts, the first the trust domain.
        let parts = principal.bytes().filter(|b| *b == b'/').count() + 1;
        let Some((domain, rest)) = principal.split_once('/').filter(|_| parts == 5) else {
            return vec![principal.to_string()];
        };
        if domain == "*" {
            return vec![principal.to_string()];
        }
        let in_bundle = self
            .domains
            .iter()
            .any(|td| td == domain || suffix_wildcard_matches(td, domain));
        if !in_bundle && domain != CLUSTER_LOCAL {
            return vec![principal.to_string()];
        }
        let mut out: Vec<String> = Vec::with_capacity(self.domains.len());
        for td in &self.domains {
            let candidate = if td == domain || suffix_wildcard_matches(td, domain) {
                principal.to_string()
            } else {
                format!("{td}/{rest}")
            };
            if !out.contains(&candidate) {
                out.push(candidate);
            }
        }
        out
    }

    /// `trustDomains` values equal to a bundle member stand for the whole bundle.
    pub fn expand_trust_domain(&self, value: &str) -> Vec<String> {
        if self.domains.iter().any(|td| td == value) {
            self.domains.clone()
        } else {
            vec![value.to_string()]
        }
    }
}

/// istiod `suffixMatch`: a `*`-prefixed trust domain from a policy matches by suffix.
fn suffix_wildcard_matches(td: &str, pattern: &str) -> bool {
    pattern
        .strip_prefix('*')
        .is_some_and(|suffix| td.ends_with(suffix))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(uri: &str) -> Peer {
        Peer::new(
            Some(uri.as_bytes().to_vec()),
            None,
            Some(b"CN=client".to_vec()),
        )
    }

    #[test]
    fn principal_forms_prepend_spiffe() {
        let p = peer("spiffe://cluster.local/ns/foo/sa/bar");
        assert!(IdentityMatch::principal("cluster.local/ns/foo/sa/bar").matches(Some(&p)));
        assert!(IdentityMatch::principal("cluster.local/ns/foo/*").matches(Some(&p)));
        assert!(IdentityMatch::principal("*/ns/foo/sa/bar").matches(Some(&p)));
        assert!(!IdentityMatch::principal("cluster.local/ns/foo/sa/ba").matches(Some(&p)));
        assert!(!IdentityMatch::principal("*/ns/foo/sa/ba").matches(Some(&p)));
    }

    #[test]
    fn suffix_principal_still_requires_the_spiffe_scheme() {
        let not_spiffe = peer("https://example.com/ns/foo/sa/bar");
        assert!(!IdentityMatch::principal("*/ns/foo/sa/bar").matches(Some(&not_spiffe)));
    }

    #[test]
    fn star_principal_matches_any_certificate_even_without_uri_san() {
        let dns_only = Peer::new(
            None,
            Some(b"client.example.com".to_vec()),
            Some(b"CN=client".to_vec()),
        );
        assert!(IdentityMatch::principal("*").matches(Some(&dns_only)));
        assert!(!IdentityMatch::principal("*").matches(None));
    }

    #[test]
    fn plaintext_never_matches_positive_identity() {
        for m in [
            IdentityMatch::principal("*"),
            IdentityMatch::namespace("*"),
            IdentityMatch::service_account("sa", "ns"),
            IdentityMatch::trust_domain("*"),
        ] {
            assert!(!m.matches(None));
        }
    }

    #[test]
    fn namespace_is_found_anywhere_between_ns_and_next_slash() {
        let m = IdentityMatch::namespace("victim");
        assert!(m.matches(Some(&peer("spiffe://td/ns/victim/sa/x"))));
        assert!(m.matches(Some(&peer("spiffe://td/ns/evil/sa/x/ns/victim/y"))));
        assert!(!m.matches(Some(&peer("spiffe://td/ns/victim"))));
        assert!(!m.matches(Some(&peer("spiffe://td/ns/victimx/sa/x"))));
    }

    #[test]
    fn namespace_glob_and_literal_dots() {
        assert!(IdentityMatch::namespace("te*").matches(Some(&peer("spiffe://td/ns/test/sa/x"))));
        assert!(IdentityMatch::namespace("*").matches(Some(&peer("spiffe://td/ns/a/sa/x"))));
        let dotted = IdentityMatch::namespace("a.b");
        assert!(dotted.matches(Some(&peer("spiffe://td/ns/a.b/sa/x"))));
        assert!(!dotted.matches(Some(&peer("spiffe://td/ns/aXb/sa/x"))));
    }

    #[test]
    fn service_account_regex_shapes() {
        let m = IdentityMatch::service_account("bar", "foo");
        assert!(m.matches(Some(&peer("spiffe://cluster.local/ns/foo/sa/bar"))));
        assert!(m.matches(Some(&peer("spiffe://cluster.local/ns/foo/x/y/sa/bar"))));
        assert!(m.matches(Some(&peer("spiffe://cluster.local/ns/foo/sa/bar/extra"))));
        assert!(!m.matches(Some(&peer("spiffe://cluster.local/ns/foo/sa/bar-junk"))));
        assert!(!m.matches(Some(&peer("spiffe://cluster.local/ns/other/sa/bar"))));
        let dotted = IdentityMatch::service_account("ns/admin.svc", "ignored");
        assert!(dotted.matches(Some(&peer("spiffe://td/ns/ns/sa/admin.svc"))));
        assert!(!dotted.matches(Some(&peer("spiffe://td/ns/ns/sa/adminXsvc"))));
    }

    #[test]
    fn trust_domain_forms() {
        let p = peer("spiffe://prod.example.com/ns/a/sa/b");
        assert!(IdentityMatch::trust_domain("prod.example.com").matches(Some(&p)));
        assert!(IdentityMatch::trust_domain("prod*").matches(Some(&p)));
        assert!(IdentityMatch::trust_domain("*.example.com").matches(Some(&p)));
        assert!(IdentityMatch::trust_domain("*").matches(Some(&p)));
        assert!(!IdentityMatch::trust_domain("prod.example").matches(Some(&p)));
        assert!(!IdentityMatch::trust_domain("prod.example.com")
            .matches(Some(&peer("spiffe://prod.example.com"))));
    }

    #[test]
    fn dns_san_and_subject_are_tried_after_uri_san() {
        let p = Peer::new(
            Some(b"spiffe://td/ns/a/sa/b".to_vec()),
            Some(b"x/ns/victim/y".to_vec()),
            None,
        );
        assert!(IdentityMatch::namespace("victim").matches(Some(&p)));
    }

    thread_local! {
        static FALLBACK_READS: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
    }

    fn counted_fallbacks() -> crate::request::peer::Fallbacks {
        FALLBACK_READS.with(|n| n.set(n.get() + 1));
        (
            Some(b"host.example".to_vec()),
            Some(b"CN=x/ns/other/y".to_vec()),
        )
    }

    fn fallback_reads(m: &IdentityMatch, uri_san: Option<&[u8]>) -> (bool, u32) {
        FALLBACK_READS.with(|n| n.set(0));
        let peer = Peer::lazy(uri_san.map(<[u8]>::to_vec), counted_fallbacks);
        let matched = m.matches(Some(&peer));
        (matched, FALLBACK_READS.with(|n| n.get()))
    }

    #[test]
    fn spiffe_only_matchers_do_not_read_the_dns_san_or_subject() {
        let uri = Some(&b"spiffe://td/ns/a/sa/b"[..]);
        for m in [
            IdentityMatch::principal("td/ns/a/sa/other"),
            IdentityMatch::principal("td/ns/z/*"),
            IdentityMatch::principal("*/sa/other"),
            IdentityMatch::service_account("other", "a"),
            IdentityMatch::trust_domain("other-td"),
        ] {
            assert_eq!(fallback_reads(&m, uri), (false, 0), "{m:?}");
            assert_eq!(fallback_reads(&m, None), (false, 0), "{m:?}");
        }
        let m = IdentityMatch::principal("td/ns/a/sa/b");
        assert_eq!(fallback_reads(&m, uri), (true, 0));
    }

    #[test]
    fn matchers_a_subject_can_satisfy_read_it_after_the_uri_san() {
        let uri = Some(&b"spiffe://td/ns/a/sa/b"[..]);
        assert_eq!(
            fallback_reads(&IdentityMatch::namespace("other"), uri),
            (true, 1)
        );
        assert_eq!(
            fallback_reads(&IdentityMatch::namespace("a"), uri),
            (true, 0)
        );
        assert_eq!(
            fallback_reads(&IdentityMatch::namespace("none"), None),
            (false, 1)
        );
    }

    #[test]
    fn aliases_expand_local_and_cluster_local_principals() {
        let b = TrustBundle::new("td2", &["td1".to_string()]);
        assert_eq!(
            b.expand_principal("td1/ns/foo/sa/bar"),
            vec!["td2/ns/foo/sa/bar", "td1/ns/foo/sa/bar"]
        );
        assert_eq!(
            b.expand_principal("cluster.local/ns/foo/sa/bar"),
            vec!["td2/ns/foo/sa/bar", "td1/ns/foo/sa/bar"]
        );
        assert_eq!(
            b.expand_principal("other/ns/foo/sa/bar"),
            vec!["other/ns/foo/sa/bar"]
        );
        assert_eq!(
            b.expand_principal("*/ns/foo/sa/bar"),
            vec!["*/ns/foo/sa/bar"]
        );
        assert_eq!(b.expand_principal("td1/ns/foo/*"), vec!["td1/ns/foo/*"]);
        assert_eq!(b.expand_principal("*"), vec!["*"]);
    }

    #[test]
    fn star_prefixed_trust_domain_is_kept_for_matching_domains() {
        let b = TrustBundle::new("new-td", &["old-td".to_string(), "other".to_string()]);
        assert_eq!(
            b.expand_principal("*-td/ns/foo/sa/bar"),
            vec!["*-td/ns/foo/sa/bar", "other/ns/foo/sa/bar"]
        );
    }

    #[test]
    fn trust_domain_values_in_bundle_expand_to_bundle() {
        let b = TrustBundle::new("td2", &["td1".to_string()]);
        assert_eq!(b.expand_trust_domain("td1"), vec!["td2", "td1"]);
        assert_eq!(b.expand_trust_domain("x"), vec!["x"]);
    }

    #[test]
    fn folded_namespace_set_equals_the_or_of_its_values() {
        let values = ["a", "b", "ns", "x.y"];
        let singles: Vec<IdentityMatch> =
            values.iter().map(|v| IdentityMatch::namespace(v)).collect();
        let folded = IdentityMatch::fold_namespaces(singles.clone());
        assert_eq!(folded.len(), 1);
        for id in [
            "spiffe://td/ns/a/sa/x",
            "spiffe://td/ns/ns/b/x",
            "spiffe://td/ns/ns/sa/x",
            "spiffe://td/ns/c/sa/ns/b/",
            "spiffe://td/ns/x.y/sa/z",
            "spiffe://td/ns/xzy/sa/z",
            "spiffe://td/ns/a",
            "/ns/a/",
            "spiffe://td/ns/a/\n",
        ] {
            let p = peer(id);
            let expected = singles.iter().any(|m| m.matches(Some(&p)));
            assert_eq!(folded.iter().any(|m| m.matches(Some(&p))), expected, "{id}");
        }
    }
}
