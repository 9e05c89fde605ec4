//! Compiled rule predicates: a small closed set of leaf conditions composed with
//! `All` / `Any` / `Not`, mirroring Envoy RBAC's `and_ids` / `or_ids` / `not_id` permissions
//! and principals that istiod generates for a rule.
//!
//! Absent attributes make every leaf false (Envoy semantics), so a `Not` around a leaf is true
//! when the attribute is missing: that is why `notPrincipals` admits plaintext peers and
//! `notValues` admits requests without the header (Istio security bulletin 2021-004).

use std::borrow::Cow;

use crate::matchers::cidr::Cidr;
use crate::matchers::identity_match::IdentityMatch;
use crate::matchers::path_match::{url_path, PathMatch};
use crate::matchers::string_match::{StringMatch, ValueMatch};
use crate::request::header_pairs;
use crate::request::json_value::JsonValue;
use crate::request::request_view::{Connection, Headers, MetadataValue};
use crate::request::verified_claims::Claims;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Predicate {
    /// Matches everything (a rule, source or operation with no constraint).
    Any,
    /// Children are boxed slices, not `Vec`s: exactly as long as needed (a rule holds thousands of
    /// these at 10,000 rules, and Wasm memory never shrinks below its load peak).
    All(Box<[Predicate]>),
    Or(Box<[Predicate]>),
    Not(Box<Predicate>),
    /// Some value of the named header matches (repeated headers are matched value by value,
    /// as Envoy does since CVE-2026-26308). Names are stored lower-case.
    Header(HeaderName, ValueMatch),
    /// The query- and fragment-less `:path`.
    Path(PathMatch),
    /// The peer certificate's identity.
    Identity(IdentityMatch),
    SourceIp(Cidr),
    RemoteIp(Cidr),
    DestinationIp(Cidr),
    DestinationPort(u16),
    Sni(StringMatch),
    /// `requestPrincipals` / `request.auth.principal`: the verified JWT's `iss` and `sub`
    /// (istiod splits the value at its last `/`).
    RequestPrincipal {
        iss: StringMatch,
        sub: StringMatch,
    },
    /// A verified JWT claim at a nested path: a string claim that matches, or a list claim
    /// with a matching string element (`request.auth.claims[..]`, `audiences`, `presenter`).
    Claim(Box<[Box<str>]>, StringMatch),
    /// `experimental.envoy.filters.<filter>[<key>]`; `list` is the `[v]` list-contains form.
    Metadata {
        filter: Box<str>,
        key: Box<str>,
        value: StringMatch,
        list: bool,
    },
}

/// A header name in a [`Predicate::Header`]: the pseudo-headers rules read most (`methods`,
/// `hosts`) are static, so the leaves of thousands of rules allocate no copy of them.
pub type HeaderName = Cow<'static, str>;

/// The [`HeaderName`] for `name` (already lower-case), borrowed when it is a known pseudo-header.
pub fn header_name(name: &str) -> HeaderName {
    const STATIC: [&str; 4] = [":method", ":authority", ":path", ":scheme"];
    match STATIC.iter().find(|s| **s == name) {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(name.to_owned()),
    }
}

/// Kleene three-valued truth: `Unknown` comes from attributes the host cannot determine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tri {
    False,
    True,
    Unknown,
}

impl From<bool> for Tri {
    fn from(b: bool) -> Tri {
        if b {
            Tri::True
        } else {
            Tri::False
        }
    }
}

/// What a predicate is evaluated against.
pub struct Subject<'a> {
    pub headers: Headers<'a>,
    pub connection: &'a dyn Connection,
    /// The verified end-user token, if any.
    pub claims: Option<&'a Claims>,
}

impl Predicate {
    /// Evaluates with Kleene logic. Only `source.ip` can be unknown today.
    pub fn eval(&self, s: &Subject<'_>) -> Tri {
        match self {
            Predicate::All(ps) => {
                let mut result = Tri::True;
                for p in ps {
                    match p.eval(s) {
                        Tri::False => return Tri::False,
                        Tri::Unknown => result = Tri::Unknown,
                        Tri::True => {}
                    }
                }
                result
            }
            Predicate::Or(ps) => {
                let mut result = Tri::False;
                for p in ps {
                    match p.eval(s) {
                        Tri::True => return Tri::True,
                        Tri::Unknown => result = Tri::Unknown,
                        Tri::False => {}
                    }
                }
                result
            }
            Predicate::Not(p) => match p.eval(s) {
                Tri::True => Tri::False,
                Tri::False => Tri::True,
                Tri::Unknown => Tri::Unknown,
            },
            Predicate::SourceIp(c) => match s.connection.source_ip() {
                Ok(ip) => ip.is_some_and(|ip| c.contains(ip)).into(),
                Err(_) => Tri::Unknown,
            },
            leaf => leaf.leaf_matches(s).into(),
        }
    }

    fn leaf_matches(&self, s: &Subject<'_>) -> bool {
        match self {
            Predicate::Any => true,
            Predicate::All(_) | Predicate::Or(_) | Predicate::Not(_) | Predicate::SourceIp(_) => {
                self.eval(s) == Tri::True
            }
            Predicate::Header(name, m) => s.headers.any_value(name, |v| m.matches(v)),
            Predicate::Path(m) => s
                .headers
                .first(":path")
                .is_some_and(|p| m.matches(url_path(p))),
            Predicate::Identity(m) => m.matches(s.connection.peer()),
            Predicate::RemoteIp(c) => s.connection.remote_ip().is_some_and(|ip| c.contains(ip)),
            Predicate::DestinationIp(c) => s
                .connection
                .destination_ip()
                .is_some_and(|ip| c.contains(ip)),
            Predicate::DestinationPort(port) => s.connection.destination_port() == Some(*port),
            Predicate::Sni(m) => s.connection.sni().is_some_and(|v| m.matches(v)),
            Predicate::RequestPrincipal { iss, sub } => s.claims.is_some_and(|c| {
                c.string("iss").is_some_and(|v| iss.matches(v.as_bytes()))
                    && c.string("sub").is_some_and(|v| sub.matches(v.as_bytes()))
            }),
            Predicate::Claim(path, m) => match s.claims.and_then(|c| c.get(path)) {
                Some(JsonValue::String(v)) => m.matches(v.as_bytes()),
                Some(JsonValue::Array(items)) => items
                    .iter()
                    .any(|i| i.as_str().is_some_and(|v| m.matches(v.as_bytes()))),
                _ => false,
            },
            Predicate::Metadata {
                filter,
                key,
                value,
                list,
            } => match (s.connection.metadata(filter, key), *list) {
                (Some(MetadataValue::String(v) | MetadataValue::Raw(v)), false) => {
                    value.matches(&v)
                }
                (Some(MetadataValue::List(items)), true) => items.iter().any(|v| value.matches(v)),
                (Some(MetadataValue::Raw(bytes)), true) => header_pairs::decode(&bytes)
                    .is_some_and(|items| items.iter().any(|(v, _)| value.matches(v))),
                _ => false,
            },
        }
    }

    /// `All`, collapsing the trivial cases.
    pub fn all(mut ps: Vec<Predicate>) -> Predicate {
        ps.retain(|p| !matches!(p, Predicate::Any));
        match ps.len() {
            0 => Predicate::Any,
            1 => ps.pop().unwrap_or(Predicate::Any),
            _ => Predicate::All(ps.into_boxed_slice()),
        }
    }

    /// `Or` of at least one predicate; identity alternatives over plain namespaces are folded
    /// into one set lookup.
    pub fn or(ps: Vec<Predicate>) -> Predicate {
        let identities = ps
            .iter()
            .filter(|p| matches!(p, Predicate::Identity(_)))
            .count();
        let mut ps = if identities > 1 {
            let (ids, mut others): (Vec<Predicate>, Vec<Predicate>) = ps
                .into_iter()
                .partition(|p| matches!(p, Predicate::Identity(_)));
            let ids = ids
                .into_iter()
                .filter_map(|p| match p {
                    Predicate::Identity(m) => Some(m),
                    _ => None,
                })
                .collect();
            others.extend(
                IdentityMatch::fold_namespaces(ids)
                    .into_iter()
                    .map(Predicate::Identity),
            );
            others
        } else {
            ps
        };
        if ps.len() == 1 {
            return ps.pop().unwrap_or(Predicate::Any);
        }
        Predicate::Or(ps.into_boxed_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudo_header_names_are_static_and_other_names_are_copied() {
        for name in [":method", ":authority", ":path", ":scheme"] {
            assert!(matches!(header_name(name), Cow::Borrowed(n) if n == name));
        }
        assert!(matches!(header_name("x-tenant"), Cow::Owned(n) if n == "x-tenant"));
    }
}
