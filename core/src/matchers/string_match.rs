//! String matchers: the closed set of leaf comparisons every policy field compiles to.
//!
//! Istio turns each policy value into an Envoy `StringMatcher` (istiod
//! `pilot/pkg/security/authz/matcher/string.go`, `header.go`). The value forms are checked in
//! this order, exactly as istiod does:
//!
//! 1. `*` alone: presence. Header-backed fields (`request.headers[..]`, `methods`, `hosts`) use
//!    Envoy `present_match`, which is true even for an empty value; every other field uses the
//!    regex `.+`, which needs a non-empty value.
//! 2. leading `*`: suffix match on the rest (the rest is literal, other stars included).
//! 3. trailing `*`: prefix match.
//! 4. anything else: exact match (a star in the middle is a literal star).
//!
//! Matching is on bytes and case-sensitive, except where `ignore_case` is set (`hosts` only,
//! since the CVE-2021-39155 fix). Envoy's `ignore_case` folds ASCII only.

/// How a bare `*` is interpreted for the field a matcher was compiled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Star {
    /// Envoy `present_match`: any value, even an empty one (headers, methods, hosts).
    Present,
    /// Envoy `safe_regex: ".+"`: a non-empty value (paths, principals, claims, SNI).
    NonEmpty,
}

/// One compiled string comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StringMatch {
    Exact(Box<[u8]>),
    Prefix(Box<[u8]>),
    Suffix(Box<[u8]>),
    /// Matches any value, including the empty one.
    Present,
    /// Matches any non-empty value without a newline (RE2 `.+`).
    NonEmpty,
}

/// The Istio policy value this matcher was compiled from (`abc`, `abc*`, `*abc`, `*`), for
/// explanations.
impl std::fmt::Display for StringMatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        match self {
            StringMatch::Exact(v) => f.write_str(&text(v)),
            StringMatch::Prefix(v) => write!(f, "{}*", text(v)),
            StringMatch::Suffix(v) => write!(f, "*{}", text(v)),
            StringMatch::Present | StringMatch::NonEmpty => f.write_str("*"),
        }
    }
}

/// A string matcher plus the case rule of its field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueMatch {
    kind: StringMatch,
    ignore_case: bool,
}

impl StringMatch {
    /// Compiles an Istio policy value (`abc`, `abc*`, `*abc`, `*`) for a field whose `*` means
    /// `star`.
    pub fn parse(value: &str, star: Star) -> StringMatch {
        if value == "*" {
            return match star {
                Star::Present => StringMatch::Present,
                Star::NonEmpty => StringMatch::NonEmpty,
            };
        }
        if let Some(rest) = value.strip_prefix('*') {
            return StringMatch::Suffix(rest.as_bytes().into());
        }
        if let Some(rest) = value.strip_suffix('*') {
            return StringMatch::Prefix(rest.as_bytes().into());
        }
        StringMatch::Exact(value.as_bytes().into())
    }

    /// Case-sensitive comparison of `value` against this matcher.
    pub fn matches(&self, value: &[u8]) -> bool {
        match self {
            StringMatch::Exact(e) => value == &e[..],
            StringMatch::Prefix(p) => value.starts_with(p),
            StringMatch::Suffix(s) => value.ends_with(s),
            StringMatch::Present => true,
            StringMatch::NonEmpty => is_dot_plus(value),
        }
    }

    /// ASCII case-insensitive comparison (Envoy `ignore_case`).
    pub fn matches_ignore_case(&self, value: &[u8]) -> bool {
        match self {
            StringMatch::Exact(e) => value.eq_ignore_ascii_case(e),
            StringMatch::Prefix(p) => value
                .get(..p.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(p)),
            StringMatch::Suffix(s) => value
                .len()
                .checked_sub(s.len())
                .and_then(|start| value.get(start..))
                .is_some_and(|tail| tail.eq_ignore_ascii_case(s)),
            StringMatch::Present | StringMatch::NonEmpty => self.matches(value),
        }
    }
}

impl ValueMatch {
    pub fn new(kind: StringMatch, ignore_case: bool) -> ValueMatch {
        ValueMatch { kind, ignore_case }
    }

    /// A case-sensitive matcher for an Istio value.
    pub fn parse(value: &str, star: Star) -> ValueMatch {
        ValueMatch::new(StringMatch::parse(value, star), false)
    }

    pub fn matches(&self, value: &[u8]) -> bool {
        if self.ignore_case {
            self.kind.matches_ignore_case(value)
        } else {
            self.kind.matches(value)
        }
    }

    pub fn kind(&self) -> &StringMatch {
        &self.kind
    }
}

/// The policy value, with ` (any case)` when compared case-insensitively.
impl std::fmt::Display for ValueMatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.kind)?;
        if self.ignore_case {
            f.write_str(" (any case)")?;
        }
        Ok(())
    }
}

/// RE2 `.+` full match: at least one byte and no `\n` (`.` does not match a newline).
pub fn is_dot_plus(value: &[u8]) -> bool {
    !value.is_empty() && !value.contains(&b'\n')
}

/// A pattern made of literal bytes and wildcards, matched against the whole input.
///
/// This is how meshguard evaluates the handful of regexes istiod generates for identity
/// fields (`.*/ns/<ns>/.*`, `spiffe://.+/ns/<ns>/(.+/|)sa/<sa>(/.+)?`) without a regex engine:
/// each becomes one or a few globs whose literal parts are the quoted values.
/// `AnyOne` is RE2 `.` and `AnyRun` is `.*`; neither matches `\n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    tokens: Vec<GlobToken>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GlobToken {
    Literal(Box<[u8]>),
    AnyOne,
    AnyRun,
}

impl Glob {
    pub fn new(tokens: Vec<GlobToken>) -> Glob {
        Glob { tokens }
    }

    pub fn tokens(&self) -> &[GlobToken] {
        &self.tokens
    }

    /// Whether every match starts with `prefix` (the pattern opens with a literal that does).
    pub fn anchored_at(&self, prefix: &[u8]) -> bool {
        matches!(self.tokens.first(), Some(GlobToken::Literal(l)) if l.starts_with(prefix))
    }

    /// Full match of `input` against the pattern.
    ///
    /// Classic backtracking over the last `AnyRun` only, which is linear for one `AnyRun` and
    /// at worst O(n * m) for several; identity strings are short.
    pub fn matches(&self, input: &[u8]) -> bool {
        glob_from(&self.tokens, input)
    }
}

/// Iterative wildcard matching with single-star backtracking: on a mismatch, only the most
/// recent `AnyRun` grows by one byte. That is complete for full-match globs (a later star can
/// absorb whatever an earlier one would) and needs no recursion. Wildcards never cover `\n`.
fn glob_from(tokens: &[GlobToken], input: &[u8]) -> bool {
    let (mut t, mut i) = (0usize, 0usize);
    // (token index after the star, input index the star currently ends at)
    let mut star: Option<(usize, usize)> = None;
    loop {
        let step = match tokens.get(t) {
            Some(GlobToken::AnyRun) => {
                star = Some((t + 1, i));
                t += 1;
                continue;
            }
            Some(GlobToken::Literal(lit)) => input
                .get(i..)
                .is_some_and(|rest| rest.starts_with(lit))
                .then_some(lit.len()),
            Some(GlobToken::AnyOne) => input.get(i).filter(|c| **c != b'\n').map(|_| 1),
            None if i == input.len() => return true,
            None => None,
        };
        match step {
            Some(n) => {
                t += 1;
                i += n;
            }
            None => {
                // Backtrack: let the last star swallow one more byte (never a newline).
                let Some((after, end)) = star else {
                    return false;
                };
                match input.get(end) {
                    Some(c) if *c != b'\n' => {
                        star = Some((after, end + 1));
                        t = after;
                        i = end + 1;
                    }
                    _ => return false,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(v: &str, star: Star) -> StringMatch {
        StringMatch::parse(v, star)
    }

    #[test]
    fn value_forms_follow_istiod_order() {
        assert_eq!(m("*", Star::NonEmpty), StringMatch::NonEmpty);
        assert_eq!(m("*", Star::Present), StringMatch::Present);
        assert_eq!(
            m("*abc", Star::NonEmpty),
            StringMatch::Suffix(b"abc".to_vec().into())
        );
        assert_eq!(
            m("abc*", Star::NonEmpty),
            StringMatch::Prefix(b"abc".to_vec().into())
        );
        assert_eq!(
            m("*abc*", Star::NonEmpty),
            StringMatch::Suffix(b"abc*".to_vec().into())
        );
        assert_eq!(
            m("a*c", Star::NonEmpty),
            StringMatch::Exact(b"a*c".to_vec().into())
        );
    }

    #[test]
    fn star_in_the_middle_is_a_literal_star() {
        let s = m("/service/*health", Star::NonEmpty);
        assert!(s.matches(b"/service/*health"));
        assert!(!s.matches(b"/service/xhealth"));
    }

    #[test]
    fn present_matches_empty_value_but_non_empty_does_not() {
        assert!(StringMatch::Present.matches(b""));
        assert!(!StringMatch::NonEmpty.matches(b""));
        assert!(StringMatch::NonEmpty.matches(b"x"));
        assert!(!StringMatch::NonEmpty.matches(b"a\nb"));
    }

    #[test]
    fn comparisons_are_case_sensitive_by_default() {
        assert!(!ValueMatch::parse("GET", Star::Present).matches(b"get"));
        assert!(!ValueMatch::parse("/admin", Star::NonEmpty).matches(b"/Admin"));
    }

    #[test]
    fn ignore_case_applies_to_exact_prefix_and_suffix() {
        let exact = ValueMatch::new(m("example.com", Star::Present), true);
        assert!(exact.matches(b"EXAMPLE.com"));
        assert!(!exact.matches(b"example.com:80"));
        let suffix = ValueMatch::new(m("*.b.com", Star::Present), true);
        assert!(suffix.matches(b"DENY.b.COM"));
        assert!(!suffix.matches(b"b.com"));
        let prefix = ValueMatch::new(m("prefix.*", Star::Present), true);
        assert!(prefix.matches(b"PREFIX.b.COM"));
        assert!(!prefix.matches(b"pre"));
    }

    #[test]
    fn glob_any_run_and_any_one() {
        let g = Glob::new(vec![
            GlobToken::AnyRun,
            GlobToken::Literal(b"/ns/foo/".to_vec().into()),
            GlobToken::AnyRun,
        ]);
        assert!(g.matches(b"spiffe://td/ns/foo/sa/x"));
        assert!(g.matches(b"/ns/foo/"));
        assert!(!g.matches(b"spiffe://td/ns/foo"));
        assert!(!g.matches(b"spiffe://td/ns/foox/sa/x"));
        let one = Glob::new(vec![GlobToken::AnyOne, GlobToken::AnyRun]);
        assert!(one.matches(b"a"));
        assert!(!one.matches(b""));
        assert!(!one.matches(b"\n"));
    }

    /// The obvious recursive definition, as a reference for the iterative matcher.
    fn reference(tokens: &[GlobToken], input: &[u8]) -> bool {
        let Some((first, rest)) = tokens.split_first() else {
            return input.is_empty();
        };
        match first {
            GlobToken::Literal(lit) => input
                .strip_prefix(&lit[..])
                .is_some_and(|r| reference(rest, r)),
            GlobToken::AnyOne => input
                .split_first()
                .is_some_and(|(c, r)| *c != b'\n' && reference(rest, r)),
            GlobToken::AnyRun => {
                let limit = input
                    .iter()
                    .position(|c| *c == b'\n')
                    .unwrap_or(input.len());
                (0..=limit).any(|k| reference(rest, &input[k..]))
            }
        }
    }

    #[test]
    fn iterative_glob_agrees_with_the_recursive_definition() {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        let alphabet = [b'a', b'b', b'/', b'\n'];
        for _ in 0..20_000 {
            let tokens: Vec<GlobToken> = (0..next(5))
                .map(|_| match next(3) {
                    0 => GlobToken::AnyRun,
                    1 => GlobToken::AnyOne,
                    _ => GlobToken::Literal(
                        (0..1 + next(2))
                            .map(|_| alphabet[next(3)])
                            .collect::<Vec<_>>()
                            .into(),
                    ),
                })
                .collect();
            let input: Vec<u8> = (0..next(7)).map(|_| alphabet[next(4)]).collect();
            let g = Glob::new(tokens.clone());
            assert_eq!(
                g.matches(&input),
                reference(&tokens, &input),
                "{tokens:?} {input:?}"
            );
        }
    }
}
