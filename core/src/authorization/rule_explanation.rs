//! Why a compiled rule matched or not: the rule's `from`, `to` and `when[i]` parts, each
//! evaluated on its own with the very predicates the decision evaluates (no second matcher).
//! A rule is the conjunction of its parts, as istiod's RBAC policy is the `and` of a
//! principal and a permission per rule; a part the rule leaves unconstrained is absent.
//! Used by `meshguard check` to say which parts of the deciding rule matched and, for a
//! default deny, which part of the closest ALLOW rule failed.
//!
//! Each part is also put in words as Istio names the fields (`to.operation.paths: request
//! path "/admin" is not one of ["/api/*"]`, `when request.auth.claims[iss]: ...`): the leaves
//! of the compiled predicate are mapped back to the AuthorizationPolicy field or `when` key
//! they were compiled from, and the request's own value is read through the same view.

use std::fmt;

use crate::matchers::identity_match::IdentityField;
use crate::matchers::path_match::url_path;
use crate::matchers::predicate::{Predicate, Subject, Tri};
use crate::request::json_value::JsonValue;

/// Where a conjunct of a compiled rule came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RulePart {
    /// `rules[].from` (the OR of its sources).
    From,
    /// `rules[].to` (the OR of its operations).
    To,
    /// `rules[].when[i]` (`u32`: a rule keeps one of these per part).
    When(u32),
    /// The whole rule, for kinds whose rules are not itemized (legacy RBAC, SecurityRule).
    Rule,
}

impl fmt::Display for RulePart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RulePart::From => f.write_str("from"),
            RulePart::To => f.write_str("to"),
            RulePart::When(i) => write!(f, "when[{i}]"),
            RulePart::Rule => f.write_str("rule"),
        }
    }
}

/// One part of a rule and its result for this request.
#[derive(Debug, Clone)]
pub struct PartOutcome<'r> {
    pub part: RulePart,
    pub result: Tri,
    /// The compiled condition.
    pub predicate: &'r Predicate,
    /// Why the part came out as it did, one line per field in Istio's terms: every
    /// constraint when it matched, the ones that did not when it failed.
    pub reasons: Vec<String>,
}

/// Evaluates each part of a rule compiled as `Predicate::all(parts)` with `labels` naming
/// them; a rule without labels (or whose shape does not line up) is one `rule` part.
pub fn explain_parts<'r>(
    predicate: &'r Predicate,
    labels: &[RulePart],
    s: &Subject<'_>,
) -> Vec<PartOutcome<'r>> {
    let outcome = |part: RulePart, predicate: &'r Predicate| PartOutcome {
        part,
        result: predicate.eval(s),
        predicate,
        reasons: reasons(predicate, part, s),
    };
    match (labels, predicate) {
        ([only], _) => vec![outcome(*only, predicate)],
        (labels, Predicate::All(children))
            if labels.len() == children.len() && labels.len() > 1 =>
        {
            labels
                .iter()
                .zip(children)
                .map(|(part, p)| outcome(*part, p))
                .collect()
        }
        _ => vec![outcome(RulePart::Rule, predicate)],
    }
}

/// The lines explaining why `predicate` (one part of a rule) evaluated as it did.
pub fn reasons(predicate: &Predicate, part: RulePart, s: &Subject<'_>) -> Vec<String> {
    let mut out = Vec::new();
    explain_into(predicate, part, false, s, &mut out);
    out
}

fn explain_into(
    p: &Predicate,
    part: RulePart,
    negated: bool,
    s: &Subject<'_>,
    out: &mut Vec<String>,
) {
    if let Some(leaves) = field_leaves(p) {
        out.push(field_text(&leaves, part, negated, p.eval(s), s));
        return;
    }
    let result = p.eval(s);
    match p {
        Predicate::Any => out.push(format!("{}: no constraint", part_name(part))),
        Predicate::Not(inner) => explain_into(inner, part, !negated, s, out),
        // A conjunction that held: every constraint; one that failed: the failing ones.
        Predicate::All(children) => {
            for c in children {
                if result == Tri::True || c.eval(s) != Tri::True {
                    explain_into(c, part, negated, s, out);
                }
            }
        }
        // A disjunction that held: the alternative that matched; else why each failed.
        Predicate::Or(children) => {
            let matched = children.iter().find(|c| c.eval(s) == Tri::True);
            match matched {
                Some(c) if result == Tri::True => explain_into(c, part, negated, s, out),
                _ => {
                    let mut alternatives = Vec::new();
                    for c in children {
                        let mut lines = Vec::new();
                        explain_into(c, part, negated, s, &mut lines);
                        alternatives.push(lines.join(" and "));
                    }
                    out.push(alternatives.join(" or "));
                }
            }
        }
        leaf => out.push(field_text(&[leaf], part, negated, result, s)),
    }
}

/// A leaf, or an OR of leaves of one field (one policy field's list of values).
fn field_leaves(p: &Predicate) -> Option<Vec<&Predicate>> {
    match p {
        Predicate::Any | Predicate::All(_) | Predicate::Not(_) => None,
        Predicate::Or(children) => {
            let first = children.first()?;
            let name = leaf_field(first)?;
            children
                .iter()
                .all(|c| leaf_field(c).as_ref() == Some(&name))
                .then(|| children.iter().collect())
        }
        leaf => leaf_field(leaf).map(|_| vec![leaf]),
    }
}

/// How a leaf is named: the AuthorizationPolicy source/operation field and the `when` key.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FieldName {
    field: &'static str,
    key: String,
}

fn named(field: &'static str, key: impl Into<String>) -> Option<FieldName> {
    Some(FieldName {
        field,
        key: key.into(),
    })
}

fn leaf_field(p: &Predicate) -> Option<FieldName> {
    match p {
        Predicate::Any | Predicate::All(_) | Predicate::Or(_) | Predicate::Not(_) => None,
        Predicate::Header(name, _) => match &**name {
            ":method" => named("methods", "request.method"),
            ":authority" => named("hosts", "request.host"),
            other => named("", format!("request.headers[{other}]")),
        },
        Predicate::Path(_) => named("paths", "request.url_path"),
        Predicate::Identity(m) => match m.describe().0 {
            IdentityField::Principals => named("principals", "source.principal"),
            IdentityField::Namespaces => named("namespaces", "source.namespace"),
            IdentityField::ServiceAccounts => named("serviceAccounts", "source.serviceAccount"),
            IdentityField::TrustDomains => named("trustDomains", "source.trustDomain"),
        },
        Predicate::SourceIp(_) => named("ipBlocks", "source.ip"),
        Predicate::RemoteIp(_) => named("remoteIpBlocks", "remote.ip"),
        Predicate::DestinationIp(_) => named("", "destination.ip"),
        Predicate::DestinationPort(_) => named("ports", "destination.port"),
        Predicate::Sni(_) => named("", "connection.sni"),
        Predicate::RequestPrincipal { .. } => named("requestPrincipals", "request.auth.principal"),
        Predicate::Claim(path, _) => named(
            "",
            format!(
                "request.auth.claims{}",
                path.iter().map(|p| format!("[{p}]")).collect::<String>()
            ),
        ),
        Predicate::Metadata { filter, key, .. } => {
            named("", format!("experimental.envoy.filters.{filter}[{key}]"))
        }
    }
}

fn part_name(part: RulePart) -> String {
    match part {
        RulePart::From => "from.source".into(),
        RulePart::To => "to.operation".into(),
        RulePart::When(_) => "when".into(),
        RulePart::Rule => "rule".into(),
    }
}

/// `to.operation.notPaths`, `when request.auth.claims[iss]`, `rule source.ip`.
fn field_label(name: &FieldName, part: RulePart, negated: bool) -> String {
    let not = |field: &str| {
        let mut chars = field.chars();
        match chars.next() {
            Some(c) => format!("not{}{}", c.to_ascii_uppercase(), chars.as_str()),
            None => String::new(),
        }
    };
    match part {
        RulePart::From | RulePart::To if !name.field.is_empty() => {
            let field = if negated {
                not(name.field)
            } else {
                name.field.to_string()
            };
            format!("{}.{field}", part_name(part))
        }
        _ => {
            let values = if negated { " notValues" } else { "" };
            format!("{} {}{values}", part_name(part), name.key)
        }
    }
}

/// `<field>: <the request's value> is [not] one of [<values>]`. `result` is the field's own
/// result (before a `not`).
fn field_text(
    leaves: &[&Predicate],
    part: RulePart,
    negated: bool,
    result: Tri,
    s: &Subject<'_>,
) -> String {
    let Some(first) = leaves.first() else {
        return String::new();
    };
    let label =
        leaf_field(first).map_or_else(|| part_name(part), |n| field_label(&n, part, negated));
    let values: Vec<String> = leaves.iter().flat_map(|l| expected(l)).collect();
    let values = values
        .iter()
        .map(|v| format!("{v:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    let value = match actual(first, s) {
        Ok(value) => value,
        Err(absent) if result == Tri::False => {
            return format!("{label}: {absent}, so none of [{values}] can match");
        }
        Err(absent) => absent,
    };
    let verdict = match result {
        Tri::True => "is one of",
        Tri::False => "is not one of",
        Tri::Unknown => "may or may not be one of",
    };
    format!("{label}: {value} {verdict} [{values}]")
}

/// The policy values behind a leaf, as written in the policy.
fn expected(p: &Predicate) -> Vec<String> {
    match p {
        Predicate::Header(_, m) => vec![m.to_string()],
        Predicate::Path(m) => vec![m.to_string()],
        Predicate::Identity(m) => m.describe().1,
        Predicate::SourceIp(c) | Predicate::RemoteIp(c) | Predicate::DestinationIp(c) => {
            vec![c.to_string()]
        }
        Predicate::DestinationPort(port) => vec![port.to_string()],
        Predicate::Sni(m) => vec![m.to_string()],
        Predicate::RequestPrincipal { iss, sub } => vec![format!("{iss}/{sub}")],
        Predicate::Claim(_, m) => vec![m.to_string()],
        Predicate::Metadata { value, .. } => vec![value.to_string()],
        Predicate::Any | Predicate::All(_) | Predicate::Or(_) | Predicate::Not(_) => Vec::new(),
    }
}

fn quoted(bytes: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(bytes))
}

/// The request's value for a leaf's attribute, read through the same view the decision used.
/// The request's value for a leaf's attribute (`Err` says it is absent), read through the
/// same view the decision used.
fn actual(p: &Predicate, s: &Subject<'_>) -> Result<String, String> {
    let c = s.connection;
    let value = |v: Option<String>, what: &str, none: &str| match v {
        Some(v) => Ok(format!("{what} {v}")),
        None => Err(none.to_string()),
    };
    match p {
        Predicate::Header(name, _) => {
            let values: Vec<String> = s.headers.values(name).map(quoted).collect();
            let what = match &**name {
                ":method" => "method".to_string(),
                ":authority" => "host".to_string(),
                other => format!("header {other}"),
            };
            match values.len() {
                0 => Err(format!("no {what}")),
                1 => Ok(format!("{what} {}", values.join(""))),
                _ => Ok(format!("{what} [{}]", values.join(", "))),
            }
        }
        Predicate::Path(_) => value(
            s.headers.first(":path").map(|p| quoted(url_path(p))),
            "request path",
            "no :path",
        ),
        Predicate::Identity(_) => match c.peer() {
            None => Err("no peer certificate (plaintext)".to_string()),
            Some(peer) => value(
                peer.candidates().next().map(quoted),
                "peer",
                "a peer certificate without identity",
            ),
        },
        Predicate::SourceIp(_) => match c.source_ip() {
            Ok(ip) => value(ip.map(|i| i.to_string()), "source ip", "no source ip"),
            Err(_) => Err("source ip unknown".to_string()),
        },
        Predicate::RemoteIp(_) => value(
            c.remote_ip().map(|i| i.to_string()),
            "remote ip",
            "no remote ip",
        ),
        Predicate::DestinationIp(_) => value(
            c.destination_ip().map(|i| i.to_string()),
            "destination ip",
            "no destination ip",
        ),
        Predicate::DestinationPort(_) => value(
            c.destination_port().map(|p| p.to_string()),
            "port",
            "no destination port",
        ),
        Predicate::Sni(_) => value(c.sni().map(quoted), "SNI", "no SNI"),
        Predicate::RequestPrincipal { .. } => match s.claims {
            None => Err("no verified token".to_string()),
            Some(claims) => Ok(format!(
                "token principal {:?}",
                format!(
                    "{}/{}",
                    claims.string("iss").unwrap_or_default(),
                    claims.string("sub").unwrap_or_default()
                )
            )),
        },
        Predicate::Claim(path, _) => {
            let name = path.join(".");
            match s.claims.map(|claims| claims.get(path)) {
                None => Err("no verified token".to_string()),
                Some(None) => Err(format!("a token without claim {name}")),
                Some(Some(JsonValue::String(v))) => Ok(format!("claim {name} {v:?}")),
                Some(Some(other)) => Ok(format!("claim {name} {other}")),
            }
        }
        Predicate::Metadata { filter, key, .. } => match c.metadata(filter, key) {
            None => Err("no such metadata".to_string()),
            Some(v) => Ok(format!("metadata {v:?}")),
        },
        Predicate::Any | Predicate::All(_) | Predicate::Or(_) | Predicate::Not(_) => {
            Err(String::new())
        }
    }
}

/// How many parts certainly matched (to pick the closest ALLOW rule).
pub fn matched_parts(outcomes: &[PartOutcome<'_>]) -> usize {
    outcomes.iter().filter(|o| o.result == Tri::True).count()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::matchers::path_match::PathMatch;
    use crate::matchers::string_match::{Star, ValueMatch};
    use crate::request::request_view::{Headers, StaticConnection};

    fn subject_eval(
        predicate: &Predicate,
        labels: &[RulePart],
        method: &str,
        path: &str,
    ) -> Vec<(String, Tri)> {
        let headers: Vec<(String, Vec<u8>)> = vec![
            (":method".into(), method.as_bytes().to_vec()),
            (":path".into(), path.as_bytes().to_vec()),
        ];
        let connection = StaticConnection::default();
        let s = Subject {
            headers: Headers::new(&headers),
            connection: &connection,
            claims: None,
        };
        explain_parts(predicate, labels, &s)
            .iter()
            .map(|o| (o.part.to_string(), o.result))
            .collect()
    }

    #[test]
    fn each_labelled_part_is_evaluated_with_its_own_predicate() {
        let method = Predicate::Header(":method".into(), ValueMatch::parse("GET", Star::Present));
        let path = Predicate::Path(PathMatch::parse("/admin*").unwrap());
        let rule = Predicate::all(vec![method, path]);
        let labels = [RulePart::To, RulePart::When(0)];
        assert_eq!(
            subject_eval(&rule, &labels, "GET", "/public"),
            [
                ("to".to_string(), Tri::True),
                ("when[0]".to_string(), Tri::False)
            ]
        );
        assert_eq!(
            subject_eval(&rule, &[], "GET", "/admin"),
            [("rule".to_string(), Tri::True)],
            "an unlabelled rule is one part"
        );
    }

    #[test]
    fn a_failed_field_names_the_istio_field_the_request_value_and_the_policy_values() {
        let path = Predicate::or(vec![
            Predicate::Path(PathMatch::parse("/api/*").unwrap()),
            Predicate::Path(PathMatch::parse("/v1/{*}/x").unwrap()),
        ]);
        let method = Predicate::Not(Box::new(Predicate::Header(
            ":method".into(),
            ValueMatch::parse("DELETE", Star::Present),
        )));
        let rule = Predicate::all(vec![path, method]);
        let headers: Vec<(String, Vec<u8>)> = vec![
            (":method".into(), b"GET".to_vec()),
            (":path".into(), b"/admin?x=1".to_vec()),
        ];
        let connection = StaticConnection::default();
        let s = Subject {
            headers: Headers::new(&headers),
            connection: &connection,
            claims: None,
        };
        assert_eq!(
            reasons(&rule, RulePart::To, &s),
            [r#"to.operation.paths: request path "/admin" is not one of ["/api/*", "/v1/{*}/x"]"#]
        );
    }
}
