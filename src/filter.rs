//! The proxy-wasm glue: Envoy calls in, the engine decides, meshguard answers.
//!
//! * `on_configure` loads the plugin configuration; any error is logged once (with the field
//!   path) and `false` is returned, so Envoy rejects the configuration (a static bootstrap
//!   fails to start, an xDS update is NACKed and the old configuration keeps serving).
//! * `on_http_request_headers` reads the header map once, lets the engine decide (connection
//!   properties are read lazily, only if a rule needs them), records the decision as filter
//!   state `wasm.meshguard.decision` when `decisionFilterState` is on, and on deny sends
//!   `403 RBAC: access denied` itself, as Envoy's RBAC filter does (`grpc-status: 7` for gRPC
//!   requests).
//!
//! Nothing here can panic on host input: every host call returns `Result`.

use std::cell::{Cell, OnceCell, RefCell};
use std::net::IpAddr;
use std::rc::Rc;
use std::time::{Duration, SystemTime};

use hashbrown::HashMap;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, Bytes, ContextType, GrpcStatusCode, Status};

use meshguard_core::authn::authenticator::{AuthnState, HeaderEdit};
use meshguard_core::authn::jwks_schedule::JwksSchedule;
use meshguard_core::authn::jwt::{JwksSource, KeySet};
use meshguard_core::authn::request_authentication::{Keys, RemoteJwks};
use meshguard_core::config_json::source::{ConfigSource, ReadError};
use meshguard_core::config_json::string_map::StringMap;
use meshguard_core::matchers::cidr::parse_socket_ip;
use meshguard_core::plugin::counters::{Counter, CounterSink, PolicyOutcome};
use meshguard_core::plugin::engine::Engine;
use meshguard_core::plugin::plugin_config::{
    self, LoadError, LoadReport, NodeInfo, WorkloadSource,
};
use meshguard_core::plugin::request_pipeline::{
    decide_request, PipelineRequest, Reply, RequestOutcome, DECISION_HEADER, DENY_BODY,
    DENY_DETAILS,
};
use meshguard_core::request::header_pairs;
use meshguard_core::request::json_value::{JsonObject, JsonValue};
use meshguard_core::request::peer::Peer;
use meshguard_core::request::request_view::{Connection, Headers, MetadataValue, Unknown};

use crate::host;
use crate::sdk_helpers::{inert_context_helpers, inert_http_helpers, inert_root_helpers};

const DECISION_PROPERTY: &str = "meshguard.decision";
/// Filter state a `set_filter_state` filter may set from `%DOWNSTREAM_DIRECT_REMOTE_ADDRESS%`
/// so `source.ip` stays the physical peer when X-Forwarded-For is trusted.
const DIRECT_PEER_STATE: &str = "meshguard.direct_peer";

proxy_wasm::main! {{
    host::install_logger_and_panic_hook();
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

/// Policies beyond this many share the `other` counters, bounding the metric count.
const MAX_POLICY_METRICS: usize = 256;

/// The tag carrying the policy in per-policy counter names, in Istio's `extraStatTags`
/// convention `<tag>=.=<value>;.;` (Istio's bootstrap extracts it with the regex
/// `(<tag>=\.=(.*?);\.;)`; the rest of the name, `meshguard_policy_<outcome>`, is the metric).
const POLICY_TAG: &str = "meshguard_policy";

/// The decision latency histogram (microseconds), recorded only with `decisionLatencyHistogram`.
const LATENCY_HISTOGRAM: &str = "meshguard_decision_latency_us";

/// Counts a configuration load or rejection (counters of their own, defined when first used).
fn count_config(name: &str) {
    if let Ok(id) = host::define_counter(name) {
        let _ = host::increment_counter(id, 1);
    }
}

/// Counts kept in the VM and flushed to Envoy once a second, so counting costs no host call
/// on the request path.
#[derive(Default)]
struct Metrics {
    ids: RefCell<Vec<Option<u32>>>,
    pending: [Cell<u64>; Counter::ALL.len()],
    /// Engine policy index -> slot in `policy_pending` / `policy_ids`.
    policy_slots: RefCell<Vec<usize>>,
    policy_ids: RefCell<Vec<[Option<u32>; 4]>>,
    policy_pending: RefCell<Vec<[u64; 4]>>,
    /// `meshguard_decision_latency_us`, when `decisionLatencyHistogram` is on.
    latency: Cell<Option<u32>>,
}

impl Metrics {
    fn define<'p>(&self, policies: impl ExactSizeIterator<Item = &'p str>) {
        let ids = Counter::ALL
            .iter()
            .map(|c| host::define_counter(c.name()).ok())
            .collect();
        *self.ids.borrow_mut() = ids;
        // Policy names are distinct; those beyond the cap share one `other` slot.
        let mut names: Vec<&str> = Vec::new();
        let mut slots = Vec::with_capacity(policies.len());
        for policy in policies {
            if names.len() < MAX_POLICY_METRICS {
                names.push(policy);
            } else if names.len() == MAX_POLICY_METRICS {
                names.push("other");
            }
            slots.push(names.len() - 1);
        }
        let define = |outcome: PolicyOutcome, policy: &str| {
            host::define_counter(&format!(
                "{POLICY_TAG}=.={policy};.;meshguard_policy_{}",
                outcome.name()
            ))
            .ok()
        };
        *self.policy_ids.borrow_mut() = names
            .iter()
            .map(|n| PolicyOutcome::ALL.map(|o| define(o, n)))
            .collect();
        *self.policy_pending.borrow_mut() = vec![[0; 4]; names.len()];
        *self.policy_slots.borrow_mut() = slots;
    }

    /// Defines the decision latency histogram when `on`; otherwise no decision is timed.
    fn define_latency(&self, on: bool) {
        self.latency.set(
            on.then(|| host::define_histogram(LATENCY_HISTOGRAM).ok())
                .flatten(),
        );
    }

    /// The clock reading a timed decision starts from (`None`: not timed).
    fn latency_start(&self) -> Option<u64> {
        self.latency.get().and_then(|_| host::now_nanos().ok())
    }

    /// Records the microseconds since `start`.
    fn record_latency(&self, start: Option<u64>) {
        if let (Some(id), Some(start)) = (self.latency.get(), start) {
            if let Ok(now) = host::now_nanos() {
                let _ = host::record_histogram(id, now.saturating_sub(start) / 1_000);
            }
        }
    }

    fn flush(&self) {
        let increment = |id: u32, n: u64| {
            let _ = host::increment_counter(id, n);
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

impl CounterSink for Metrics {
    fn add(&self, counter: Counter, n: u64) {
        if let Some(cell) = self.pending.get(counter.index()) {
            cell.set(cell.get().saturating_add(n));
        }
    }

    fn add_policy(&self, policy_index: u32, outcome: PolicyOutcome) {
        let slot = usize::try_from(policy_index)
            .ok()
            .and_then(|i| self.policy_slots.borrow().get(i).copied());
        let Some(slot) = slot else {
            return;
        };
        if let Some(count) = self
            .policy_pending
            .borrow_mut()
            .get_mut(slot)
            .and_then(|c| c.get_mut(outcome.index()))
        {
            *count = count.saturating_add(1);
        }
    }
}

/// The largest JWKS document accepted.
const MAX_JWKS_BYTES: usize = 256 * 1024;

struct FilterRoot {
    engine: Option<Rc<Engine>>,
    authn: Rc<RefCell<AuthnState>>,
    fetches: Vec<JwksFetch>,
    /// In-flight `dispatch_http_call` tokens -> index into `fetches`. `u32` values: the SDK's
    /// own callout map is a `HashMap<u32, u32>`, and one map type means one copy of its code.
    calls: HashMap<u32, u32>,
    metrics: Rc<Metrics>,
    /// Authentication counters already flushed: cache hits, misses, fetch ok, fetch failed.
    flushed_authn: [u64; 4],
}

/// One provider's remote JWKS and its fetch schedule.
struct JwksFetch {
    provider: usize,
    remote: RemoteJwks,
    schedule: JwksSchedule,
}

impl Context for FilterRoot {
    inert_context_helpers!();

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
        let Some(fetch) = self.fetches.get_mut(index as usize) else {
            return;
        };
        fetch.schedule.answered();
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
                fetch.schedule.succeeded(now, refresh);
            }
            Err(why) => {
                self.authn.borrow_mut().jwks_fetch_failed += 1;
                let retry = fetch.schedule.failed(now);
                log::warn!(
                    "meshguard: JWKS fetch from {} (cluster {}) failed: {why}; keeping the last \
                    good keys, retrying in {}s",
                    fetch.remote.uri,
                    fetch.remote.cluster,
                    retry
                );
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
            if !fetch.schedule.is_due(now) {
                continue;
            }
            let remote = fetch.remote.clone();
            let call = host::http_call(
                &remote.cluster,
                &[
                    (":method", "GET"),
                    (":path", &remote.path),
                    (":authority", &remote.authority),
                    ("accept", "application/json"),
                ],
                u32::try_from(remote.timeout_ms).unwrap_or(u32::MAX),
            );
            let Some(fetch) = self.fetches.get_mut(index) else {
                continue;
            };
            match call {
                Ok(token) => {
                    fetch.schedule.started();
                    self.calls
                        .insert(token, u32::try_from(index).unwrap_or(u32::MAX));
                }
                Err(status) => {
                    self.authn.borrow_mut().jwks_fetch_failed += 1;
                    let retry = fetch.schedule.failed(now);
                    log::warn!(
                        "meshguard: cannot start the JWKS fetch from {} through cluster {} (host \
                        status {}); is the cluster defined? retrying in {}s",
                        remote.uri,
                        remote.cluster,
                        status.0,
                        retry
                    );
                }
            }
        }
    }
}

/// Logs the loaded configuration: one line per configuration, not one per VM (Envoy loads it
/// in the main thread's VM and in every worker's; the first to record it logs at warn).
// Not inlined into `on_configure`: V8 compiles the whole module at load with its optimizing
// compiler, and the memory it leaves behind grows with the largest function (README, "What sets
// the memory at rest").
#[inline(never)]
fn log_loaded(report: &LoadReport, engine: &Engine, announced: &[u8]) {
    let source = match report.workload_source {
        WorkloadSource::Config => "plugin configuration",
        WorkloadSource::NodeMetadata => "Istio node metadata",
        WorkloadSource::Default => "default (no workload in configuration or node metadata)",
    };
    let level = match host::first_to_store(LOADED_KEY, announced) {
        Ok(false) => log::Level::Debug,
        Ok(true) | Err(_) => log::Level::Warn,
    };
    log::log!(
        level,
        "meshguard {}: configuration loaded: workload namespace={} labels={:?} (from \
        {source}), {} resources, {} apply, {} rules",
        env!("CARGO_PKG_VERSION"),
        report.workload.namespace(),
        report.workload.labels(),
        report.resources,
        report.applied_policies,
        engine.rule_count(),
    );
}

impl FilterRoot {
    /// Makes `engine` the one new requests use: fresh JWT state and JWKS fetches for its
    /// providers, its metrics defined, the tick started.
    #[inline(never)]
    fn install(&mut self, engine: Engine) {
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
                    schedule: JwksSchedule::new(),
                }),
                Keys::Inline(_) => None,
            })
            .collect();
        self.metrics.define(engine.policy_names());
        self.metrics
            .define_latency(engine.settings().decision_latency_histogram);
        self.flushed_authn = [0; 4];
        if let Err(e) = host::set_tick_period(1000) {
            log::error!(
                "meshguard: cannot set the tick period (host status {})",
                e.0
            );
        }
        self.engine = Some(Rc::new(engine));
    }
}

impl RootContext for FilterRoot {
    inert_root_helpers!();

    fn on_configure(&mut self, size: usize) -> bool {
        // Match the log crate's level to Envoy's, so disabled debug lines cost no host call.
        let _ = host::follow_host_log_level();
        // Read from Envoy a chunk at a time, never whole (the Wasm heap keeps its load peak for
        // good).
        let mut source = PluginConfiguration::new(size);
        let loaded = plugin_config::load_from(&mut source, &node_info());
        let announced = source.fingerprint.to_le_bytes();
        match loaded {
            Ok((engine, report)) => {
                log_loaded(&report, &engine, &announced);
                self.install(engine);
                count_config("meshguard_config_loaded");
                true
            }
            Err(LoadError::Invalid(e)) => {
                log::error!("meshguard: invalid configuration, rejected: {e}");
                count_config("meshguard_config_rejected");
                false
            }
            Err(LoadError::Unreadable(e)) => {
                log::error!("meshguard: cannot read the plugin configuration {e}");
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
            let counters = [
                Counter::JwtCacheHit,
                Counter::JwtCacheMiss,
                Counter::JwksFetchOk,
                Counter::JwksFetchFailed,
            ];
            for ((now, before), counter) in
                now.iter().zip(self.flushed_authn.iter_mut()).zip(counters)
            {
                self.metrics.add(counter, now.saturating_sub(*before));
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
            // A later repeated key wins, as it did with the `BTreeMap` inserts before.
            let mut labels = Vec::new();
            for (k, v) in header_pairs::decode(&bytes)? {
                labels.push((
                    String::from_utf8(k.to_vec()).ok()?,
                    String::from_utf8(v.to_vec()).ok()?,
                ));
            }
            Some(StringMap::with_last_of_repeated_keys(labels))
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

impl Context for AuthzFilter {
    inert_context_helpers!();
}

impl HttpContext for AuthzFilter {
    inert_http_helpers!();

    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let Some(engine) = self.engine.clone() else {
            // on_configure failed or never ran: Envoy should not get here; fail closed.
            log::error!(
                "#{} meshguard: no configuration loaded, denying",
                self.context_id
            );
            return deny();
        };
        let raw_headers = match host::header_map_bytes(host::MAP_REQUEST_HEADERS) {
            Ok(h) => h,
            Err(e) => {
                log::error!(
                    "#{} meshguard: cannot read request headers (host status {}), denying",
                    self.context_id,
                    e.0
                );
                return deny();
            }
        };
        let Some(headers) = header_pairs::decode(&raw_headers) else {
            log::error!(
                "#{} meshguard: malformed request header map from the host, denying",
                self.context_id
            );
            return deny();
        };
        let connection = LazyConnection::default();
        let side = engine
            .settings()
            .direction
            .side(|| read_u64(&["xds", "listener_direction"]));
        let request = PipelineRequest {
            headers: Headers::from_wire(&headers),
            connection: &connection,
            side,
            clock: &|| host::now_seconds().unwrap_or(0),
            jwt_authn_payload: &envoy_jwt_payload,
        };
        let started = self.metrics.latency_start();
        let outcome = decide_request(&engine, &request, &self.authn);
        self.metrics.record_latency(started);
        self.apply(outcome, engine.settings().decision_filter_state)
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
fn envoy_jwt_payload() -> Option<JsonObject> {
    let bytes = read(&[
        "metadata",
        "filter_metadata",
        "envoy.filters.http.jwt_authn",
        "payload",
    ])?;
    match header_pairs::decode_untyped(&bytes, MAX_CLAIM_DEPTH) {
        JsonValue::Object(payload) => Some(payload),
        _ => None,
    }
}

/// Shared-data key holding the fingerprint of the last configuration announced in the log.
const LOADED_KEY: &str = "meshguard.configuration_loaded";

/// The plugin configuration as Envoy holds it, read a slice at a time through the host, with
/// the FNV-1a 64 of its bytes taken as they are first read in order: which configuration was
/// announced (not a security boundary; a collision only turns a start-up line into a debug
/// line).
struct PluginConfiguration {
    size: usize,
    /// Bytes hashed so far (the text's first bytes).
    hashed: usize,
    fingerprint: u64,
}

impl PluginConfiguration {
    fn new(size: usize) -> PluginConfiguration {
        PluginConfiguration {
            size,
            hashed: 0,
            fingerprint: 0xcbf2_9ce4_8422_2325,
        }
    }
}

impl ConfigSource for PluginConfiguration {
    fn size(&self) -> usize {
        self.size
    }

    fn read(&mut self, start: usize, max: usize) -> Result<Vec<u8>, ReadError> {
        let bytes = host::plugin_configuration_bytes(start, max)
            .map_err(|e| ReadError::new(start, format!("host status {}", e.0)))?;
        // The bytes not hashed yet, when this read reaches them (the text is read in order
        // from its start at least once before a load succeeds).
        let new = self
            .hashed
            .checked_sub(start)
            .and_then(|skip| bytes.get(skip..))
            .unwrap_or_default();
        self.fingerprint = new.iter().fold(self.fingerprint, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
        self.hashed += new.len();
        Ok(bytes)
    }
}

/// Nesting accepted when decoding claims from metadata.
const MAX_CLAIM_DEPTH: u8 = 16;

impl AuthzFilter {
    /// Applies the pipeline's outcome: filter state, log line, counters, then the reply or the
    /// header edits.
    fn apply(&mut self, outcome: RequestOutcome<'_>, filter_state: bool) -> Action {
        let id = self.context_id;
        if let (true, Some(state)) = (filter_state, &outcome.decision_state) {
            if let Err(e) = host::set_property(DECISION_PROPERTY, state.as_bytes()) {
                log::debug!(
                    "#{id} meshguard: cannot set filter state (host status {})",
                    e.0
                );
            }
        }
        // Dry-run and AUDIT results as filter state `wasm.<namespace>.<key>`, standing for Envoy
        // RBAC's dynamic metadata (proxy-wasm cannot write dynamic metadata); no host call when
        // no such policy applies.
        for (name, value) in outcome.rbac_report.properties() {
            if let Err(e) = host::set_property(name, value.as_bytes()) {
                log::debug!("#{id} meshguard: cannot set {name} (host status {})", e.0);
            }
        }
        if let Some((level, line)) = &outcome.log {
            log::log!(*level, "#{id} {line}");
        }
        outcome.counters.apply(&*self.metrics);
        if let Some(reply) = &outcome.reply {
            return send_reply(reply);
        }
        for edit in &outcome.header_edits {
            let result = match edit {
                HeaderEdit::Remove(name) => host::remove_request_header(name),
                HeaderEdit::Append(name, value) => host::add_request_header(name, value),
                HeaderEdit::SetPath(path) => host::set_request_header(":path", path),
            };
            if let Err(e) = result {
                log::warn!(
                    "#{id} meshguard: cannot update request header (host status {})",
                    e.0
                );
            }
        }
        self.decision_header = outcome.response_decision_header;
        Action::Continue
    }
}

/// Sends meshguard's own reply and stops the request.
fn send_reply(reply: &Reply) -> Action {
    let headers: Vec<(&str, &str)> = reply
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    if let Err(e) = host::send_local_response(
        reply.status,
        &reply.details,
        &headers,
        reply.body.as_bytes(),
    ) {
        log::error!(
            "meshguard: cannot send the {} reply (host status {})",
            reply.status,
            e.0
        );
    }
    Action::Pause
}

/// Fails closed when the filter cannot run the pipeline (no configuration, no headers).
fn deny() -> Action {
    send_reply(&Reply {
        status: 403,
        details: DENY_DETAILS.to_string(),
        headers: Vec::new(),
        body: DENY_BODY.to_string(),
    })
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
