//! Rule indexes built at load time, so a decision does not scan every rule.
//!
//! Envoy's RBAC evaluates its policies one by one. meshguard instead derives, for each rule, a
//! necessary condition on one attribute from the rule's predicate: "the peer principal is one
//! of these exact values" or "the path is one of these exact values, starts with one of these
//! prefixes or ends with one of these suffixes" (a template's literal start or end, whichever
//! is longer). A request then evaluates only the rules whose condition its attributes satisfy,
//! plus the rules no condition could be derived for, in the original rule order (so the rule
//! reported as matching is the same as with a linear scan).
//!
//! A path compared case-insensitively (`meshguard.io/case-insensitive-paths`) gives no anchor:
//! its rule is anchored by another conjunct (a principal) or scanned with the unanchored ones,
//! so the index stays one flat, case-sensitive table and never misses a folded match.
//!
//! Soundness: an anchor is taken only through `All` (any conjunct) and `Or` (every disjunct
//! must be anchored), never under `Not`, and anchor leaves are two-valued; so if the request
//! falls outside a rule's anchor set, that rule is false, also under three-valued evaluation.
//!
//! Why hand-built and not a router such as `matchit` (measured, issue 15; README "Performance"):
//! a router answers the one best route for a path, an index must answer every rule whose anchor
//! the path satisfies (an exact path, a prefix and several templates can all hold at once, and
//! the first matching rule in policy order decides); routers have no prefix routes, no `{**}`
//! before literals and no case folding; and a `matchit` tree of 10,000 exact and template
//! routes took 7-30 times longer to build than these hash maps (78-104 ms against 3-11 ms
//! natively) for lookups within a few hundred nanoseconds of them, and adds about 16 KB to the
//! module. Hash maps keyed by exact values, prefix lengths and suffix lengths are as fast where
//! it matters and keep every candidate.

use hashbrown::HashMap;
use std::borrow::Cow;

use crate::matchers::identity_match::IdentityMatch;
use crate::matchers::path_match::{url_path, PathMatch};
use crate::matchers::predicate::{Predicate, Subject};
use crate::matchers::string_match::StringMatch;

/// Rule sets smaller than this are scanned; indexing them would cost more than it saves.
pub const MIN_RULES_TO_INDEX: usize = 16;

/// Anchor keys borrow from the predicates; only the keys stored in the index are copied.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Anchor<'p> {
    Principals(Vec<&'p [u8]>),
    Paths(Vec<PathKey<'p>>),
}

impl Anchor<'_> {
    fn len(&self) -> usize {
        match self {
            Anchor::Principals(k) => k.len(),
            Anchor::Paths(k) => k.len(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PathKey<'p> {
    Exact(&'p [u8]),
    Prefix(Cow<'p, [u8]>),
    /// A template's literal end (`/api/{*}/items7` -> `/items7`).
    Suffix(Vec<u8>),
}

/// Candidate lookup for one rule set.
#[derive(Debug, Clone, Default)]
pub struct RuleIndex {
    by_principal: HashMap<Box<[u8]>, Vec<u32>>,
    /// Some principal key is not a `spiffe://` URI, so it may equal a DNS SAN or a subject.
    /// (A DNS SAN is a host name (RFC 5280 preferred name syntax) and a subject an RFC 2253
    /// `type=value` string: neither can equal a `spiffe://` key, so these are not read for
    /// the usual keys.)
    non_uri_principal_keys: bool,
    by_path: HashMap<Box<[u8]>, Vec<u32>>,
    by_path_prefix: HashMap<Box<[u8]>, Vec<u32>>,
    /// Distinct prefix lengths, ascending.
    prefix_lengths: Vec<usize>,
    by_path_suffix: HashMap<Box<[u8]>, Vec<u32>>,
    /// Distinct suffix lengths, ascending.
    suffix_lengths: Vec<usize>,
    unanchored: Vec<u32>,
}

impl RuleIndex {
    /// Builds the index for `predicates` (rule order matters for reporting only).
    pub fn build<'p>(predicates: impl Iterator<Item = &'p Predicate>) -> RuleIndex {
        let anchors: Vec<Option<Anchor<'p>>> = predicates.map(anchor).collect();
        let (mut principals, mut paths, mut prefixes, mut unanchored) = (0, 0, 0, 0);
        let mut suffixes = 0;
        for a in &anchors {
            match a {
                Some(Anchor::Principals(keys)) => principals += keys.len(),
                Some(Anchor::Paths(keys)) => {
                    for k in keys {
                        match k {
                            PathKey::Exact(_) => paths += 1,
                            PathKey::Prefix(_) => prefixes += 1,
                            PathKey::Suffix(_) => suffixes += 1,
                        }
                    }
                }
                None => unanchored += 1,
            }
        }
        let mut index = RuleIndex {
            by_principal: HashMap::with_capacity(principals),
            non_uri_principal_keys: false,
            by_path: HashMap::with_capacity(paths),
            by_path_prefix: HashMap::with_capacity(prefixes),
            prefix_lengths: Vec::new(),
            by_path_suffix: HashMap::with_capacity(suffixes),
            suffix_lengths: Vec::new(),
            unanchored: Vec::with_capacity(unanchored),
        };
        for (i, a) in anchors.into_iter().enumerate() {
            let id = u32::try_from(i).unwrap_or(u32::MAX);
            match a {
                Some(Anchor::Principals(keys)) => {
                    for k in keys {
                        index.non_uri_principal_keys |= !k.starts_with(b"spiffe://");
                        push(&mut index.by_principal, k, id);
                    }
                }
                Some(Anchor::Paths(keys)) => {
                    for k in keys {
                        match k {
                            PathKey::Exact(k) => push(&mut index.by_path, k, id),
                            PathKey::Prefix(k) => {
                                insert_sorted(&mut index.prefix_lengths, k.len());
                                push(&mut index.by_path_prefix, &k, id);
                            }
                            PathKey::Suffix(k) => {
                                insert_sorted(&mut index.suffix_lengths, k.len());
                                push(&mut index.by_path_suffix, &k, id);
                            }
                        }
                    }
                }
                None => index.unanchored.push(id),
            }
        }
        index
    }

    /// The rules that may match this request, ascending and without duplicates.
    pub fn candidates(&self, s: &Subject<'_>, out: &mut Vec<u32>) {
        out.clear();
        out.extend_from_slice(&self.unanchored);
        if !self.by_principal.is_empty() {
            if let Some(peer) = s.connection.peer() {
                let ids: &mut dyn Iterator<Item = &[u8]> = if self.non_uri_principal_keys {
                    &mut peer.candidates()
                } else {
                    &mut peer.uri_san.as_deref().into_iter()
                };
                for id in ids {
                    if let Some(rules) = self.by_principal.get(id) {
                        merge_in(out, rules);
                    }
                }
            }
        }
        if !self.by_path.is_empty()
            || !self.by_path_prefix.is_empty()
            || !self.by_path_suffix.is_empty()
        {
            if let Some(path) = s.headers.first(":path").map(url_path) {
                if let Some(rules) = self.by_path.get(path) {
                    merge_in(out, rules);
                }
                for len in &self.prefix_lengths {
                    let Some(head) = path.get(..*len) else { break };
                    if let Some(rules) = self.by_path_prefix.get(head) {
                        merge_in(out, rules);
                    }
                }
                for len in &self.suffix_lengths {
                    let Some(end) = path.len().checked_sub(*len).and_then(|at| path.get(at..))
                    else {
                        break;
                    };
                    if let Some(rules) = self.by_path_suffix.get(end) {
                        merge_in(out, rules);
                    }
                }
            }
        }
        out.dedup();
    }
}

/// Adds `len` to the ascending `lengths` unless present (no sort instantiation for `usize`).
fn insert_sorted(lengths: &mut Vec<usize>, len: usize) {
    let at = lengths.partition_point(|&l| l < len);
    if lengths.get(at) != Some(&len) {
        lengths.insert(at, len);
    }
}

/// Merges the ascending `run` (a key's rules, pushed in rule order by [`RuleIndex::build`])
/// into the ascending `out`, in place from the back: the candidates stay ascending without a
/// sort (for the module, one fewer instantiation of the standard library's sort: about 4 KB).
fn merge_in(out: &mut Vec<u32>, run: &[u32]) {
    if out
        .last()
        .is_none_or(|last| run.first().is_none_or(|first| first >= last))
    {
        out.extend_from_slice(run);
        return;
    }
    let mut old = out.len();
    out.extend_from_slice(run);
    let mut rest = run;
    let mut at = out.len();
    while let Some((&r, head)) = rest.split_last() {
        at -= 1;
        let larger_old = old
            .checked_sub(1)
            .and_then(|i| out.get(i).copied())
            .filter(|&o| o > r);
        let value = match larger_old {
            Some(o) => {
                old -= 1;
                o
            }
            None => {
                rest = head;
                r
            }
        };
        if let Some(slot) = out.get_mut(at) {
            *slot = value;
        }
    }
}

/// Appends rule `id` under `key`, copying the key only the first time it is seen.
fn push(map: &mut HashMap<Box<[u8]>, Vec<u32>>, key: &[u8], id: u32) {
    match map.get_mut(key) {
        Some(ids) => ids.push(id),
        None => {
            map.insert(key.into(), vec![id]);
        }
    }
}

/// A necessary condition for `p`, if one can be derived.
fn anchor(p: &Predicate) -> Option<Anchor<'_>> {
    match p {
        Predicate::All(parts) => {
            // Prefer principals (usually most selective), then the first smallest key set.
            let mut best: Option<Anchor<'_>> = None;
            for a in parts.iter().filter_map(anchor) {
                if matches!(a, Anchor::Principals(_)) {
                    return Some(a);
                }
                if best.as_ref().is_none_or(|b| a.len() < b.len()) {
                    best = Some(a);
                }
            }
            best
        }
        Predicate::Or(alternatives) => {
            let mut principals = Vec::new();
            let mut paths = Vec::new();
            for alt in alternatives {
                match anchor(alt)? {
                    Anchor::Principals(k) => principals.extend(k),
                    Anchor::Paths(k) => paths.extend(k),
                }
            }
            match (principals.is_empty(), paths.is_empty()) {
                (false, true) => Some(Anchor::Principals(principals)),
                (true, false) => Some(Anchor::Paths(paths)),
                _ => None,
            }
        }
        Predicate::Identity(IdentityMatch::String(StringMatch::Exact(v))) => {
            Some(Anchor::Principals(vec![v]))
        }
        Predicate::Path(PathMatch::String(StringMatch::Exact(v))) => {
            Some(Anchor::Paths(vec![PathKey::Exact(v)]))
        }
        Predicate::Path(PathMatch::String(StringMatch::Prefix(v))) => {
            Some(Anchor::Paths(vec![PathKey::Prefix(Cow::Borrowed(v))]))
        }
        // The longer of the literal start and end: many templates share a start (`/api/`)
        // and differ in their end (`/items7`).
        Predicate::Path(PathMatch::Template(t)) => {
            let key = match (t.literal_head(), t.literal_tail()) {
                (Some(head), Some(tail)) if tail.len() > head.len() => PathKey::Suffix(tail),
                (Some(head), _) => PathKey::Prefix(Cow::Owned(head)),
                (None, Some(tail)) => PathKey::Suffix(tail),
                (None, None) => return None,
            };
            Some(Anchor::Paths(vec![key]))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matchers::string_match::{Star, ValueMatch};
    use crate::request::peer::Peer;
    use crate::request::request_view::{Headers, StaticConnection};

    fn principal(v: &str) -> Predicate {
        Predicate::Identity(IdentityMatch::principal(v))
    }
    fn path(v: &str) -> Predicate {
        Predicate::Path(PathMatch::parse(v).unwrap())
    }
    fn method(v: &str) -> Predicate {
        Predicate::Header(":method".into(), ValueMatch::parse(v, Star::Present))
    }

    /// A small deterministic generator (xorshift) so the equivalence test is reproducible.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }
    }

    fn random_leaf(r: &mut Rng) -> Predicate {
        let sa = ["a", "b", "c", "d"];
        let paths = [
            "/x",
            "/x/*",
            "/y*",
            "/x/{*}/z",
            "*",
            "/y/{**}",
            "*z",
            "/{*}/a/zz",
            "/y/{**}/b/z",
        ];
        match r.next(5) {
            0 => principal(&format!("cluster.local/ns/ns/sa/{}", sa[r.next(sa.len())])),
            1 => path(paths[r.next(paths.len())]),
            2 => Predicate::Path(
                PathMatch::parse(paths[r.next(paths.len())])
                    .unwrap()
                    .ignoring_case(),
            ),
            3 => method(["GET", "POST"][r.next(2)]),
            _ => principal(["cluster.local/ns/ns/*", "*"][r.next(2)]),
        }
    }

    fn random_predicate(r: &mut Rng, depth: u32) -> Predicate {
        if depth == 0 {
            return random_leaf(r);
        }
        let n = 1 + r.next(3);
        let children: Box<[Predicate]> = (0..n).map(|_| random_predicate(r, depth - 1)).collect();
        match r.next(4) {
            0 => Predicate::Or(children),
            1 => Predicate::Not(Box::new(random_predicate(r, depth - 1))),
            _ => Predicate::All(children),
        }
    }

    #[test]
    fn candidates_never_miss_a_matching_rule() {
        let mut r = Rng(0x9e3779b97f4a7c15);
        for _ in 0..200 {
            let rules: Vec<Predicate> = (0..40).map(|_| random_predicate(&mut r, 2)).collect();
            let index = RuleIndex::build(rules.iter());
            for _ in 0..20 {
                let sa = ["a", "b", "c", "e"][r.next(4)];
                let peer = (r.next(3) > 0).then(|| {
                    Peer::new(
                        Some(format!("spiffe://cluster.local/ns/ns/sa/{sa}").into_bytes()),
                        None,
                        Some(b"CN=x".to_vec()),
                    )
                });
                let p = [
                    "/x", "/x/q", "/y", "/yy", "/x/1/z", "/y/a/b", "/z", "/x?a", "/X", "/X/Q",
                    "/Y/a/B", "/x/1/Z", "/YY", "/q/a/zz", "/y/c/b/z", "/y/b/z", "/a/zz?q",
                ];
                let p = p[r.next(p.len())];
                let headers = vec![
                    (":path".to_string(), p.as_bytes().to_vec()),
                    (":method".to_string(), b"GET".to_vec()),
                ];
                let conn = StaticConnection {
                    peer,
                    ..StaticConnection::default()
                };
                let s = Subject {
                    headers: Headers::new(&headers),
                    connection: &conn,
                    claims: None,
                };
                let mut cands = Vec::new();
                index.candidates(&s, &mut cands);
                assert!(cands.windows(2).all(|w| w[0] < w[1]), "{cands:?}");
                // The first match through the index is the linear scan's first match.
                let linear = rules
                    .iter()
                    .position(|r| r.eval(&s) == crate::matchers::predicate::Tri::True);
                let indexed = cands
                    .iter()
                    .copied()
                    .find(|i| rules[*i as usize].eval(&s) == crate::matchers::predicate::Tri::True);
                assert_eq!(linear.map(|i| i as u32), indexed, "{p}");
                for (i, rule) in rules.iter().enumerate() {
                    if rule.eval(&s) != crate::matchers::predicate::Tri::False {
                        assert!(
                            cands.contains(&(i as u32)),
                            "rule {i} {rule:?} matches {p} but is not a candidate"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn exact_principals_and_paths_are_anchored_and_negations_are_not() {
        let rule = Predicate::All(Box::new([principal("cluster.local/ns/a/sa/b"), path("/p")]));
        assert!(matches!(anchor(&rule), Some(Anchor::Principals(_))));
        assert!(matches!(anchor(&path("/p*")), Some(Anchor::Paths(_))));
        assert_eq!(anchor(&Predicate::Not(Box::new(path("/p")))), None);
        assert_eq!(
            anchor(&Predicate::Or(Box::new([path("/p"), method("GET")]))),
            None
        );
        assert_eq!(anchor(&principal("*")), None);
    }

    #[test]
    fn case_insensitive_paths_are_not_anchored() {
        let ci = |v: &str| Predicate::Path(PathMatch::parse(v).unwrap().ignoring_case());
        assert_eq!(anchor(&ci("/admin")), None);
        assert_eq!(anchor(&ci("/admin*")), None);
        assert_eq!(anchor(&ci("/api/{*}/x")), None);
        let with_principal =
            Predicate::All(Box::new([principal("cluster.local/ns/a/sa/b"), ci("/p")]));
        assert!(matches!(
            anchor(&with_principal),
            Some(Anchor::Principals(_))
        ));
    }

    #[test]
    fn merging_ascending_runs_gives_the_sorted_union() {
        let mut r = Rng(0x2545f4914f6cdd1d);
        for _ in 0..2000 {
            let mut out: Vec<u32> = Vec::new();
            let mut all: Vec<u32> = Vec::new();
            for _ in 0..r.next(5) {
                let mut run: Vec<u32> = (0..r.next(8)).map(|_| r.next(30) as u32).collect();
                run.sort();
                merge_in(&mut out, &run);
                all.extend(run);
            }
            out.dedup();
            all.sort();
            all.dedup();
            assert_eq!(out, all);
        }
    }

    #[test]
    fn lengths_stay_ascending_and_distinct() {
        let mut lengths = Vec::new();
        for len in [5, 1, 5, 9, 0, 1, 7] {
            insert_sorted(&mut lengths, len);
        }
        assert_eq!(lengths, [0, 1, 5, 7, 9]);
    }
}
