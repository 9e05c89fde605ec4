//! Why a compiled rule matched or not: the rule's `from`, `to` and `when[i]` parts, each
//! evaluated on its own with the very predicates the decision evaluates (no second matcher).
//! A rule is the conjunction of its parts, as istiod's RBAC policy is the `and` of a
//! principal and a permission per rule; a part the rule leaves unconstrained is absent.
//! Used by `meshguard check` to say which parts of the deciding rule matched and, for a
//! default deny, which part of the closest ALLOW rule failed.

use std::fmt;

use crate::matchers::predicate::{Predicate, Subject, Tri};

/// Where a conjunct of a compiled rule came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RulePart {
    /// `rules[].from` (the OR of its sources).
    From,
    /// `rules[].to` (the OR of its operations).
    To,
    /// `rules[].when[i]`.
    When(usize),
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
#[derive(Debug, Clone, Copy)]
pub struct PartOutcome<'r> {
    pub part: RulePart,
    pub result: Tri,
    /// The compiled condition (for display).
    pub predicate: &'r Predicate,
}

/// Evaluates each part of a rule compiled as `Predicate::all(parts)` with `labels` naming
/// them; a rule without labels (or whose shape does not line up) is one `rule` part.
pub fn explain_parts<'r>(
    predicate: &'r Predicate,
    labels: &[RulePart],
    s: &Subject<'_>,
) -> Vec<PartOutcome<'r>> {
    let whole = |part| {
        vec![PartOutcome {
            part,
            result: predicate.eval(s),
            predicate,
        }]
    };
    match (labels, predicate) {
        ([only], _) => whole(*only),
        (labels, Predicate::All(children))
            if labels.len() == children.len() && labels.len() > 1 =>
        {
            labels
                .iter()
                .zip(children)
                .map(|(part, p)| PartOutcome {
                    part: *part,
                    result: p.eval(s),
                    predicate: p,
                })
                .collect()
        }
        _ => whole(RulePart::Rule),
    }
}

/// The compiled condition as text: its `Debug` form with byte strings shown as quoted text
/// (`Exact("GET")` rather than `Exact([71, 69, 84])`).
pub fn describe(predicate: &Predicate) -> String {
    let debug = format!("{predicate:?}");
    let mut out = String::with_capacity(debug.len());
    let mut rest = debug.as_str();
    while let Some(open) = rest.find('[') {
        let (before, tail) = rest.split_at(open);
        out.push_str(before);
        let text = tail
            .find(']')
            .and_then(|close| tail.get(1..close).map(|inner| (close, inner)))
            .and_then(|(close, inner)| bytes_text(inner).map(|t| (close, t)));
        match text {
            Some((close, t)) => {
                out.push_str(&format!("{t:?}"));
                rest = tail.get(close + 1..).unwrap_or("");
            }
            None => {
                out.push('[');
                rest = tail.get(1..).unwrap_or("");
            }
        }
    }
    out.push_str(rest);
    out
}

/// `71, 69, 84` -> `GET` when every item is a printable ASCII byte.
fn bytes_text(list: &str) -> Option<String> {
    list.split(", ")
        .map(|n| {
            n.parse::<u8>()
                .ok()
                .filter(|b| b.is_ascii_graphic() || *b == b' ')
                .map(char::from)
        })
        .collect()
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
    fn conditions_are_described_with_readable_strings() {
        let method = Predicate::Header(":method".into(), ValueMatch::parse("GET", Star::Present));
        let text = describe(&method);
        assert!(text.contains("\"GET\""), "{text}");
        assert!(!text.contains("71, 69"), "{text}");
    }
}
