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

use std::cell::OnceCell;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel};

use crate::config::{self, NodeInfo, WorkloadSource};
use crate::engine::{Decision, DryRun, Engine};
use crate::host;
use crate::identity::Peer;
use crate::ip::parse_socket_ip;
use crate::pairs;
use crate::request::{Connection, Headers, MetadataValue};

const DENY_BODY: &[u8] = b"RBAC: access denied";
const DECISION_PROPERTY: &str = "meshguard.decision";
const DECISION_HEADER: &str = "x-meshguard-decision";
/// Filter state a `set_filter_state` filter may set from `%DOWNSTREAM_DIRECT_REMOTE_ADDRESS%`
/// so `source.ip` stays the physical peer when X-Forwarded-For is trusted.
const DIRECT_PEER_STATE: &str = "meshguard.direct_peer";

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(FilterRoot { engine: None }) });
}}

struct FilterRoot {
    engine: Option<Rc<Engine>>,
}

impl Context for FilterRoot {}

impl RootContext for FilterRoot {
    fn on_configure(&mut self, _size: usize) -> bool {
        // Match the log crate's level to Envoy's, so disabled debug lines cost no host call.
        if let Ok(level) = proxy_wasm::hostcalls::get_log_level() {
            proxy_wasm::set_log_level(level);
        }
        let bytes = match proxy_wasm::hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX) {
            Ok(bytes) => bytes.unwrap_or_default(),
            Err(status) => {
                log::error!("meshguard: cannot read the plugin configuration (host status {status:?})");
                return false;
            }
        };
        match config::load(&bytes, &node_info()) {
            Ok((engine, report)) => {
                let source = match report.workload_source {
                    WorkloadSource::Config => "plugin configuration",
                    WorkloadSource::NodeMetadata => "Istio node metadata",
                    WorkloadSource::Default => "default (no workload in configuration or node metadata)",
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
                self.engine = Some(Rc::new(engine));
                true
            }
            Err(e) => {
                log::error!("meshguard: invalid configuration, rejected: {e}");
                false
            }
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(AuthzFilter {
            context_id,
            engine: self.engine.clone(),
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
                .map(|(k, v)| Some((String::from_utf8(k.to_vec()).ok()?, String::from_utf8(v.to_vec()).ok()?)))
                .collect::<Option<BTreeMap<String, String>>>()
        });
    NodeInfo { namespace, labels }
}

struct AuthzFilter {
    context_id: u32,
    engine: Option<Rc<Engine>>,
    /// The decision text to add to the response, when `decisionHeader` is on.
    decision_header: Option<String>,
}

impl Context for AuthzFilter {}

impl HttpContext for AuthzFilter {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let Some(engine) = self.engine.clone() else {
            // on_configure failed or never ran: Envoy should not get here; fail closed.
            log::error!("#{} meshguard: no configuration loaded, denying", self.context_id);
            return deny(&[]);
        };
        let headers = match host::request_headers() {
            Ok(h) => h,
            Err(e) => {
                log::error!("#{} meshguard: cannot read request headers (host status {}), denying", self.context_id, e.0);
                return deny(&[]);
            }
        };
        let view = Headers::new(&headers);
        let connection = LazyConnection::default();
        let decision = engine.decide(view, &connection);
        let summary = decision.summary();
        if let Err(e) = host::set_property(DECISION_PROPERTY, summary.as_bytes()) {
            log::debug!("#{} meshguard: cannot set filter state (host status {})", self.context_id, e.0);
        }
        self.report(&decision, view, &connection);
        if decision.is_allowed() {
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
                log::debug!("#{} meshguard: cannot add the decision header (host status {})", self.context_id, e.0);
            }
        }
        Action::Continue
    }
}

impl AuthzFilter {
    /// Logs the decision: info for denies, dry-run denies and audits; debug for allows.
    fn report(&self, decision: &Decision<'_>, headers: Headers<'_>, connection: &LazyConnection) {
        let dry_run_denied = match decision.dry_run {
            DryRun::WouldDeny(id) => Some(id),
            DryRun::WouldDenyNoAllowMatched => Some("none"),
            DryRun::None | DryRun::WouldAllow(_) => None,
        };
        let interesting = !decision.is_allowed() || dry_run_denied.is_some() || decision.audit.is_some();
        let level = if interesting { log::Level::Info } else { log::Level::Debug };
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
            text(":path"),
            text(":authority"),
            principal,
        );
    }
}

fn deny(headers: &[(&str, &str)]) -> Action {
    if let Err(e) = host::send_local_response(403, "meshguard_access_denied", headers, DENY_BODY) {
        log::error!("meshguard: cannot send the 403 reply (host status {})", e.0);
    }
    Action::Pause
}

/// Connection properties, each read from Envoy at most once and only when asked for.
#[derive(Default)]
struct LazyConnection {
    peer: OnceCell<Option<Peer>>,
    source: OnceCell<(Option<IpAddr>, Option<IpAddr>)>,
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
    /// `(source.ip, remote.ip)`.
    ///
    /// Envoy's `source.address` is the client address as the connection manager computed it:
    /// the XFF-derived address (reported with port 0) when X-Forwarded-For is trusted, else
    /// the TCP peer. So it is always `remote.ip`, and it is `source.ip` (the physical peer)
    /// only when it carries a real port. Otherwise the physical peer comes from the
    /// `meshguard.direct_peer` filter state, or is unknown (absent).
    fn addresses(&self) -> &(Option<IpAddr>, Option<IpAddr>) {
        self.source.get_or_init(|| {
            let address = read(&["source", "address"]);
            let remote = address.as_deref().and_then(parse_socket_ip);
            let has_real_port = address
                .as_deref()
                .and_then(|a| a.iter().rposition(|c| *c == b':').map(|i| a.get(i + 1..).unwrap_or_default()))
                .is_some_and(|port| port != b"0" && !port.is_empty());
            let direct = if has_real_port {
                remote
            } else {
                read(&["filter_state", DIRECT_PEER_STATE])
                    .as_deref()
                    .and_then(parse_socket_ip)
            };
            (direct, remote)
        })
    }
}

impl Connection for LazyConnection {
    fn peer(&self) -> Option<&Peer> {
        self.peer
            .get_or_init(|| {
                let mtls = read(&["connection", "mtls"]).is_some_and(|b| b.first() == Some(&1));
                if !mtls {
                    return None;
                }
                Some(Peer {
                    uri_san: read(&["connection", "uri_san_peer_certificate"]),
                    dns_san: read(&["connection", "dns_san_peer_certificate"]),
                    subject: read(&["connection", "subject_peer_certificate"]),
                })
            })
            .as_ref()
    }

    fn source_ip(&self) -> Option<IpAddr> {
        self.addresses().0
    }

    fn remote_ip(&self) -> Option<IpAddr> {
        self.addresses().1
    }

    fn destination_ip(&self) -> Option<IpAddr> {
        *self
            .destination_ip
            .get_or_init(|| read(&["destination", "address"]).as_deref().and_then(parse_socket_ip))
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
