//! End-user authentication: find the request's JWTs, verify them, and produce the claims the
//! authorization rules see, the way Istio configures Envoy's `jwt_authn`.
//!
//! * Incoming copies of every provider's output headers are removed first, so a client can
//!   never supply `outputPayloadToHeader` / `outputClaimToHeaders` values (Envoy
//!   `sanitizeHeaders`).
//! * A CORS preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) skips
//!   validation (Istio sets `bypass_cors_preflight`).
//! * No token at any configured location: the request passes with no identity.
//! * Each token found is routed to the provider whose location found it and whose `issuer`
//!   equals the token's `iss` (else a provider without issuer); none: 401 `Jwt issuer is not
//!   configured`. Every token present must verify (Envoy's "a good token and a bad one" rule).
//! * Verified tokens are cached by their text; a hit re-checks only the time constraint.
//! * On success the token header is removed unless `forwardOriginalToken`, and the output
//!   headers are set.

use std::collections::HashMap;
use std::rc::Rc;

use serde_json::{Map, Value};

use crate::authn::jwt::{self, JwtFailure, KeySet};
use crate::authn::request_authentication::{Keys, Location, Provider};
use crate::request::request_view::Headers;
use crate::request::verified_claims::Claims;

/// A header change the filter applies to an allowed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderEdit {
    Remove(String),
    Set(String, String),
}

/// The result of authentication for one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// No token anywhere: allowed, no end-user identity.
    NoToken,
    Verified(Rc<Claims>),
    Rejected(JwtFailure),
}

/// Providers of every applicable RequestAuthentication, sorted by issuer as istiod does.
#[derive(Debug, Clone, Default)]
pub struct Authenticator {
    providers: Vec<Provider>,
    sanitize: Vec<String>,
}

#[derive(Debug, Clone)]
struct CacheEntry {
    provider: usize,
    claims: Rc<Claims>,
    /// `outputClaimToHeaders` values, taken from the original (unsplit) payload.
    claim_headers: Rc<Vec<(String, String)>>,
    expires: Option<u64>,
    /// Recency stamp for LRU eviction.
    last_used: u64,
}

/// Per-VM mutable state: verified tokens and fetched key sets.
#[derive(Debug, Default)]
pub struct AuthnState {
    cache: HashMap<String, CacheEntry>,
    capacity: usize,
    /// Fetched key set per provider index (remote JWKS only).
    remote_keys: HashMap<usize, Rc<KeySet>>,
    pub cache_hits: u64,
    pub cache_misses: u64,
    /// Monotonic counter stamping cache use.
    clock: u64,
    pub jwks_fetch_ok: u64,
    pub jwks_fetch_failed: u64,
}

/// Envoy's default `jwt_cache_size`.
pub const DEFAULT_CACHE_CAPACITY: usize = 100;

impl AuthnState {
    pub fn new(capacity: usize) -> AuthnState {
        AuthnState {
            capacity,
            ..AuthnState::default()
        }
    }

    /// Installs a freshly fetched and fully parsed key set for a provider.
    pub fn set_remote_keys(&mut self, provider: usize, keys: KeySet) {
        self.remote_keys.insert(provider, Rc::new(keys));
        // Tokens verified with the old keys stay valid (Envoy keeps its cache as well).
    }

    pub fn has_remote_keys(&self, provider: usize) -> bool {
        self.remote_keys.contains_key(&provider)
    }

    fn remember(&mut self, token: &str, entry: CacheEntry) {
        if self.capacity == 0 {
            return;
        }
        if self.cache.len() >= self.capacity {
            // Least recently used, as Envoy's JWT cache (a linear scan over <= capacity entries,
            // paid only when a new token is verified).
            if let Some(victim) = self
                .cache
                .iter()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(k, _)| k.clone())
            {
                self.cache.remove(&victim);
            }
        }
        self.clock += 1;
        let mut entry = entry;
        entry.last_used = self.clock;
        self.cache.insert(token.to_string(), entry);
    }
}

/// A token found in a request, with the providers whose location found it.
struct Found<'a> {
    token: String,
    location: &'a Location,
    providers: Vec<usize>,
}

impl Authenticator {
    pub fn new(mut providers: Vec<Provider>) -> Authenticator {
        providers.sort_by(|a, b| a.issuer.cmp(&b.issuer));
        let mut sanitize: Vec<String> = providers
            .iter()
            .flat_map(|p| {
                p.payload_header
                    .iter()
                    .cloned()
                    .chain(p.claim_headers.iter().map(|(h, _)| h.clone()))
            })
            .collect();
        sanitize.sort();
        sanitize.dedup();
        Authenticator {
            providers,
            sanitize,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.providers.is_empty()
    }

    pub fn providers(&self) -> &[Provider] {
        &self.providers
    }

    /// Authenticates one request. `edits` receives the header changes to apply if the
    /// request is finally allowed (the sanitizing removals are always included).
    pub fn authenticate(
        &self,
        headers: Headers<'_>,
        now: u64,
        state: &mut AuthnState,
        edits: &mut Vec<HeaderEdit>,
    ) -> Outcome {
        if self.providers.is_empty() {
            return Outcome::NoToken;
        }
        edits.extend(self.sanitize.iter().map(|h| HeaderEdit::Remove(h.clone())));
        if is_cors_preflight(headers) {
            return Outcome::NoToken;
        }
        let found = self.extract(headers);
        let mut first: Option<Rc<Claims>> = None;
        for f in &found {
            match self.verify_one(f, now, state) {
                Ok(entry) => {
                    self.outputs(&entry, f, edits);
                    first.get_or_insert(entry.claims);
                }
                Err(failure) => return Outcome::Rejected(failure),
            }
        }
        match first {
            Some(claims) => Outcome::Verified(claims),
            None => Outcome::NoToken,
        }
    }

    fn extract<'h>(&'h self, headers: Headers<'h>) -> Vec<Found<'h>> {
        let mut found: Vec<Found<'h>> = Vec::new();
        for (index, provider) in self.providers.iter().enumerate() {
            for location in &provider.locations {
                for token in tokens_at(headers, location) {
                    match found
                        .iter_mut()
                        .find(|f| f.token == token && f.location == location)
                    {
                        Some(f) => f.providers.push(index),
                        None => found.push(Found {
                            token,
                            location,
                            providers: vec![index],
                        }),
                    }
                }
            }
        }
        found
    }

    fn verify_one(
        &self,
        found: &Found<'_>,
        now: u64,
        state: &mut AuthnState,
    ) -> Result<CacheEntry, JwtFailure> {
        state.clock += 1;
        let stamp = state.clock;
        if let Some(entry) = state.cache.get_mut(&found.token) {
            if found.providers.contains(&entry.provider) {
                entry.last_used = stamp;
                let expired = entry
                    .expires
                    .is_some_and(|exp| now > exp.saturating_add(jwt::CLOCK_SKEW_SECS));
                if !expired {
                    state.cache_hits += 1;
                    return Ok(entry.clone());
                }
            }
        }
        state.cache_misses += 1;
        let parsed = jwt::parse(&found.token)?;
        let provider_index = found
            .providers
            .iter()
            .copied()
            .find(|i| {
                self.providers
                    .get(*i)
                    .is_some_and(|p| p.issuer.is_some() && p.issuer == parsed.issuer)
            })
            .or_else(|| {
                found
                    .providers
                    .iter()
                    .copied()
                    .find(|i| self.providers.get(*i).is_some_and(|p| p.issuer.is_none()))
            })
            .ok_or(JwtFailure::UnknownIssuer)?;
        let provider = self
            .providers
            .get(provider_index)
            .ok_or(JwtFailure::UnknownIssuer)?;
        parsed.check_time(now)?;
        parsed.check_audience(&provider.audiences)?;
        let keys: Rc<KeySet> = match &provider.keys {
            Keys::Inline(k) => Rc::new(k.clone()),
            Keys::Remote(_) => state
                .remote_keys
                .get(&provider_index)
                .cloned()
                .ok_or(JwtFailure::JwksFetchFailed)?,
        };
        keys.verify(&parsed, &found.token, now)?;
        let claim_headers = provider
            .claim_headers
            .iter()
            .filter_map(|(header, path)| Some((header.clone(), claim_text(&parsed.payload, path)?)))
            .collect();
        let entry = CacheEntry {
            provider: provider_index,
            expires: parsed.expires,
            claims: Rc::new(Claims::new(parsed.payload, &provider.space_delimited)),
            claim_headers: Rc::new(claim_headers),
            last_used: 0,
        };
        state.remember(&found.token, entry.clone());
        Ok(entry)
    }

    fn outputs(&self, entry: &CacheEntry, found: &Found<'_>, edits: &mut Vec<HeaderEdit>) {
        let Some(p) = self.providers.get(entry.provider) else {
            return;
        };
        if let Some(header) = &p.payload_header {
            if let Some(segment) = found.token.split('.').nth(1) {
                edits.push(HeaderEdit::Set(header.clone(), segment.to_string()));
            }
        }
        for (header, value) in entry.claim_headers.iter() {
            edits.push(HeaderEdit::Set(header.clone(), value.clone()));
        }
        if !p.forward {
            if let Location::Header { name, .. } = found.location {
                edits.push(HeaderEdit::Remove(name.clone()));
            }
        }
    }
}

/// The request headers after authentication's edits, as later filters (Istio's RBAC) see them.
pub fn edited_headers(headers: Headers<'_>, edits: &[HeaderEdit]) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = headers
        .iter()
        .filter_map(|(n, v)| Some((String::from_utf8(n.to_vec()).ok()?, v.to_vec())))
        .collect();
    for edit in edits {
        match edit {
            HeaderEdit::Remove(name) => out.retain(|(n, _)| !n.eq_ignore_ascii_case(name)),
            HeaderEdit::Set(name, value) => {
                out.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
                out.push((name.clone(), value.as_bytes().to_vec()));
            }
        }
    }
    out
}

/// Envoy `addJWTClaimToHeader`: a string, number or bool claim of the original payload
/// (nested `a.b`); lists and objects are not copied.
fn claim_text(payload: &Map<String, Value>, path: &[String]) -> Option<String> {
    let (first, rest) = path.split_first()?;
    let mut value = payload.get(first)?;
    for part in rest {
        value = value.as_object()?.get(part)?;
    }
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn is_cors_preflight(headers: Headers<'_>) -> bool {
    headers.first(":method") == Some(b"OPTIONS")
        && headers.first("origin").is_some_and(|o| !o.is_empty())
        && headers
            .first("access-control-request-method")
            .is_some_and(|m| !m.is_empty())
}

/// Envoy's JWT alphabet: base64url characters and the dots between segments.
fn is_jwt_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'.'
}

/// The token inside a value after `start`: from the first JWT character to the end of the
/// value (Envoy `extractJWT`); anything after the token stays part of it, so trailing text or
/// a second token makes the token malformed rather than silently ignored.
fn jwt_after(value: &[u8], start: usize) -> Option<String> {
    let tail = value.get(start..)?;
    let begin = tail.iter().position(|c| is_jwt_char(*c))?;
    let token = tail.get(begin..)?;
    Some(String::from_utf8_lossy(token).into_owned())
}

fn tokens_at(headers: Headers<'_>, location: &Location) -> Vec<String> {
    match location {
        Location::Header { name, prefix } => {
            // Envoy reads a repeated header as its values joined with ','.
            let joined = headers.values(name).collect::<Vec<_>>().join(&b","[..]);
            if headers.values(name).next().is_none() {
                return Vec::new();
            }
            let at = if prefix.is_empty() {
                Some(0)
            } else {
                find(&joined, prefix.as_bytes()).map(|i| i + prefix.len())
            };
            at.and_then(|at| jwt_after(&joined, at))
                .into_iter()
                .collect()
        }
        Location::Param(name) => headers
            .first(":path")
            .and_then(|p| query_param(p, name))
            .into_iter()
            .collect(),
        Location::Cookie(name) => headers
            .values("cookie")
            .filter_map(|v| cookie(v, name))
            .collect(),
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len().max(1))
        .position(|w| w == needle)
}

/// The first value of query parameter `name` (JWTs need no percent-decoding).
fn query_param(path: &[u8], name: &str) -> Option<String> {
    let query = path.splitn(2, |c| *c == b'?').nth(1)?;
    let query = query.split(|c| *c == b'#').next()?;
    query.split(|c| *c == b'&').find_map(|pair| {
        let mut kv = pair.splitn(2, |c| *c == b'=');
        let key = kv.next()?;
        if key == name.as_bytes() {
            jwt_after(kv.next()?, 0)
        } else {
            None
        }
    })
}

fn cookie(value: &[u8], name: &str) -> Option<String> {
    value.split(|c| *c == b';').find_map(|pair| {
        let pair = pair.strip_prefix(b" ").unwrap_or(pair);
        let mut kv = pair.splitn(2, |c| *c == b'=');
        if kv.next()? == name.as_bytes() {
            jwt_after(kv.next()?, 0)
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_prefix_is_found_as_a_substring_and_the_token_is_the_rest_of_the_value() {
        assert_eq!(
            jwt_after(b"Bearer abc.def.ghi", 7).as_deref(),
            Some("abc.def.ghi")
        );
        assert_eq!(
            jwt_after(b"Bearer  abc.def.ghi extra", 7).as_deref(),
            Some("abc.def.ghi extra")
        );
        assert_eq!(find(b"xBearer t", b"Bearer "), Some(1));
        assert_eq!(find(b"bearer t", b"Bearer "), None);
    }

    #[test]
    fn query_and_cookie_locations() {
        assert_eq!(
            query_param(b"/p?a=1&access_token=x.y.z#f", "access_token").as_deref(),
            Some("x.y.z")
        );
        assert_eq!(query_param(b"/p?access_token_x=1", "access_token"), None);
        assert_eq!(
            cookie(b"a=1; session=t.o.k", "session").as_deref(),
            Some("t.o.k")
        );
        assert_eq!(cookie(b"a=1", "session"), None);
    }

    #[test]
    fn space_delimited_claims_become_lists() {
        let mut payload = Map::new();
        payload.insert("scope".into(), Value::String("openid  orders.write".into()));
        payload.insert("groups".into(), Value::String("a b".into()));
        let c = Claims::new(payload, &["scope".to_string(), "permission".to_string()]);
        assert_eq!(
            c.get(&["scope".into()]),
            Some(&serde_json::json!(["openid", "orders.write"]))
        );
        assert_eq!(
            c.get(&["groups".into()]),
            Some(&Value::String("a b".into()))
        );
    }

    fn entry() -> CacheEntry {
        CacheEntry {
            provider: 0,
            claims: Rc::new(Claims::new(Map::new(), &[])),
            claim_headers: Rc::new(Vec::new()),
            expires: None,
            last_used: 0,
        }
    }

    #[test]
    fn token_cache_evicts_the_least_recently_used_entry() {
        let mut state = AuthnState::new(2);
        state.remember("a", entry());
        state.remember("b", entry());
        // Use "a" again, as a cache hit does.
        state.clock += 1;
        let stamp = state.clock;
        if let Some(e) = state.cache.get_mut("a") {
            e.last_used = stamp;
        }
        state.remember("c", entry());
        assert!(state.cache.contains_key("a"));
        assert!(!state.cache.contains_key("b"));
        assert!(state.cache.contains_key("c"));
    }

    #[test]
    fn edited_headers_replace_client_copies_and_drop_the_token() {
        let headers = vec![
            ("authorization".to_string(), b"Bearer t".to_vec()),
            ("x-jwt-role".to_string(), b"admin".to_vec()),
            ("x-jwt-role".to_string(), b"root".to_vec()),
            ("x-other".to_string(), b"1".to_vec()),
        ];
        let edits = vec![
            HeaderEdit::Remove("x-jwt-role".into()),
            HeaderEdit::Set("x-jwt-role".into(), "user".into()),
            HeaderEdit::Remove("authorization".into()),
        ];
        let out = edited_headers(Headers::new(&headers), &edits);
        assert_eq!(
            out,
            vec![
                ("x-other".to_string(), b"1".to_vec()),
                ("x-jwt-role".to_string(), b"user".to_vec())
            ]
        );
    }
}
