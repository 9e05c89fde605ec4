//! The proxy-wasm glue: Envoy calls in, the engine decides, meshguard answers.
//!
//! * `on_configure` loads the plugin configuration; any error is logged once (with the field
//!   path) and `false` is returned, so Envoy rejects the configuration (a static bootstrap
//!   fails to start, an xDS update is NACKed and the old configuration keeps serving).
//! * `on_http_request_headers` reads the header map once, lets the engine decide (connection
//!   properties are read lazily, only if a rule needs them), records the decision as filter
//!   state `wasm.meshguard.decision`, and on deny sends `403 RBAC: access denied` itself, as
//!   Envoy's RBAC filter does (`grpc-status: 7` for gRPC requests).
//!
//! Nothing here can panic on host input: every host call returns `Result`.

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::rc::Rc;
use std::time::Duration;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel, MetricType};

use crate::authn::{AuthnState, Claims, HeaderEdit, Outcome};
use crate::config::{self, Direction, JwtSource, NodeInfo, WorkloadSource};
use crate::engine::{policy_of, Decision, DryRun, Engine};
use crate::host;
use crate::identity::Peer;
use crate::ip::parse_socket_ip;
use crate::jwt::{JwksSource, JwtFailure, KeySet};
use crate::pairs;
use crate::request::{Connection, Headers, MetadataValue, Unknown};
use crate::request_authentication::{Keys, RemoteJwks};

const DENY_BODY: &[u8] = b"RBAC: access denied";
/// A plaintext request to a port a STRICT PeerAuthentication covers.
const MTLS_REQUIRED_BODY: &[u8] = b"meshguard: mTLS is required (PeerAuthentication STRICT)";
const DECISION_PROPERTY: &str = "meshguard.decision";
const DECISION_HEADER: &str = "x-meshguard-decision";
/// Filter state a `set_filter_state` filter may set from `%DOWNSTREAM_DIRECT_REMOTE_ADDRESS%`
/// so `source.ip` stays the physical peer when X-Forwarded-For is trusted.
const DIRECT_PEER_STATE: &str = "meshguard.direct_peer";

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> {
        Box::new(FilterRoot {
            engine: None,
            authn: Rc::new(RefCell::new(AuthnState::default())),
            fetches: Vec::new(),
            calls: HashMap::new(),
            metrics: Rc::new(Metrics::default()),
            flushed_authn: [0; 4],
        })
    });
}}

/// Counter names; Envoy files them under `wasmcustom.` and Prometheus shows them as-is.
const COUNTERS: [&str; COUNTER_COUNT] = [
    "meshguard_allowed",
    "meshguard_denied",
    "meshguard_dry_run_denied",
    "meshguard_audited",
    "meshguard_jwt_accepted",
    "meshguard_jwt_rejected_malformed",
    "meshguard_jwt_rejected_unknown_issuer",
    "meshguard_jwt_rejected_expired",
    "meshguard_jwt_rejected_not_yet_valid",
    "meshguard_jwt_rejected_audience",
    "meshguard_jwt_rejected_signature",
    "meshguard_jwt_rejected_no_matching_key",
    "meshguard_jwt_rejected_jwks_unavailable",
    "meshguard_jwt_cache_hit",
    "meshguard_jwt_cache_miss",
    "meshguard_jwks_fetch_ok",
    "meshguard_jwks_fetch_failed",
];
const COUNTER_COUNT: usize = 17;
const ALLOWED: usize = 0;
const DENIED: usize = 1;
const DRY_RUN_DENIED: usize = 2;
const AUDITED: usize = 3;
const JWT_ACCEPTED: usize = 4;
const JWT_CACHE_HIT: usize = 13;

/// Per-policy outcomes, each a counter `meshguard_policy_<outcome>.<policy id>`.
const POLICY_OUTCOMES: [&str; 4] = ["allowed", "denied", "dry_run_denied", "audited"];
/// Policies beyond this many share the `other` counters, bounding the metric count.
const MAX_POLICY_METRICS: usize = 256;

/// Counts kept in the VM and flushed to Envoy once a second, so counting costs no host call
/// on the request path.
#[derive(Default)]
struct Metrics {
    ids: RefCell<Vec<Option<u32>>>,
    pending: [Cell<u64>; COUNTER_COUNT],
    /// Policy id -> slot in `policy_pending` / `policy_ids`.
    policy_slots: RefCell<HashMap<String, usize>>,
    policy_ids: RefCell<Vec<[Option<u32>; 4]>>,
    policy_pending: RefCell<Vec<[u64; 4]>>,
}

impl Metrics {
    fn define(&self, policies: &[&str]) {
        let ids = COUNTERS
            .iter()
            .map(|name| proxy_wasm::hostcalls::define_metric(MetricType::Counter, name).ok())
            .collect();
        *self.ids.borrow_mut() = ids;
        let mut slots = HashMap::new();
        let mut names: Vec<String> = Vec::new();
        for policy in policies {
            let name = if names.len() < MAX_POLICY_METRICS {
                (*policy).to_string()
            } else {
                "other".to_string()
            };
            if !names.contains(&name) {
                names.push(name.clone());
            }
            let slot = names.iter().position(|n| *n == name).unwrap_or(0);
            slots.insert((*policy).to_string(), slot);
        }
        let define = |outcome: &str, policy: &str| {
            proxy_wasm::hostcalls::define_metric(
                MetricType::Counter,
                &format!("meshguard_policy_{outcome}.{policy}"),
            )
            .ok()
        };
        *self.policy_ids.borrow_mut() = names
            .iter()
            .map(|n| [0, 1, 2, 3].map(|i| POLICY_OUTCOMES.get(i).and_then(|o| define(o, n))))
            .collect();
        *self.policy_pending.borrow_mut() = vec![[0; 4]; names.len()];
        *self.policy_slots.borrow_mut() = slots;
    }

    fn add_policy(&self, rule_id: &str, outcome: usize) {
        let Some(slot) = self.policy_slots.borrow().get(policy_of(rule_id)).copied() else {
            return;
        };
        if let Some(count) = self
            .policy_pending
            .borrow_mut()
            .get_mut(slot)
            .and_then(|c| c.get_mut(outcome))
        {
            *count = count.saturating_add(1);
        }
    }

    fn add(&self, counter: usize, n: u64) {
        if let Some(cell) = self.pending.get(counter) {
            cell.set(cell.get().saturating_add(n));
        }
    }

    fn rejected(&self, failure: JwtFailure) {
        let name = format!("meshguard_jwt_rejected_{}", failure.reason());
        if let Some(i) = COUNTERS.iter().position(|c| *c == name) {
            self.add(i, 1);
        }
    }

    fn flush(&self) {
        let increment = |id: u32, n: u64| {
            let _ =
                proxy_wasm::hostcalls::increment_metric(id, i64::try_from(n).unwrap_or(i64::MAX));
        };
        let ids = self.ids.borrow();
        for (cell, id) in self.pending.iter().zip(ids.iter()) {
            let n = cell.take();
            if let (Some(id), true) = (id, n > 0) {
                increment(*id, n);
            }
        }
        let policy_ids = self.policy_ids.borrow();
        for (counts, ids) in self
            .policy_pending
            .borrow_mut()
            .iter_mut()
            .zip(policy_ids.iter())
        {
            for (count, id) in counts.iter_mut().zip(ids.iter()) {
                if let (Some(id), true) = (id, *count > 0) {
                    increment(*id, *count);
                }
                *count = 0;
            }
        }
    }
}

/// Seconds to wait before retrying a failed JWKS fetch, doubling up to the cap.
const FIRST_RETRY_SECS: u64 = 1;
const MAX_RETRY_SECS: u64 = 60;
/// The largest JWKS document accepted.
const MAX_JWKS_BYTES: usize = 256 * 1024;

struct FilterRoot {
    engine: Option<Rc<Engine>>,
    authn: Rc<RefCell<AuthnState>>,
    fetches: Vec<JwksFetch>,
    /// In-flight `dispatch_http_call` tokens -> index into `fetches`.
    calls: HashMap<u32, usize>,
    metrics: Rc<Metrics>,
    /// Authentication counters already flushed: cache hits, misses, fetch ok, fetch failed.
    flushed_authn: [u64; 4],
}

/// Fetch schedule of one provider's remote JWKS.
struct JwksFetch {
    provider: usize,
    remote: RemoteJwks,
    next_at: u64,
    retry_secs: u64,
    in_flight: bool,
}

impl Context for FilterRoot {
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        _headers: usize,
        body_size: usize,
        _trailers: usize,
    ) {
        let Some(index) = self.calls.remove(&token_id) else {
            return;
        };
        let now = host::now_seconds().unwrap_or(0);
        let refresh = self
            .engine
            .as_ref()
            .map_or(1200, |e| e.settings().jwks_refresh_seconds);
        let Some(fetch) = self.fetches.get_mut(index) else {
            return;
        };
        fetch.in_flight = false;
        let status = host::header_map(host::MAP_HTTP_CALL_RESPONSE_HEADERS)
            .ok()
            .and_then(|h| h.into_iter().find(|(k, _)| k == ":status").map(|(_, v)| v));
        let result = if status.as_deref() != Some(b"200") {
            Err(format!(
                "HTTP status {}",
                status
                    .map(|s| String::from_utf8_lossy(&s).into_owned())
                    .unwrap_or_else(|| "none (no response)".into())
            ))
        } else if body_size > MAX_JWKS_BYTES {
            Err(format!(
                "document of {body_size} bytes is larger than {MAX_JWKS_BYTES}"
            ))
        } else {
            host::buffer(host::BUFFER_HTTP_CALL_RESPONSE_BODY, body_size)
                .map_err(|e| format!("cannot read the body (host status {})", e.0))
                .and_then(|body| {
                    String::from_utf8(body.unwrap_or_default())
                        .map_err(|_| "body is not UTF-8".to_string())
                })
                .and_then(|text| KeySet::parse(&text, JwksSource::Remote))
        };
        match result {
            Ok(keys) => {
                log::info!(
                    "meshguard: JWKS {} fetched: {} keys",
                    fetch.remote.uri,
                    keys.len()
                );
                self.authn
                    .borrow_mut()
                    .set_remote_keys(fetch.provider, keys);
                self.authn.borrow_mut().jwks_fetch_ok += 1;
                fetch.retry_secs = FIRST_RETRY_SECS;
                fetch.next_at = now.saturating_add(refresh);
            }
            Err(why) => {
                self.authn.borrow_mut().jwks_fetch_failed += 1;
                log::warn!(
                    "meshguard: JWKS fetch from {} (cluster {}) failed: {why}; keeping the last good keys, retrying in {}s",
                    fetch.remote.uri, fetch.remote.cluster, fetch.retry_secs
                );
                fetch.next_at = now.saturating_add(fetch.retry_secs);
                fetch.retry_secs = (fetch.retry_secs * 2).min(MAX_RETRY_SECS);
            }
        }
    }
}

impl FilterRoot {
    /// Starts every JWKS fetch that is due.
    fn fetch_due_jwks(&mut self) {
        let now = host::now_seconds().unwrap_or(0);
        for index in 0..self.fetches.len() {
            let Some(fetch) = self.fetches.get_mut(index) else {
                continue;
            };
            if fetch.in_flight || fetch.next_at > now {
                continue;
            }
            let remote = fetch.remote.clone();
            let call = self.dispatch_http_call(
                &remote.cluster,
                vec![
                    (":method", "GET"),
                    (":path", &remote.path),
                    (":authority", &remote.authority),
                    ("accept", "application/json"),
                ],
                None,
                vec![],
                Duration::from_millis(remote.timeout_ms),
            );
            let Some(fetch) = self.fetches.get_mut(index) else {
                continue;
            };
            match call {
                Ok(token) => {
                    fetch.in_flight = true;
                    self.calls.insert(token, index);
                }
                Err(status) => {
                    self.authn.borrow_mut().jwks_fetch_failed += 1;
                    log::warn!(
                        "meshguard: cannot start the JWKS fetch from {} through cluster {} ({status:?}); is the cluster defined? retrying in {}s",
                        remote.uri, remote.cluster, fetch.retry_secs
                    );
                    fetch.next_at = now.saturating_add(fetch.retry_secs);
                    fetch.retry_secs = (fetch.retry_secs * 2).min(MAX_RETRY_SECS);
                }
            }
        }
    }
}

impl RootContext for FilterRoot {
    fn on_configure(&mut self, _size: usize) -> bool {
        // Match the log crate's level to Envoy's, so disabled debug lines cost no host call.
        if let Ok(level) = proxy_wasm::hostcalls::get_log_level() {
            proxy_wasm::set_log_level(level);
        }
        let bytes =
            match proxy_wasm::hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX)
            {
                Ok(bytes) => bytes.unwrap_or_default(),
                Err(status) => {
                    log::error!(
                        "meshguard: cannot read the plugin configuration (host status {status:?})"
                    );
                    return false;
                }
            };
        match config::load(&bytes, &node_info()) {
            Ok((engine, report)) => {
                let source = match report.workload_source {
                    WorkloadSource::Config => "plugin configuration",
                    WorkloadSource::NodeMetadata => "Istio node metadata",
                    WorkloadSource::Default => {
                        "default (no workload in configuration or node metadata)"
                    }
                };
                log::warn!(
                    "meshguard {}: configuration loaded: workload namespace={} labels={:?} (from {source}), {} resources, {} apply, {} rules",
                    env!("CARGO_PKG_VERSION"),
                    report.workload.namespace(),
                    report.workload.labels(),
                    report.resources,
                    report.applied_policies,
                    engine.rule_count(),
                );
                self.authn = Rc::new(RefCell::new(AuthnState::new(
                    engine.settings().jwt_cache_size,
                )));
                self.calls.clear();
                self.fetches = engine
                    .authenticator()
                    .providers()
                    .iter()
                    .enumerate()
                    .filter_map(|(provider, p)| match &p.keys {
                        Keys::Remote(remote) => Some(JwksFetch {
                            provider,
                            remote: remote.clone(),
                            next_at: 0,
                            retry_secs: FIRST_RETRY_SECS,
                            in_flight: false,
                        }),
                        Keys::Inline(_) => None,
                    })
                    .collect();
                self.metrics.define(&engine.policy_ids());
                self.flushed_authn = [0; 4];
                self.set_tick_period(Duration::from_secs(1));
                self.engine = Some(Rc::new(engine));
                true
            }
            Err(e) => {
                log::error!("meshguard: invalid configuration, rejected: {e}");
                false
            }
        }
    }

    fn on_tick(&mut self) {
        self.fetch_due_jwks();
        if let Ok(state) = self.authn.try_borrow() {
            let now = [
                state.cache_hits,
                state.cache_misses,
                state.jwks_fetch_ok,
                state.jwks_fetch_failed,
            ];
            for (i, (now, before)) in now.iter().zip(self.flushed_authn.iter_mut()).enumerate() {
                self.metrics
                    .add(JWT_CACHE_HIT + i, now.saturating_sub(*before));
                *before = *now;
            }
        }
        self.metrics.flush();
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(AuthzFilter {
            context_id,
            engine: self.engine.clone(),
            authn: self.authn.clone(),
            metrics: self.metrics.clone(),
            decision_header: None,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// The workload's namespace and labels from Istio's node metadata, when present.
fn node_info() -> NodeInfo {
    let namespace = host::property(&["xds", "node", "metadata", "NAMESPACE"])
        .ok()
        .flatten()
        .and_then(|b| String::from_utf8(b).ok())
        .filter(|ns| !ns.is_empty());
    let labels = host::property(&["xds", "node", "metadata", "LABELS"])
        .ok()
        .flatten()
        .and_then(|bytes| {
            let pairs = pairs::decode(&bytes)?;
            pairs
                .into_iter()
                .map(|(k, v)| {
                    Some((
                        String::from_utf8(k.to_vec()).ok()?,
                        String::from_utf8(v.to_vec()).ok()?,
                    ))
                })
                .collect::<Option<BTreeMap<String, String>>>()
        });
    NodeInfo { namespace, labels }
}

struct AuthzFilter {
    context_id: u32,
    engine: Option<Rc<Engine>>,
    authn: Rc<RefCell<AuthnState>>,
    metrics: Rc<Metrics>,
    /// The decision text to add to the response, when `decisionHeader` is on.
    decision_header: Option<String>,
}

impl Context for AuthzFilter {}

impl HttpContext for AuthzFilter {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let Some(engine) = self.engine.clone() else {
            // on_configure failed or never ran: Envoy should not get here; fail closed.
            log::error!(
                "#{} meshguard: no configuration loaded, denying",
                self.context_id
            );
            return deny(&[]);
        };
        let raw_headers = match host::header_map_bytes(host::MAP_REQUEST_HEADERS) {
            Ok(h) => h,
            Err(e) => {
                log::error!(
                    "#{} meshguard: cannot read request headers (host status {}), denying",
                    self.context_id,
                    e.0
                );
                return deny(&[]);
            }
        };
        let Some(headers) = pairs::decode(&raw_headers) else {
            log::error!(
                "#{} meshguard: malformed request header map from the host, denying",
                self.context_id
            );
            return deny(&[]);
        };
        let view = Headers::from_wire(&headers);
        if outbound(engine.settings().direction) {
            // Outbound side: only the Sidecar egress list applies (Istio enforces peer and
            // request authentication and authorization policies on the inbound side only).
            let violation = if engine.has_egress_rules() {
                engine.egress_violation(view)
            } else {
                None
            };
            let Some((host, sidecar)) = violation else {
                let _ = host::set_property(DECISION_PROPERTY, b"allow egress");
                return Action::Continue;
            };
            log::info!(
                "#{} meshguard decision=deny egress host={host} sidecar={sidecar}",
                self.context_id
            );
            self.metrics.add(DENIED, 1);
            let _ =
                host::set_property(DECISION_PROPERTY, format!("deny egress[{host}]").as_bytes());
            let body = format!(
                "meshguard: egress to {host} is not allowed by Sidecar {sidecar} (outboundTrafficPolicy REGISTRY_ONLY)"
            );
            return deny_with(&[], body.as_bytes());
        }
        let connection = LazyConnection::default();
        // Istio refuses plaintext on a STRICT port before any HTTP processing: check it first.
        if let Some(source) = engine.mtls_violation(&connection) {
            log::info!(
                "#{} meshguard decision=deny {source} reason=mtls_required",
                self.context_id
            );
            self.metrics.add(DENIED, 1);
            let _ = host::set_property(DECISION_PROPERTY, format!("deny {source}").as_bytes());
            return deny_with(&[], MTLS_REQUIRED_BODY);
        }
        let mut edits = Vec::new();
        let outcome = if engine.settings().jwt_source == JwtSource::EnvoyJwtAuthn {
            envoy_jwt_payload()
        } else if engine.authenticator().is_empty() {
            Outcome::NoToken
        } else {
            let now = host::now_seconds().unwrap_or(0);
            match self.authn.try_borrow_mut() {
                Ok(mut state) => engine
                    .authenticator()
                    .authenticate(view, now, &mut state, &mut edits),
                Err(_) => Outcome::Rejected(JwtFailure::VerificationFails),
            }
        };
        let claims = match &outcome {
            Outcome::Rejected(failure) => {
                self.metrics.rejected(*failure);
                return self.reject_token(*failure, view);
            }
            Outcome::Verified(claims) => {
                self.metrics.add(JWT_ACCEPTED, 1);
                Some(claims.clone())
            }
            Outcome::NoToken => None,
        };
        // Authorization sees the request as Istio's RBAC would after jwt_authn: client copies of
        // output headers removed, verified claim headers set, the token header removed.
        let edited;
        let received = view;
        let view = if edits.is_empty() {
            view
        } else {
            edited = crate::authn::edited_headers(view, &edits);
            Headers::new(&edited)
        };
        let decision = engine.decide_with_claims(view, &connection, claims.as_deref());
        let summary = decision.summary();
        if let Err(e) = host::set_property(DECISION_PROPERTY, summary.as_bytes()) {
            log::debug!(
                "#{} meshguard: cannot set filter state (host status {})",
                self.context_id,
                e.0
            );
        }
        self.report(&decision, view, &connection);
        self.count(&decision);
        if decision.is_allowed() {
            apply_edits(&edits, received, self.context_id);
            if engine.settings().decision_header {
                self.decision_header = Some(summary);
            }
            return Action::Continue;
        }
        if engine.settings().decision_header {
            deny(&[(DECISION_HEADER, &summary)])
        } else {
            deny(&[])
        }
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        if let Some(summary) = self.decision_header.take() {
            if let Err(e) = host::set_response_header(DECISION_HEADER, &summary) {
                log::debug!(
                    "#{} meshguard: cannot add the decision header (host status {})",
                    self.context_id,
                    e.0
                );
            }
        }
        Action::Continue
    }
}

/// The payload Envoy's `jwt_authn` verified (Istio sets `payload_in_metadata: payload`); its
/// space-delimited claims are already lists.
fn envoy_jwt_payload() -> Outcome {
    let Some(bytes) = read(&[
        "metadata",
        "filter_metadata",
        "envoy.filters.http.jwt_authn",
        "payload",
    ]) else {
        return Outcome::NoToken;
    };
    match pairs::decode_untyped(&bytes, MAX_CLAIM_DEPTH) {
        serde_json::Value::Object(payload) => Outcome::Verified(Rc::new(Claims::new(payload, &[]))),
        _ => Outcome::NoToken,
    }
}

/// Nesting accepted when decoding claims from metadata.
const MAX_CLAIM_DEPTH: u8 = 16;

/// Whether this filter runs on an outbound listener (`xds.listener_direction` 2).
fn outbound(direction: Direction) -> bool {
    match direction {
        Direction::Inbound => false,
        Direction::Outbound => true,
        Direction::Auto => read_u64(&["xds", "listener_direction"]) == Some(2),
    }
}

/// Applies authentication's changes in order; removals only touch headers that are present.
fn apply_edits(edits: &[HeaderEdit], headers: Headers<'_>, context_id: u32) {
    for edit in edits {
        let result = match edit {
            HeaderEdit::Remove(name) if headers.first(name).is_some() => {
                host::remove_request_header(name)
            }
            HeaderEdit::Remove(_) => Ok(()),
            HeaderEdit::Append(name, value) => host::add_request_header(name, value),
            HeaderEdit::SetPath(path) => host::set_request_header(":path", path),
        };
        if let Err(e) = result {
            log::warn!(
                "#{context_id} meshguard: cannot update request header (host status {})",
                e.0
            );
        }
    }
}

impl AuthzFilter {
    fn count(&self, decision: &Decision<'_>) {
        let outcome = if decision.is_allowed() {
            ALLOWED
        } else {
            DENIED
        };
        self.metrics.add(outcome, 1);
        if let Some(rule) = decision.policy {
            self.metrics
                .add_policy(rule, if decision.is_allowed() { 0 } else { 1 });
        }
        match decision.dry_run {
            DryRun::WouldDeny(rule) => {
                self.metrics.add(DRY_RUN_DENIED, 1);
                self.metrics.add_policy(rule, 2);
            }
            DryRun::WouldDenyNoAllowMatched => self.metrics.add(DRY_RUN_DENIED, 1),
            DryRun::None | DryRun::WouldAllow(_) => {}
        }
        if let Some(rule) = decision.audit {
            self.metrics.add(AUDITED, 1);
            self.metrics.add_policy(rule, 3);
        }
    }

    /// Answers a bad token like Envoy's `jwt_authn`: 401 (403 for a disallowed audience),
    /// the status text as body, and `www-authenticate: Bearer realm="<uri>", error="invalid_token"`.
    fn reject_token(&self, failure: JwtFailure, headers: Headers<'_>) -> Action {
        let text = |name: &str| {
            headers
                .first(name)
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_default()
        };
        let path = headers.first("x-envoy-original-path").map_or_else(
            || text(":path"),
            |p| String::from_utf8_lossy(p).into_owned(),
        );
        // Envoy `buildOriginalUri(headers, 256)`: only the path is cut to 256 characters.
        let mut path = path;
        if let Some((cut, _)) = path.char_indices().nth(256) {
            path.truncate(cut);
        }
        let uri = format!("{}://{}{}", text(":scheme"), text(":authority"), path);
        let challenge = format!("Bearer realm=\"{uri}\", error=\"invalid_token\"");
        log::info!(
            "#{} meshguard jwt_rejected reason={} status={} method={} path={}",
            self.context_id,
            failure.reason(),
            failure.http_status(),
            text(":method"),
            // the query string may carry the token: never logged
            text(":path").split('?').next().unwrap_or_default(),
        );
        let details = format!(
            "jwt_authn_access_denied{{{}}}",
            failure.message().replace(' ', "_")
        );
        if let Err(e) = host::send_local_response(
            failure.http_status(),
            &details,
            &[("www-authenticate", &challenge)],
            failure.message().as_bytes(),
        ) {
            log::error!(
                "meshguard: cannot send the {} reply (host status {})",
                failure.http_status(),
                e.0
            );
        }
        Action::Pause
    }

    /// Logs the decision: info for denies, dry-run denies and audits; debug for allows.
    fn report(&self, decision: &Decision<'_>, headers: Headers<'_>, connection: &LazyConnection) {
        let dry_run_denied = match decision.dry_run {
            DryRun::WouldDeny(id) => Some(id),
            DryRun::WouldDenyNoAllowMatched => Some("none"),
            DryRun::None | DryRun::WouldAllow(_) => None,
        };
        let interesting =
            !decision.is_allowed() || dry_run_denied.is_some() || decision.audit.is_some();
        let level = if interesting {
            log::Level::Info
        } else {
            log::Level::Debug
        };
        if !log::log_enabled!(level) {
            return;
        }
        let text = |name: &str| {
            headers
                .first(name)
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_default()
        };
        let principal = connection
            .peer()
            .and_then(|p| p.uri_san.as_deref())
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_else(|| "none".to_string());
        log::log!(
            level,
            "#{} meshguard decision={} dry_run_deny={} audit={} method={} path={} authority={} principal={}",
            self.context_id,
            decision.summary(),
            dry_run_denied.unwrap_or("-"),
            decision.audit.unwrap_or("-"),
            text(":method"),
            text(":path").split('?').next().unwrap_or_default(),
            text(":authority"),
            principal,
        );
    }
}

fn deny(headers: &[(&str, &str)]) -> Action {
    deny_with(headers, DENY_BODY)
}

fn deny_with(headers: &[(&str, &str)], body: &[u8]) -> Action {
    if let Err(e) = host::send_local_response(403, "meshguard_access_denied", headers, body) {
        log::error!("meshguard: cannot send the 403 reply (host status {})", e.0);
    }
    Action::Pause
}

/// `(source.ip, remote.ip)`: the physical peer (possibly unknown) and the derived client.
type Addresses = (Result<Option<IpAddr>, Unknown>, Option<IpAddr>);

/// Connection properties, each read from Envoy at most once and only when asked for.
#[derive(Default)]
struct LazyConnection {
    peer: OnceCell<Option<Peer>>,
    source: OnceCell<Addresses>,
    destination_ip: OnceCell<Option<IpAddr>>,
    destination_port: OnceCell<Option<u16>>,
    sni: OnceCell<Option<Vec<u8>>>,
}

fn read(path: &[&str]) -> Option<Vec<u8>> {
    host::property(path).ok().flatten()
}

fn read_u64(path: &[&str]) -> Option<u64> {
    let bytes: [u8; 8] = read(path)?.try_into().ok()?;
    Some(u64::from_le_bytes(bytes))
}

impl LazyConnection {
    /// `(source.ip, remote.ip)`; `source.ip` is `Err(Unknown)` when neither a real port nor
    /// the `meshguard.direct_peer` filter state identifies the physical peer.
    ///
    /// Envoy's `source.address` is the client address as the connection manager computed it:
    /// the XFF-derived address (reported with port 0) when X-Forwarded-For is trusted, else
    /// the TCP peer. So it is always `remote.ip`, and it is `source.ip` (the physical peer)
    /// only when it carries a real port. Otherwise the physical peer comes from the
    /// `meshguard.direct_peer` filter state, or is unknown (absent).
    fn addresses(&self) -> &Addresses {
        self.source.get_or_init(|| {
            let address = read(&["source", "address"]);
            let remote = address.as_deref().and_then(parse_socket_ip);
            let has_real_port = address
                .as_deref()
                .and_then(|a| {
                    a.iter()
                        .rposition(|c| *c == b':')
                        .map(|i| a.get(i + 1..).unwrap_or_default())
                })
                .is_some_and(|port| port != b"0" && !port.is_empty());
            let direct = if has_real_port {
                Ok(remote)
            } else {
                read(&["filter_state", DIRECT_PEER_STATE])
                    .as_deref()
                    .and_then(parse_socket_ip)
                    .map(Some)
                    .ok_or(Unknown)
            };
            (direct, remote)
        })
    }
}

impl Connection for LazyConnection {
    fn peer(&self) -> Option<&Peer> {
        self.peer
            .get_or_init(|| {
                // A URI SAN means a peer certificate (mTLS): one read for a mesh peer.
                let uri_san = read(&["connection", "uri_san_peer_certificate"]);
                if uri_san.is_none() {
                    let mtls = read(&["connection", "mtls"]).is_some_and(|b| b.first() == Some(&1));
                    if !mtls {
                        return None;
                    }
                }
                Some(Peer::lazy(uri_san, || {
                    (
                        read(&["connection", "dns_san_peer_certificate"]),
                        read(&["connection", "subject_peer_certificate"]),
                    )
                }))
            })
            .as_ref()
    }

    fn source_ip(&self) -> Result<Option<IpAddr>, Unknown> {
        self.addresses().0
    }

    fn remote_ip(&self) -> Option<IpAddr> {
        self.addresses().1
    }

    fn destination_ip(&self) -> Option<IpAddr> {
        *self.destination_ip.get_or_init(|| {
            read(&["destination", "address"])
                .as_deref()
                .and_then(parse_socket_ip)
        })
    }

    fn destination_port(&self) -> Option<u16> {
        *self
            .destination_port
            .get_or_init(|| read_u64(&["destination", "port"]).and_then(|p| u16::try_from(p).ok()))
    }

    fn sni(&self) -> Option<&[u8]> {
        self.sni
            .get_or_init(|| read(&["connection", "requested_server_name"]))
            .as_deref()
    }

    fn metadata(&self, filter: &str, key: &str) -> Option<MetadataValue> {
        read(&["metadata", "filter_metadata", filter, key]).map(MetadataValue::Raw)
    }
}
