//! Matching for the `paths` / `notPaths` operation fields.
//!
//! Envoy's RBAC `url_path` matcher removes the query and fragment from `:path` before matching
//! (`PathUtil::removeQueryAndFragment`); `request.headers[:path]` conditions see the raw header.
//! The path has already been normalized by the connection manager (Istio's default is
//! `normalize_path: true`) before any HTTP filter runs, so no decoding happens here.
//!
//! A value containing `{*}` or `{**}` is an Envoy URI template (Istio >= 1.22,
//! `matcher/template.go`, Envoy `uri_template`):
//! * `{*}` is one whole segment of pchars, `[a-zA-Z0-9-._~%!$&'()*+,;:@=]+` (Envoy 1.40 matches
//!   `*` too, although older Envoy sources and the Istio docs leave it out);
//! * `{**}` is zero or more pchars or `/`, and must be the last operator;
//! * every other segment is a literal of valid pchars; the whole path must match.
//!
//! Any other value uses the ordinary string forms (`matcher.rs`) with `*` meaning non-empty.
//!
//! A policy annotated `meshguard.io/case-insensitive-paths: "true"` compares its literals
//! ASCII case-insensitively ([`PathMatch::ignoring_case`], Envoy's `ignore_case` folding); the
//! template operators' character classes are unchanged (they are case-free already).

use crate::matchers::string_match::{Star, StringMatch};
use crate::matchers::substring::contains;

/// `:path` with `?query` and `#fragment` removed, as Envoy's `url_path` matcher sees it.
/// Inlined: every path condition of every request starts here.
#[inline(always)]
pub fn url_path(path: &[u8]) -> &[u8] {
    // A loop, not `position`, which stays a call at the core's opt-level "z".
    let mut end = 0;
    while let Some(c) = path.get(end) {
        if matches!(c, b'?' | b'#') {
            return path.get(..end).unwrap_or(path);
        }
        end += 1;
    }
    path
}

/// A compiled `paths` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathMatch {
    String(StringMatch),
    /// A string form compared ASCII case-insensitively.
    StringIgnoreCase(StringMatch),
    Template(Template),
}

impl PathMatch {
    /// Compiles one `paths` value; templates are validated as istiod and Envoy do.
    pub fn parse(value: &str) -> Result<PathMatch, String> {
        if contains(value.as_bytes(), b"{*}") || contains(value.as_bytes(), b"{**}") {
            Template::parse(value).map(PathMatch::Template)
        } else if value.contains(['{', '}']) {
            // istiod rejects braces outside `{*}` / `{**}` (named variables like `{id}` are not
            // supported); accepting them as literals would make a DENY silently never match.
            Err(format!(
                "invalid path {value:?}: braces are only allowed as the template operators {{*}} \
                and {{**}}"
            ))
        } else {
            Ok(PathMatch::String(StringMatch::parse(value, Star::NonEmpty)))
        }
    }

    /// The same value compared ASCII case-insensitively.
    pub fn ignoring_case(self) -> PathMatch {
        match self {
            PathMatch::String(m) | PathMatch::StringIgnoreCase(m) => PathMatch::StringIgnoreCase(m),
            PathMatch::Template(t) => PathMatch::Template(Template {
                ignore_case: true,
                ..t
            }),
        }
    }

    /// Matches a path that already had its query and fragment removed.
    pub fn matches(&self, url_path: &[u8]) -> bool {
        match self {
            PathMatch::String(m) => m.matches(url_path),
            PathMatch::StringIgnoreCase(m) => m.matches_ignore_case(url_path),
            PathMatch::Template(t) => t.matches(url_path),
        }
    }
}

/// The `paths` value this matcher was compiled from, for explanations.
impl std::fmt::Display for PathMatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PathMatch::String(m) => write!(f, "{m}"),
            PathMatch::StringIgnoreCase(m) => write!(f, "{m} (any case)"),
            PathMatch::Template(t) => {
                let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
                for segment in &t.head {
                    match segment {
                        Segment::Literal(lit) => write!(f, "/{}", text(lit))?,
                        Segment::One => f.write_str("/{*}")?,
                    }
                }
                if let Some(tail) = &t.tail {
                    f.write_str("/{**}")?;
                    for lit in tail {
                        write!(f, "/{}", text(lit))?;
                    }
                }
                if t.ignore_case {
                    f.write_str(" (any case)")?;
                }
                Ok(())
            }
        }
    }
}

/// An Envoy URI template: a sequence of `/`-separated segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// Segments before the `{**}` operator (or all of them if there is none).
    head: Vec<Segment>,
    /// `Some(tail)` when the template has `{**}`: the literal segments after it.
    tail: Option<Vec<Box<[u8]>>>,
    /// Literal segments compare ASCII case-insensitively.
    ignore_case: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(Box<[u8]>),
    One,
}

/// The characters Envoy's template operators match: RFC 3986 pchar, `*` included (what
/// Envoy 1.40's RBAC `uri_template` matcher does, found by the differential test). Template
/// literals may not contain `*` all the same: the parser rejects it first, as istiod does.
fn is_pchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"-._~%!$&'()*+,;:@=".contains(&c)
}

impl Template {
    fn parse(value: &str) -> Result<Template, String> {
        let invalid = |why: &str| Err(format!("invalid path template {value:?}: {why}"));
        let Some(rest) = value.strip_prefix('/') else {
            return invalid("must start with '/'");
        };
        let mut head = Vec::new();
        let mut tail: Option<Vec<Box<[u8]>>> = None;
        for segment in rest.split('/') {
            let parsed = match segment {
                "{**}" => {
                    if tail.is_some() {
                        return invalid("'{**}' may appear only once");
                    }
                    tail = Some(Vec::new());
                    continue;
                }
                "{*}" => {
                    if tail.is_some() {
                        return invalid("'{**}' must be the last operator");
                    }
                    Segment::One
                }
                literal => {
                    if literal.contains(['{', '}', '*']) {
                        return invalid(
                            "operators must be whole segments ({*} or {**}); named \
                            variables and bare '*' are not supported",
                        );
                    }
                    if let Some(bad) = literal.bytes().find(|c| !is_pchar(*c)) {
                        return invalid(&format!("character {:?} is not allowed", bad as char));
                    }
                    match tail.as_mut() {
                        Some(t) => {
                            t.push(literal.as_bytes().into());
                            continue;
                        }
                        None => Segment::Literal(literal.as_bytes().into()),
                    }
                }
            };
            head.push(parsed);
        }
        Ok(Template {
            head,
            tail,
            ignore_case: false,
        })
    }

    /// The literal start every matching path has: `/api/{*}/x` -> `/api/` (none when the
    /// literals compare case-insensitively).
    pub fn literal_head(&self) -> Option<Vec<u8>> {
        if self.ignore_case {
            return None;
        }
        let mut head = b"/".to_vec();
        for segment in &self.head {
            match segment {
                Segment::Literal(lit) => {
                    head.extend_from_slice(lit);
                    head.push(b'/');
                }
                Segment::One => return Some(head),
            }
        }
        // No single-segment operator: the literal segments are followed by `{**}`'s slash.
        self.tail.as_ref().map(|_| head)
    }

    /// The literal end every matching path has: `/api/{*}/items` -> `/items`,
    /// `/store/{**}/a/cart` -> `/a/cart`; none when the template ends with an operator or has
    /// none, or when the literals compare case-insensitively.
    pub fn literal_tail(&self) -> Option<Vec<u8>> {
        if self.ignore_case {
            return None;
        }
        let literals: Vec<&[u8]> = match &self.tail {
            Some(tail) => tail.iter().map(|l| &**l).collect(),
            None => {
                let last_one = self.head.iter().rposition(|s| *s == Segment::One)?;
                self.head
                    .get(last_one + 1..)?
                    .iter()
                    .filter_map(|s| match s {
                        Segment::Literal(l) => Some(&**l),
                        Segment::One => None,
                    })
                    .collect()
            }
        };
        if literals.is_empty() {
            return None;
        }
        let mut out = Vec::new();
        for literal in literals {
            out.push(b'/');
            out.extend_from_slice(literal);
        }
        Some(out)
    }

    /// Full match of the template against a query-less path.
    pub fn matches(&self, path: &[u8]) -> bool {
        let Some(after_slash) = path.strip_prefix(b"/") else {
            return false;
        };
        let Some(tail) = &self.tail else {
            return match_segments_exact(&self.head, after_slash, self.ignore_case);
        };
        // Before `{**}`: `head` segments, each followed by '/' (the operator is a whole segment).
        let mut rest = after_slash;
        for segment in &self.head {
            let Some(after) = consume_segment_forward(segment, rest, self.ignore_case) else {
                return false;
            };
            let Some(after) = after.strip_prefix(b"/") else {
                return false;
            };
            rest = after;
        }
        // After `{**}`: '/'-prefixed `tail` segments, matched from the end.
        for literal in tail.iter().rev() {
            let Some(before) = strip_literal_suffix(rest, literal, self.ignore_case) else {
                return false;
            };
            let Some(before) = before.strip_suffix(b"/") else {
                return false;
            };
            rest = before;
        }
        rest.iter().all(|c| *c == b'/' || is_pchar(*c))
    }
}

fn literal_eq(a: &[u8], b: &[u8], ignore_case: bool) -> bool {
    if ignore_case {
        a.eq_ignore_ascii_case(b)
    } else {
        a == b
    }
}

fn strip_literal_prefix<'a>(
    input: &'a [u8],
    literal: &[u8],
    ignore_case: bool,
) -> Option<&'a [u8]> {
    let head = input.get(..literal.len())?;
    literal_eq(head, literal, ignore_case).then(|| input.get(literal.len()..))?
}

fn strip_literal_suffix<'a>(
    input: &'a [u8],
    literal: &[u8],
    ignore_case: bool,
) -> Option<&'a [u8]> {
    let start = input.len().checked_sub(literal.len())?;
    let tail = input.get(start..)?;
    literal_eq(tail, literal, ignore_case).then(|| input.get(..start))?
}

fn match_segments_exact(segments: &[Segment], path: &[u8], ignore_case: bool) -> bool {
    let mut parts = path.split(|c| *c == b'/');
    for segment in segments {
        let Some(part) = parts.next() else {
            return false;
        };
        let ok = match segment {
            Segment::Literal(lit) => literal_eq(part, lit, ignore_case),
            Segment::One => !part.is_empty() && part.iter().all(|c| is_pchar(*c)),
        };
        if !ok {
            return false;
        }
    }
    parts.next().is_none()
}

fn consume_segment_forward<'a>(
    segment: &Segment,
    input: &'a [u8],
    ignore_case: bool,
) -> Option<&'a [u8]> {
    match segment {
        Segment::Literal(lit) => strip_literal_prefix(input, lit, ignore_case),
        Segment::One => {
            let n = input.iter().take_while(|c| is_pchar(**c)).count();
            if n == 0 {
                None
            } else {
                input.get(n..)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn any_matches(patterns: &[&str], path: &str) -> bool {
        patterns.iter().any(|p| {
            PathMatch::parse(p)
                .unwrap()
                .matches(url_path(path.as_bytes()))
        })
    }

    #[test]
    fn query_and_fragment_are_removed() {
        assert_eq!(url_path(b"/a/b?x=1#f"), b"/a/b");
        assert_eq!(url_path(b"/a#f?x"), b"/a");
        assert_eq!(url_path(b"/a%23x"), b"/a%23x");
    }

    #[test]
    fn istio_path_templating_integration_table() {
        let policy = ["/allow/admin/{**}", "/foo/{*}/bar/{**}", "/store/{**}/cart"];
        let allowed = [
            "/allow/admin/",
            "/allow/admin/temp",
            "/allow/admin/temp.txt",
            "/allow/admin/foo/temp.txt",
            "/foo/buzz/bar/bat.txt",
            "/foo/buzz/bar/bat.temp.txt",
            "/foo/buzz/bar/bat/fuzz.txt",
            "/foo/buzz/bar/bat",
            "/store//cart",
            "/store/foo/cart",
            "/store/foo/bar/cart",
        ];
        let denied = [
            "/allow/admin",
            "/allow/user/",
            "/allow",
            "/foo/bar/bat.txt",
            "/foo//bar/bat.txt",
            "/store/cart",
        ];
        for p in allowed {
            assert!(any_matches(&policy, p), "{p} should match");
        }
        for p in denied {
            assert!(!any_matches(&policy, p), "{p} should not match");
        }
        // The query is removed before matching, so `/allow/admin?param=value` is `/allow/admin`.
        assert!(!any_matches(&policy, "/allow/admin?param=value"));
    }

    #[test]
    fn single_segment_operator_needs_a_non_empty_segment() {
        let t = PathMatch::parse("/api/{*}/items").unwrap();
        assert!(t.matches(b"/api/v1/items"));
        assert!(!t.matches(b"/api//items"));
        assert!(!t.matches(b"/api/a/b/items"));
        let end = PathMatch::parse("/api/{*}").unwrap();
        assert!(end.matches(b"/api/x"));
        assert!(!end.matches(b"/api/x/"));
        assert!(!end.matches(b"/api/"));
    }

    #[test]
    fn percent_encoded_slash_stays_inside_one_segment() {
        let t = PathMatch::parse("/foo/{*}/bar/{**}").unwrap();
        assert!(t.matches(b"/foo/a%2Fb/bar/x"));
    }

    #[test]
    fn double_star_may_be_followed_by_literal_segments() {
        let t = PathMatch::parse("/{**}/end").unwrap();
        assert!(t.matches(b"//end"));
        assert!(t.matches(b"/a/b/end"));
        assert!(!t.matches(b"/end"));
    }

    #[test]
    fn invalid_templates_are_rejected() {
        for bad in [
            "/foo/{*}.txt",
            "/foo/{x=*}/{*}",
            "/{**}/{**}",
            "/{**}/a/{*}",
            "/{**}/{*}",
            "/{*}/*/x",
            "foo/{*}",
            "/{*}/a b",
        ] {
            assert!(PathMatch::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn braces_without_an_operator_are_rejected() {
        for bad in ["/foo/{bar}", "/users/{id}/admin", "/a/{", "/a}/b", "/{**"] {
            assert!(PathMatch::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn template_literal_head_is_a_prefix_of_every_match() {
        let head = |t: &str| match PathMatch::parse(t).unwrap() {
            PathMatch::Template(t) => t.literal_head(),
            PathMatch::String(_) | PathMatch::StringIgnoreCase(_) => None,
        };
        assert_eq!(head("/api/{*}/items"), Some(b"/api/".to_vec()));
        assert_eq!(head("/allow/admin/{**}"), Some(b"/allow/admin/".to_vec()));
        assert_eq!(head("/{**}/end"), Some(b"/".to_vec()));
    }

    #[test]
    fn template_literal_tail_is_a_suffix_of_every_match() {
        let template = |t: &str| match PathMatch::parse(t).unwrap() {
            PathMatch::Template(t) => t,
            PathMatch::String(_) | PathMatch::StringIgnoreCase(_) => panic!("{t}"),
        };
        let tail = |t: &str| template(t).literal_tail();
        assert_eq!(tail("/api/{*}/items"), Some(b"/items".to_vec()));
        assert_eq!(tail("/a/{*}/b/{*}/c/d"), Some(b"/c/d".to_vec()));
        assert_eq!(tail("/store/{**}/a/cart"), Some(b"/a/cart".to_vec()));
        assert_eq!(tail("/api/{*}"), None);
        assert_eq!(tail("/allow/admin/{**}"), None);
        let folded = Template {
            ignore_case: true,
            ..template("/api/{*}/items")
        };
        assert_eq!(folded.literal_tail(), None);
        for (t, path) in [
            ("/api/{*}/items", "/api/v1/items"),
            ("/store/{**}/a/cart", "/store/x/y/a/cart"),
            ("/x/{**}/a/cart", "/x/y/a/cart"),
        ] {
            assert!(template(t).matches(path.as_bytes()), "{t} {path}");
            assert!(path.as_bytes().ends_with(&tail(t).unwrap()), "{t} {path}");
        }
    }

    #[test]
    fn case_insensitive_values_fold_ascii_literals_only() {
        let ci = |v: &str| PathMatch::parse(v).unwrap().ignoring_case();
        assert!(ci("/admin").matches(b"/ADMIN"));
        assert!(ci("/admin*").matches(b"/AdMiN/x"));
        assert!(ci("*.HTML").matches(b"/a/index.html"));
        assert!(!ci("/admin").matches(b"/admin/"));
        assert!(ci("/api/{*}/Items").matches(b"/API/v1/iTEMS"));
        assert!(ci("/store/{**}/cart").matches(b"/STORE/a/b/CART"));
        assert!(ci("/allow/admin/{**}").matches(b"/Allow/Admin/x"));
        assert!(!ci("/api/{*}/items").matches(b"/api//items"));
        assert!(!PathMatch::parse("/admin").unwrap().matches(b"/ADMIN"));
        assert!(!ci("/a%2fb").matches(b"/a/b"));
    }

    #[test]
    fn plain_values_use_string_forms() {
        assert!(any_matches(&["/public*"], "/public/x"));
        assert!(any_matches(&["*.html"], "/a/index.html"));
        assert!(any_matches(&["*"], "/"));
        assert!(!any_matches(&["/admin"], "/admin/"));
        assert!(any_matches(&["/admin"], "/admin?x=1"));
    }
}
