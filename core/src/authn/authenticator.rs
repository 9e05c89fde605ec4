//! End-user authentication: find the request's JWTs, verify them, and produce the claims the
//! authorization rules see and the header changes the upstream sees, exactly as Envoy 1.40's
//! `jwt_authn` does with the configuration istiod generates for RequestAuthentication
//! (`policy_applier.go`: one provider per rule, `requires_any[provider, allow_missing]`, or for
//! several rules `requires_any[P1..Pn, requires_all[requires_any[Pi, allow_missing]...]]`,
//! `payload_in_metadata`, no `jwt_cache_config`).
//!
//! Mirrors `jwt_authn/{filter,verifier,authenticator,extractor}.cc`:
//!
//! * every provider's output headers are removed from the request first, even for a CORS
//!   preflight (which then skips verification: Istio sets `bypass_cors_preflight`), and a
//!   provider's own again when its verifier starts;
//! * the requirement tree runs in order: `requires_any` stops at the first child that succeeds
//!   and otherwise answers with its last child's status; `requires_all` stops at the first
//!   failure; a verifier's side effects (headers added or removed, the query rewritten, the
//!   payload) stay in the request for the verifiers after it;
//! * a provider's verifier extracts the tokens at its locations, the `allow_missing` verifier
//!   those at every provider's locations (a location allows the issuers of the providers that
//!   configured it; `allow_missing` finds the provider by issuer), from the request as it is
//!   then: header locations in order of `name + prefix`, every value of each (a prefix is
//!   found anywhere in the value, the token starts at the next base64url-or-dot character, or
//!   is the whole value when none follows; without a prefix the whole value), then query
//!   parameters in name order (first value, percent-decoded), then cookies in name order
//!   (first occurrence, quotes stripped). A malformed or empty value at a location is a token,
//!   and a bad one;
//! * tokens are verified last-extracted first; the first failure ends the verifier (an
//!   allow-missing verifier passes only when there is no token at all). A good token adds its
//!   payload header and claim headers (`addCopy`: repeated tokens add repeated values), removes
//!   itself unless `forwardOriginalToken` (its header, or its parameter: the query is rebuilt
//!   from the decoded parameters in name order; a cookie stays), and becomes the payload the
//!   authorization rules see (the last good token wins);
//! * claims copied to headers: strings as they are (an empty one adds nothing), numbers as
//!   Envoy prints a double (an integer in `[0, 2^64)` without a fraction, otherwise `%f`),
//!   booleans as `true`/`false`, lists and objects as base64 of their JSON;
//! * the space-delimited claims (`scope`, `permission`, `spaceDelimitedClaims`) become lists of
//!   their non-empty space-separated parts in the payload the rules see; a value with no part
//!   (`" "`) stays the string it was.
//!
//! Verified tokens are cached per worker by their text and the provider that verified them,
//! stamped with the key-set generation: a JWKS change or a configuration load starts a new
//! generation, so a cached verification never outlives the keys it was checked with. A cache
//! hit still passes the issuer, time and audience checks again. A cached token costs no copy of
//! the request headers: token values are borrowed from the host's header buffer, the cache key
//! is hashed a word at a time (`TokenHasher`), and authorization sees the edited request as
//! borrowed pairs ([`edited_headers`]).

use hashbrown::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::authn::float_text;
use crate::authn::jwt::{self, JwtFailure, KeySet, ParsedToken};
use crate::authn::jwt_json;
use crate::authn::request_authentication::{Keys, Location, Provider};
use crate::matchers::sort_order::sort_by_bytes;
use crate::request::json_value::{JsonObject, JsonValue};
use crate::request::request_view::{self, Headers};
use crate::request::verified_claims::Claims;

/// A change the filter applies to an allowed request, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderEdit {
    /// Remove every value of a header.
    Remove(String),
    /// Add one more value (Envoy `addCopy`).
    Append(String, String),
    /// Replace `:path` (a query-parameter token removed).
    SetPath(String),
}

/// The result of authentication for one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// No token anywhere: allowed, no end-user identity.
    NoToken,
    Verified(Rc<Claims>),
    Rejected(JwtFailure),
}

/// The issuers a token location was configured for (Envoy `JwtIssuerChecker`): a provider
/// without an issuer allows every issuer there.
#[derive(Debug, Clone, Default)]
struct Issuers {
    any: bool,
    names: Vec<String>,
}

impl Issuers {
    fn add(&mut self, issuer: Option<&str>) {
        match issuer {
            None => self.any = true,
            Some(i) => {
                if !self.names.iter().any(|n| n == i) {
                    self.names.push(i.to_string());
                }
            }
        }
    }

    fn allows(&self, issuer: &str) -> bool {
        self.any || self.names.iter().any(|n| n == issuer)
    }
}

/// Where a set of providers looks for tokens, in Envoy's extraction order.
#[derive(Debug, Clone, Default)]
struct Extractor {
    /// `(name, prefix)` in order of `name + prefix` (a `std::map` key), one entry per key.
    headers: Vec<(String, String, Issuers)>,
    /// Query parameters in name order.
    params: Vec<(String, Issuers)>,
    /// Cookies in name order.
    cookies: Vec<(String, Issuers)>,
    /// Output headers the providers write.
    outputs: Vec<String>,
}

fn add_location<K: Ord + Clone>(list: &mut Vec<(K, Issuers)>, key: &K, issuer: Option<&str>) {
    match list.binary_search_by(|(k, _)| k.cmp(key)) {
        Ok(i) => {
            if let Some((_, issuers)) = list.get_mut(i) {
                issuers.add(issuer);
            }
        }
        Err(i) => {
            let mut issuers = Issuers::default();
            issuers.add(issuer);
            list.insert(i, (key.clone(), issuers));
        }
    }
}

impl Extractor {
    fn new<'p>(providers: impl IntoIterator<Item = &'p Provider>) -> Extractor {
        let mut e = Extractor::default();
        let mut headers: Vec<(String, Issuers)> = Vec::new();
        let mut prefixes: Vec<(String, String, String)> = Vec::new();
        for p in providers {
            let issuer = p.issuer.as_deref();
            for location in &p.locations {
                match location {
                    Location::Header { name, prefix } => {
                        let key = format!("{name}{prefix}");
                        if !prefixes.iter().any(|(k, _, _)| *k == key) {
                            prefixes.push((key.clone(), name.clone(), prefix.clone()));
                        }
                        add_location(&mut headers, &key, issuer);
                    }
                    Location::Param(name) => add_location(&mut e.params, name, issuer),
                    Location::Cookie(name) => add_location(&mut e.cookies, name, issuer),
                }
            }
            e.outputs.extend(
                p.payload_header
                    .iter()
                    .cloned()
                    .chain(p.claim_headers.iter().map(|(h, _)| h.clone())),
            );
        }
        e.headers = headers
            .into_iter()
            .filter_map(|(key, issuers)| {
                let (_, name, prefix) = prefixes.iter().find(|(k, _, _)| *k == key)?;
                Some((name.clone(), prefix.clone(), issuers))
            })
            .collect();
        e
    }
}

/// The requirement istiod builds (`requires_any` / `requires_all` of provider and
/// allow-missing verifiers).
#[derive(Debug, Clone)]
enum Verifier {
    Provider(usize),
    /// `allow_missing`: every provider's locations and issuers (measured with Envoy 1.40: a
    /// token of another rule's issuer is verified by that rule here, not refused).
    AllowMissing,
    Any(Vec<Verifier>),
    All(Vec<Verifier>),
}

impl Verifier {
    fn istio(providers: usize) -> Verifier {
        if providers == 1 {
            return Verifier::Any(vec![Verifier::Provider(0), Verifier::AllowMissing]);
        }
        let mut any: Vec<Verifier> = (0..providers).map(Verifier::Provider).collect();
        any.push(Verifier::All(
            (0..providers)
                .map(|i| Verifier::Any(vec![Verifier::Provider(i), Verifier::AllowMissing]))
                .collect(),
        ));
        Verifier::Any(any)
    }
}

/// Providers of every applicable RequestAuthentication, sorted by issuer as istiod does.
#[derive(Debug, Clone)]
pub struct Authenticator {
    providers: Vec<Provider>,
    /// One per provider.
    extractors: Vec<Extractor>,
    /// All providers together, for `allow_missing`.
    all: Extractor,
    verifier: Verifier,
    /// Every provider's output headers.
    sanitize: Vec<String>,
}

impl Default for Authenticator {
    fn default() -> Self {
        Authenticator::new(Vec::new())
    }
}

#[derive(Debug, Clone)]
struct CacheEntry {
    provider: usize,
    generation: u64,
    token: Rc<ParsedToken>,
    claims: Rc<Claims>,
    /// Recency stamp for LRU eviction.
    last_used: u64,
}

/// The token cache's hash: eight bytes per step (multiply and rotate, as rustc's FxHash), where
/// the default SipHash costs several times more on a token of 500 bytes and more. No seed is
/// needed: only tokens whose signature verified are ever inserted, so nobody without a signing
/// key can fill the cache with colliding keys, and the cache holds at most `jwtCacheSize`.
#[derive(Debug, Default, Clone, Copy)]
struct TokenHasher(u64);

impl TokenHasher {
    const K: u64 = 0x517c_c1b7_2722_0a95;

    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(Self::K);
    }
}

impl Hasher for TokenHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for word in words.by_ref() {
            self.add(u64::from_le_bytes(word.try_into().unwrap_or_default()));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            self.add(rest.iter().fold(0, |w, b| (w << 8) | u64::from(*b)));
        }
    }

    fn write_u8(&mut self, byte: u8) {
        self.add(u64::from(byte));
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Key-set generations are unique in the process: a new configuration or JWKS never reuses
/// one, so no cache entry can be mistaken for a verification against the new keys.
static GENERATION: AtomicU64 = AtomicU64::new(1);

fn next_generation() -> u64 {
    GENERATION.fetch_add(1, Ordering::Relaxed)
}

/// Per-VM mutable state: verified tokens and fetched key sets.
#[derive(Debug)]
pub struct AuthnState {
    cache: HashMap<String, CacheEntry, BuildHasherDefault<TokenHasher>>,
    capacity: usize,
    /// Fetched key set per provider index (remote JWKS only).
    remote_keys: HashMap<usize, Rc<KeySet>>,
    /// The key-set generation cache entries must carry to be used.
    generation: u64,
    pub cache_hits: u64,
    pub cache_misses: u64,
    /// Monotonic counter stamping cache use.
    clock: u64,
    pub jwks_fetch_ok: u64,
    pub jwks_fetch_failed: u64,
}

impl Default for AuthnState {
    fn default() -> Self {
        AuthnState::new(DEFAULT_CACHE_CAPACITY)
    }
}

/// Envoy's default `jwt_cache_size`.
pub const DEFAULT_CACHE_CAPACITY: usize = 100;

impl AuthnState {
    /// Fresh state for a configuration just loaded (a new key-set generation).
    pub fn new(capacity: usize) -> AuthnState {
        AuthnState {
            cache: HashMap::default(),
            capacity,
            remote_keys: HashMap::new(),
            generation: next_generation(),
            cache_hits: 0,
            cache_misses: 0,
            clock: 0,
            jwks_fetch_ok: 0,
            jwks_fetch_failed: 0,
        }
    }

    /// Installs a freshly fetched and fully parsed key set for a provider. Verifications
    /// cached with earlier keys stop counting (a new generation), as a removed key must.
    pub fn set_remote_keys(&mut self, provider: usize, keys: KeySet) {
        self.remote_keys.insert(provider, Rc::new(keys));
        self.generation = next_generation();
        self.cache.clear();
    }

    pub fn has_remote_keys(&self, provider: usize) -> bool {
        self.remote_keys.contains_key(&provider)
    }

    /// The current key-set generation.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    fn lookup(&mut self, token: &str, provider: Option<usize>) -> Option<CacheEntry> {
        self.clock += 1;
        let stamp = self.clock;
        let generation = self.generation;
        let entry = self.cache.get_mut(token)?;
        if entry.generation != generation || provider.is_some_and(|p| p != entry.provider) {
            return None;
        }
        entry.last_used = stamp;
        Some(entry.clone())
    }

    fn remember(&mut self, token: &str, mut entry: CacheEntry) {
        if self.capacity == 0 {
            return;
        }
        if self.cache.len() >= self.capacity && !self.cache.contains_key(token) {
            // Least recently used (a linear scan over <= capacity entries, paid only when a
            // new token is verified).
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
        entry.last_used = self.clock;
        self.cache.insert(token.to_string(), entry);
    }
}

/// Where a token was found, for its removal.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Origin<'e> {
    Header(&'e str),
    Param(&'e str),
    Cookie,
}

struct Found<'e> {
    token: String,
    origin: Origin<'e>,
    /// The issuers the location allows.
    issuers: &'e Issuers,
}

/// The request as `jwt_authn` changes it while it verifies: removed and added headers and a
/// rewritten `:path` over the headers Envoy handed in.
struct Work<'h, 'a> {
    headers: Headers<'h>,
    /// Names from the configuration (no allocation per request).
    removed: Vec<&'a str>,
    added: Vec<(&'a str, String)>,
    path: Option<String>,
    payload: Option<Rc<Claims>>,
}

impl<'h, 'a> Work<'h, 'a> {
    /// Every value of `name` as the request is now: the host's values (borrowed, not copied)
    /// unless removed, then the values added since.
    fn values(&self, name: &str) -> Vec<&[u8]> {
        let mut out: Vec<&[u8]> = Vec::new();
        if !self.removed.contains(&name) {
            out.extend(
                self.headers
                    .iter()
                    .filter(|(n, _)| request_view::same_name(n, name.as_bytes()))
                    .map(|(_, v)| v),
            );
        }
        out.extend(
            self.added
                .iter()
                .filter(|(n, _)| *n == name)
                .map(|(_, v)| v.as_bytes()),
        );
        out
    }

    fn remove(&mut self, name: &'a str) {
        if !self.removed.contains(&name) {
            self.removed.push(name);
        }
        self.added.retain(|(n, _)| *n != name);
    }

    fn path(&self) -> Option<&[u8]> {
        match &self.path {
            Some(p) => Some(p.as_bytes()),
            None => self.headers.first(":path"),
        }
    }

    fn edits(self, edits: &mut Vec<HeaderEdit>) {
        for name in self.removed {
            let present = self
                .headers
                .iter()
                .any(|(n, _)| request_view::same_name(n, name.as_bytes()));
            if present {
                edits.push(HeaderEdit::Remove(name.to_string()));
            }
        }
        if let Some(path) = self.path {
            edits.push(HeaderEdit::SetPath(path));
        }
        edits.extend(
            self.added
                .into_iter()
                .map(|(n, v)| HeaderEdit::Append(n.to_string(), v)),
        );
    }
}

impl Authenticator {
    pub fn new(providers: Vec<Provider>) -> Authenticator {
        // By issuer, stably, a provider without one first (`Option<String>` order).
        let (mut providers, mut named): (Vec<Provider>, Vec<Provider>) =
            providers.into_iter().partition(|p| p.issuer.is_none());
        sort_by_bytes(&mut named, |p| {
            p.issuer.as_deref().unwrap_or_default().as_bytes()
        });
        providers.append(&mut named);
        let extractors: Vec<Extractor> = providers
            .iter()
            .map(|p| Extractor::new(std::iter::once(p)))
            .collect();
        let all = Extractor::new(&providers);
        let mut sanitize = all.outputs.clone();
        sort_by_bytes(&mut sanitize, |s| s.as_bytes());
        sanitize.dedup();
        Authenticator {
            verifier: Verifier::istio(providers.len()),
            all,
            providers,
            extractors,
            sanitize,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.providers.is_empty()
    }

    pub fn providers(&self) -> &[Provider] {
        &self.providers
    }

    /// Authenticates one request. `edits` receives the changes to apply if the request is
    /// finally allowed (the sanitizing removals are always included).
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
        let mut work = Work {
            headers,
            removed: self.sanitize.iter().map(String::as_str).collect(),
            added: Vec::new(),
            path: None,
            payload: None,
        };
        if is_cors_preflight(headers) {
            work.edits(edits);
            return Outcome::NoToken;
        }
        let result = self.run(&self.verifier, &mut work, now, state);
        let payload = work.payload.clone();
        work.edits(edits);
        match (result, payload) {
            (Err(failure), _) => Outcome::Rejected(failure),
            (Ok(()), Some(claims)) => Outcome::Verified(claims),
            (Ok(()), None) => Outcome::NoToken,
        }
    }

    fn run<'a>(
        &'a self,
        verifier: &Verifier,
        work: &mut Work<'_, 'a>,
        now: u64,
        state: &mut AuthnState,
    ) -> Result<(), JwtFailure> {
        match verifier {
            Verifier::Any(children) => {
                let mut last = Err(JwtFailure::Missing);
                for child in children {
                    last = self.run(child, work, now, state);
                    if last.is_ok() {
                        break;
                    }
                }
                last
            }
            Verifier::All(children) => children
                .iter()
                .try_for_each(|child| self.run(child, work, now, state)),
            Verifier::Provider(i) => self.verify_tokens(Some(*i), work, now, state),
            Verifier::AllowMissing => self.verify_tokens(None, work, now, state),
        }
    }

    /// One authenticator over the tokens at its locations: provider `Some(i)` (whose verifier
    /// first removes that provider's output headers again), or `allow_missing` (`None`).
    fn verify_tokens<'a>(
        &'a self,
        provider: Option<usize>,
        work: &mut Work<'_, 'a>,
        now: u64,
        state: &mut AuthnState,
    ) -> Result<(), JwtFailure> {
        let extractor = match provider {
            Some(i) => self.extractors.get(i).ok_or(JwtFailure::UnknownIssuer)?,
            None => &self.all,
        };
        if provider.is_some() {
            for name in &extractor.outputs {
                work.remove(name.as_str());
            }
        }
        let found = extract(extractor, work);
        if found.is_empty() {
            return if provider.is_none() {
                Ok(())
            } else {
                Err(JwtFailure::Missing)
            };
        }
        for f in found.iter().rev() {
            self.verify_one(provider, f, work, now, state)?;
        }
        Ok(())
    }

    /// Envoy `startVerify` + `verifyKey` + `handleGoodJwt` for one token; `provider`: the
    /// verifier names it (else the provider is looked up by the token's issuer).
    fn verify_one<'a>(
        &'a self,
        provider: Option<usize>,
        found: &Found<'a>,
        work: &mut Work<'_, 'a>,
        now: u64,
        state: &mut AuthnState,
    ) -> Result<(), JwtFailure> {
        let cached = state.lookup(&found.token, provider);
        // Counted as Envoy counts `jwt_cache_hit|miss`: by provider verifiers only.
        if provider.is_some() {
            if cached.is_some() {
                state.cache_hits += 1;
            } else {
                state.cache_misses += 1;
            }
        }
        let token = match &cached {
            Some(entry) => entry.token.clone(),
            None => Rc::new(jwt::parse(&found.token)?),
        };
        if !found.issuers.allows(&token.issuer) {
            return Err(JwtFailure::UnknownIssuer);
        }
        let provider_index = match provider {
            Some(i) => i,
            None => self
                .find_by_issuer(&token.issuer)
                .ok_or(JwtFailure::UnknownIssuer)?,
        };
        let provider = self
            .providers
            .get(provider_index)
            .ok_or(JwtFailure::UnknownIssuer)?;
        token.check_time(now)?;
        token.check_audience(&provider.audiences)?;
        let claims = match cached.filter(|e| e.provider == provider_index) {
            Some(entry) => entry.claims,
            None => {
                match &provider.keys {
                    Keys::Inline(keys) => keys.verify(&token)?,
                    Keys::Remote(_) => state
                        .remote_keys
                        .get(&provider_index)
                        .ok_or(JwtFailure::JwksFetchFailed)?
                        .verify(&token)?,
                }
                let claims = Rc::new(Claims::new(
                    Rc::clone(&token.payload),
                    &provider.space_delimited,
                ));
                state.remember(
                    &found.token,
                    CacheEntry {
                        provider: provider_index,
                        generation: state.generation,
                        token: token.clone(),
                        claims: claims.clone(),
                        last_used: 0,
                    },
                );
                claims
            }
        };
        if let Some(header) = &provider.payload_header {
            work.added
                .push((header.as_str(), token.payload_segment().to_string()));
        }
        for (header, path) in &provider.claim_headers {
            if let Some(value) = claim_text(&token.payload, path).filter(|v| !v.is_empty()) {
                work.added.push((header.as_str(), value));
            }
        }
        if !provider.forward {
            match &found.origin {
                Origin::Header(name) => work.remove(name),
                Origin::Param(name) => {
                    if let Some(path) = work.path().map(|p| without_param(p, name)) {
                        work.path = Some(path);
                    }
                }
                Origin::Cookie => {}
            }
        }
        work.payload = Some(claims);
        Ok(())
    }

    /// Envoy `findByIssuer`: the first provider with this issuer, else the first without one.
    fn find_by_issuer(&self, issuer: &str) -> Option<usize> {
        self.providers
            .iter()
            .position(|p| p.issuer.as_deref() == Some(issuer))
            .or_else(|| self.providers.iter().position(|p| p.issuer.is_none()))
    }
}

/// The request headers after authentication's edits, as later filters (Istio's RBAC) see them:
/// pairs borrowed from the request and the edits (no header is copied), for
/// [`Headers::from_wire`].
pub fn edited_headers<'a>(
    headers: Headers<'a>,
    edits: &'a [HeaderEdit],
) -> Vec<(&'a [u8], &'a [u8])> {
    let mut out: Vec<(&'a [u8], &'a [u8])> = headers.iter().collect();
    for edit in edits {
        match edit {
            HeaderEdit::Remove(name) => {
                out.retain(|(n, _)| !request_view::same_name(n, name.as_bytes()));
            }
            HeaderEdit::Append(name, value) => out.push((name.as_bytes(), value.as_bytes())),
            HeaderEdit::SetPath(path) => {
                for (n, v) in out.iter_mut() {
                    if *n == b":path" {
                        *v = path.as_bytes();
                    }
                }
            }
        }
    }
    out
}

/// Envoy `addJWTClaimToHeader`: the claim at `a.b` of the payload as header text.
fn claim_text(payload: &JsonObject, path: &[String]) -> Option<String> {
    let (first, rest) = path.split_first()?;
    let mut value = payload.get(first)?;
    for part in rest {
        value = value.as_object()?.get(part)?;
    }
    match value {
        JsonValue::String(s) => Some(s.clone()),
        JsonValue::Number(n) => Some(claim_number(*n)),
        // Never in a token (the CLI's `--claims` only): as written.
        JsonValue::Integer(n) => Some(n.clone()),
        JsonValue::Bool(b) => Some(b.to_string()),
        JsonValue::Array(_) | JsonValue::Object(_) => {
            Some(base64_std(jwt_json::to_proto_json(value).as_bytes()))
        }
        JsonValue::Null => None,
    }
}

/// Envoy `convertClaimDoubleToString`: an integral value in `[0, 2^64)` as an integer, any
/// other as C++ `std::to_string(double)` (`%f`).
fn claim_number(d: f64) -> String {
    if (0.0..18_446_744_073_709_551_616.0).contains(&d) && d.fract() == 0.0 {
        format!("{}", d as u64)
    } else {
        float_text::fixed(d, 6)
    }
}

/// Standard base64 with padding (Envoy `Base64::encode`).
fn base64_std(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n =
            chunk.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..4 {
            if i <= chunk.len() {
                let index = ((n >> (18 - 6 * i)) & 63) as usize;
                out.push(char::from(*ALPHABET.get(index).unwrap_or(&b'A')));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn is_cors_preflight(headers: Headers<'_>) -> bool {
    headers.first(":method") == Some(b"OPTIONS")
        && headers.first("origin").is_some_and(|o| !o.is_empty())
        && headers
            .first("access-control-request-method")
            .is_some_and(|m| !m.is_empty())
}

/// Envoy's JWT alphabet: base64url characters and the dots between sections.
fn is_jwt_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'.'
}

/// Envoy `extractJWT`: from the first JWT character at or after `after` to the end of the
/// value; the whole value when no JWT character follows.
fn jwt_after(value: &[u8], after: usize) -> &[u8] {
    match value
        .get(after..)
        .and_then(|tail| tail.iter().position(|c| is_jwt_char(*c)))
    {
        Some(start) => value.get(after + start..).unwrap_or_default(),
        None => value,
    }
}

/// Bytes as text, invalid UTF-8 replaced (valid text, the usual case, is checked word-wise).
fn text(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// Envoy `ExtractorImpl::extract` over the request as it is now.
fn extract<'e>(e: &'e Extractor, work: &Work<'_, '_>) -> Vec<Found<'e>> {
    let mut found = Vec::new();
    for (name, prefix, issuers) in &e.headers {
        for value in work.values(name) {
            let token = if prefix.is_empty() {
                value
            } else {
                match find(value, prefix.as_bytes()) {
                    Some(at) => jwt_after(value, at + prefix.len()),
                    None => continue,
                }
            };
            found.push(Found {
                token: text(token),
                origin: Origin::Header(name),
                issuers,
            });
        }
    }
    if !e.params.is_empty() {
        if let Some(path) = work.path() {
            for (name, issuers) in &e.params {
                if let Some(value) = first_param(path, name) {
                    found.push(Found {
                        token: value,
                        origin: Origin::Param(name),
                        issuers,
                    });
                }
            }
        }
    }
    if !e.cookies.is_empty() {
        let cookies = work.values("cookie");
        for (name, issuers) in &e.cookies {
            if let Some(value) = cookies.iter().find_map(|v| cookie(v, name)) {
                found.push(Found {
                    token: text(value),
                    origin: Origin::Cookie,
                    issuers,
                });
            }
        }
    }
    found
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len().max(1))
        .position(|w| w == needle)
}

/// Envoy `PercentEncoding::decode`: `%XX` with two hex digits becomes the byte, anything else
/// (including `+`) stays as it is.
fn percent_decode(s: &[u8]) -> String {
    let hex = |c: u8| (c as char).to_digit(16);
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while let Some(&c) = s.get(i) {
        if c == b'%' {
            if let (Some(h), Some(l)) = (
                s.get(i + 1).copied().and_then(hex),
                s.get(i + 2).copied().and_then(hex),
            ) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The first value of query parameter `name` (decoded), as Envoy's `getFirstValue` after
/// `parseAndDecodeQueryString`; only a key with a `%` in it is decoded to compare it.
fn first_param(path: &[u8], name: &str) -> Option<String> {
    let q = path.iter().position(|c| *c == b'?')?;
    let query = path.get(q + 1..)?;
    query.split(|c| *c == b'&').find_map(|piece| {
        let (k, v) = match piece.iter().position(|c| *c == b'=') {
            Some(eq) => (piece.get(..eq)?, piece.get(eq + 1..)?),
            None => (piece, &b""[..]),
        };
        let matches = if k.contains(&b'%') {
            percent_decode(k) == name
        } else {
            k == name.as_bytes()
        };
        matches.then(|| percent_decode(v))
    })
}

/// Envoy `QueryParamsMulti::parseAndDecodeQueryString`: every `&`-separated piece after the
/// first `?` (the last piece only if non-empty), split at its first `=`, both sides decoded;
/// in request order.
fn query_params(path: &[u8]) -> Vec<(String, String)> {
    let Some(q) = path.iter().position(|c| *c == b'?') else {
        return Vec::new();
    };
    let query = path.get(q + 1..).unwrap_or_default();
    let mut out = Vec::new();
    let mut start = 0;
    while start < query.len() {
        let end = query
            .get(start..)
            .and_then(|rest| rest.iter().position(|c| *c == b'&'))
            .map_or(query.len(), |i| start + i);
        let piece = query.get(start..end).unwrap_or_default();
        let (k, v) = match piece.iter().position(|c| *c == b'=') {
            Some(eq) => (
                piece.get(..eq).unwrap_or_default(),
                piece.get(eq + 1..).unwrap_or_default(),
            ),
            None => (piece, &b""[..]),
        };
        out.push((percent_decode(k), percent_decode(v)));
        start = end + 1;
    }
    out
}

/// Envoy `JwtParamLocation::removeJwt`: the path up to `?`, then (if any remain) the decoded
/// parameters other than `name` as `k=v` joined by `&`, grouped by name in name order.
fn without_param(path: &[u8], name: &str) -> String {
    let base = path
        .iter()
        .position(|c| *c == b'?')
        .map_or(path, |q| path.get(..q).unwrap_or(path));
    let mut params = query_params(path);
    params.retain(|(k, _)| k != name);
    // A stable sort keeps each name's values in request order (a btree map of vectors).
    sort_by_bytes(&mut params, |p| p.0.as_bytes());
    let mut out = text(base);
    for (i, (k, v)) in params.iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// Envoy `Utility::parseCookies` for one name over one `cookie` value: `;`-separated pieces
/// (empty ones skipped), the name from the first non-space character to the first `=`, the
/// value after it with one pair of surrounding double quotes removed.
fn cookie<'v>(value: &'v [u8], name: &str) -> Option<&'v [u8]> {
    value.split(|c| *c == b';').find_map(|piece| {
        if piece.is_empty() {
            return None;
        }
        let eq = piece.iter().position(|c| *c == b'=')?;
        let start = piece.iter().position(|c| *c != b' ')?;
        let key = piece.get(start..eq)?;
        if key != name.as_bytes() {
            return None;
        }
        let v = piece.get(eq + 1..)?;
        match v {
            [b'"', inner @ .., b'"'] => Some(inner),
            _ => Some(v),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_is_found_anywhere_and_the_token_is_the_rest_from_a_jwt_character() {
        assert_eq!(jwt_after(b"Bearer abc.def.ghi", 7), b"abc.def.ghi");
        assert_eq!(jwt_after(b"Bearer  !abc extra", 7), b"abc extra");
        assert_eq!(
            jwt_after(b"Bearer !!!", 7),
            b"Bearer !!!",
            "no JWT character: the whole value"
        );
        assert_eq!(jwt_after(b"Bearer ", 7), b"Bearer ");
        assert_eq!(find(b"xBearer t", b"Bearer "), Some(1));
        assert_eq!(find(b"bearer t", b"Bearer "), None);
    }

    #[test]
    fn query_parameters_are_decoded_and_the_removed_one_rebuilds_the_query_in_name_order() {
        let p = query_params(b"/p?b=2&access%5Ftoken=x.y.z&a=%2F%20b&flag&&c=d+e");
        assert_eq!(
            p,
            vec![
                ("b".into(), "2".into()),
                ("access_token".into(), "x.y.z".into()),
                ("a".into(), "/ b".into()),
                ("flag".into(), "".into()),
                ("".into(), "".into()),
                ("c".into(), "d+e".into()),
            ]
        );
        assert_eq!(
            without_param(b"/p?b=1&access_token=t&a=1&b=2", "access_token"),
            "/p?a=1&b=1&b=2"
        );
        assert_eq!(without_param(b"/p?access_token=t", "access_token"), "/p");
        assert_eq!(
            without_param(b"/p?&&access_token=t&&", "access_token"),
            "/p?=&=&="
        );
        assert_eq!(
            query_params(b"/p?access_token"),
            vec![("access_token".into(), "".into())]
        );
    }

    #[test]
    fn cookies_are_found_by_exact_name_with_quotes_removed() {
        assert_eq!(
            cookie(b"a=1; session=t.o.k", "session"),
            Some(&b"t.o.k"[..])
        );
        assert_eq!(
            cookie(b"a=1;   session=\"t.o.k\" ", "session"),
            Some(&b"\"t.o.k\" "[..])
        );
        assert_eq!(cookie(b"session=\"t.o.k\"", "session"), Some(&b"t.o.k"[..]));
        assert_eq!(cookie(b"session=", "session"), Some(&b""[..]));
        assert_eq!(cookie(b"session =x", "session"), None);
        assert_eq!(cookie(b"a=1", "session"), None);
    }

    #[test]
    fn space_delimited_claims_become_lists_unless_no_part_is_left() {
        let payload = jwt_json::parse_object(
            br#"{"scope":"openid  orders.write","permission":" ","groups":"a b"}"#,
        )
        .unwrap();
        let payload = Rc::new(payload);
        let names = ["scope".to_string(), "permission".into(), "scope".into()];
        let c = Claims::new(Rc::clone(&payload), &names);
        let text = |s: &str| JsonValue::String(s.into());
        assert_eq!(
            c.get(&["scope".into()]),
            Some(&JsonValue::Array(vec![
                text("openid"),
                text("orders.write")
            ]))
        );
        assert_eq!(c.string("scope"), None);
        assert_eq!(c.get(&["permission".into()]), Some(&text(" ")));
        assert_eq!(c.get(&["groups".into()]), Some(&text("a b")));
        // The token's own payload (claim headers read it) keeps the strings.
        assert_eq!(payload.get("scope"), Some(&text("openid  orders.write")));
    }

    #[test]
    fn claims_are_copied_to_headers_as_envoy_prints_them() {
        assert_eq!(claim_number(42.0), "42");
        assert_eq!(claim_number(-0.0), "0");
        assert_eq!(claim_number(1.5), "1.500000");
        assert_eq!(claim_number(-3.0), "-3.000000");
        assert_eq!(claim_number(12345678901234567890.0), "12345678901234567168");
        assert_eq!(
            claim_number(18446744073709551616.0),
            "18446744073709551616.000000"
        );
        assert_eq!(claim_number(1e-300), "0.000000");
        let payload =
            jwt_json::parse_object(br#"{"l":["a","b"],"e":[],"o":{"team":"core","n":null}}"#)
                .unwrap();
        assert_eq!(claim_text(&payload, &["l".into()]).unwrap(), "WyJhIiwiYiJd");
        assert_eq!(claim_text(&payload, &["e".into()]).unwrap(), "W10=");
        assert_eq!(
            claim_text(&payload, &["o".into()]).unwrap(),
            base64_std(br#"{"n":null,"team":"core"}"#)
        );
        assert_eq!(claim_text(&payload, &["o".into(), "n".into()]), None);
    }

    fn entry(generation: u64) -> CacheEntry {
        CacheEntry {
            provider: 0,
            generation,
            token: Rc::new(jwt::parse("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln").unwrap()),
            claims: Rc::new(Claims::new(Rc::new(JsonObject::new()), &[])),
            last_used: 0,
        }
    }

    #[test]
    fn token_cache_evicts_the_least_recently_used_entry() {
        let mut state = AuthnState::new(2);
        let g = state.generation();
        state.remember("a", entry(g));
        state.remember("b", entry(g));
        assert!(state.lookup("a", Some(0)).is_some());
        state.remember("c", entry(g));
        assert!(state.cache.contains_key("a"));
        assert!(!state.cache.contains_key("b"));
        assert!(state.cache.contains_key("c"));
    }

    #[test]
    fn the_token_cache_tells_apart_tokens_that_differ_in_one_byte_or_in_length() {
        let mut state = AuthnState::new(10);
        let g = state.generation();
        let token = "eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiJhIn0.c2lnbmF0dXJl";
        state.remember(token, entry(g));
        assert!(state.lookup(token, Some(0)).is_some());
        let mut last_byte = token.to_string();
        last_byte.pop();
        last_byte.push('M');
        for other in [last_byte.as_str(), &token[..token.len() - 1], &token[..16]] {
            assert!(state.lookup(other, Some(0)).is_none(), "{other}");
        }
    }

    #[test]
    fn a_cached_verification_does_not_outlive_its_key_set() {
        let mut state = AuthnState::new(10);
        let g = state.generation();
        state.remember("a", entry(g));
        assert!(state.lookup("a", Some(0)).is_some());
        assert!(
            state.lookup("a", Some(1)).is_none(),
            "another provider's entry"
        );
        state.set_remote_keys(0, KeySet::default());
        assert_ne!(state.generation(), g);
        assert!(state.lookup("a", Some(0)).is_none());
        let mut stale = AuthnState::new(10);
        stale.remember("a", entry(g));
        assert!(
            stale.lookup("a", Some(0)).is_none(),
            "a new configuration is a new generation"
        );
    }

    #[test]
    fn edited_headers_apply_removals_appends_and_the_path() {
        let headers = vec![
            (":path".to_string(), b"/p?access_token=t".to_vec()),
            ("authorization".to_string(), b"Bearer t".to_vec()),
            ("x-jwt-role".to_string(), b"admin".to_vec()),
            ("x-other".to_string(), b"1".to_vec()),
        ];
        let edits = vec![
            HeaderEdit::Remove("x-jwt-role".into()),
            HeaderEdit::Remove("authorization".into()),
            HeaderEdit::SetPath("/p".into()),
            HeaderEdit::Append("x-jwt-role".into(), "user".into()),
            HeaderEdit::Append("x-jwt-role".into(), "user2".into()),
        ];
        let out = edited_headers(Headers::new(&headers), &edits);
        assert_eq!(
            out,
            vec![
                (&b":path"[..], &b"/p"[..]),
                (&b"x-other"[..], &b"1"[..]),
                (&b"x-jwt-role"[..], &b"user"[..]),
                (&b"x-jwt-role"[..], &b"user2"[..]),
            ]
        );
    }
}
