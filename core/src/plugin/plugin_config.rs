//! The plugin configuration contract (the JSON an Envoy `StringValue` or an Istio
//! `WasmPlugin.pluginConfig` carries) and its loading into an [`Engine`].
//!
//! ```json
//! {"workload": {"namespace": "ns1", "labels": {"app": "b"}},
//!  "rootNamespace": "istio-system", "trustDomain": "cluster.local", "trustDomainAliases": [],
//!  "decisionHeader": false, "decisionFilterState": false,
//!  "denyResponse": {"status": 403, "body": "...", "headers": {}}, "jwksClusters": {},
//!  "jwksRefreshSeconds": 1200, "jwtCacheSize": 100,
//!  "resources": [{"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy", ...}]}
//! ```
//!
//! `resources` holds Kubernetes objects as `kubectl get -o yaml` prints them (a `v1` `List` is
//! flattened); object metadata other than name, namespace and annotations, and `status`, are
//! ignored. Every other unknown field is an error, and every error names the field it is about,
//! so Envoy refuses the configuration with one clear log line.

use crate::config_json::string_map::StringMap;
use std::borrow::Cow;

use crate::authn::authenticator::{Authenticator, DEFAULT_CACHE_CAPACITY};
use crate::authn::request_authentication;
use crate::authorization::authorization_policy::{self, CompiledPolicy, CompiledRule};
use crate::authorization::deny_response::{DenyResponse, RawDenyResponse};
use crate::authorization::legacy_rbac::LegacyRbac;
use crate::authorization::rule_id::RuleId;
use crate::authorization::security_rule::{self, InventoryEntry, ServiceAccounts};
use crate::config_json::outline::{outline, Outline, Span};
use crate::config_json::raw::{parse_json, raw_items, raw_members, RawError, RawMembers};
use crate::config_json::reader::{check_keys, FromJson, Json};
#[cfg(test)]
use crate::config_json::source::CHUNK as CHUNK_SIZE;
use crate::config_json::source::{read_all, ConfigSource, Cursor, ReadError, SliceSource};
use crate::egress::service_entry;
use crate::egress::sidecar::{self, Egress, OutboundMode};
use crate::error::{ConfigError, ConfigPath, ResourcePath};
use crate::matchers::identity_match::TrustBundle;
use crate::matchers::json_path;
use crate::mtls::peer_authentication::{self, MtlsPolicy};
use crate::plugin::engine::Engine;
pub use crate::plugin::settings::{Direction, JwtSource, Settings};
use crate::targeting::workload::Workload;

/// The top-level fields, `resources` last (kept as JSON text and parsed one object at a time,
/// so no document-wide value tree is ever built: Wasm memory does not shrink after a peak).
const CONFIG_FIELDS: [&str; 17] = [
    "workload",
    "rootNamespace",
    "trustDomain",
    "trustDomainAliases",
    "decisionHeader",
    "decisionLatencyHistogram",
    "decisionFilterState",
    "jwksClusters",
    "jwksRefreshSeconds",
    "jwtCacheSize",
    "jwtSource",
    "serviceAccounts",
    "inventory",
    "outboundTrafficPolicy",
    "direction",
    "denyResponse",
    "resources",
];

/// The top-level configuration but `resources`.
#[derive(Debug, Default)]
struct RawConfig {
    workload: Option<RawWorkload>,
    root_namespace: Option<String>,
    trust_domain: Option<String>,
    trust_domain_aliases: Vec<String>,
    decision_header: bool,
    /// Record each decision's duration in the histogram `meshguard_decision_latency_us`
    /// (default off: two clock reads and a histogram record per request, README Observability).
    decision_latency_histogram: bool,
    /// Record the decision as filter state `wasm.meshguard.decision` (for access logs).
    decision_filter_state: bool,
    /// Envoy cluster per `jwksUri`, overriding Istio's `outbound|<port>||<host>` convention.
    jwks_clusters: StringMap,
    /// Seconds between JWKS refreshes (default 1200, Istio's 20 minutes).
    jwks_refresh_seconds: Option<u64>,
    /// Verified-token cache size per worker (default 100, Envoy's `jwt_cache_size`; 0 disables).
    jwt_cache_size: Option<usize>,
    /// Who verifies JWTs: meshguard itself (`filter`, default) or Istio's `jwt_authn` running
    /// before meshguard (`envoyJwtAuthn`, WasmPlugin phase AUTHZ), whose verified payload is
    /// read from dynamic metadata.
    jwt_source: JwtSource,
    /// Service accounts of services, `"<namespace>/<service>": ["<sa>"]`, for SecurityRule
    /// sources (default: the service name).
    service_accounts: ServiceAccounts,
    /// Pods of the mesh, for label-selected SecurityRule sources.
    inventory: Vec<InventoryEntry>,
    /// The mesh's `outboundTrafficPolicy.mode` (default `ALLOW_ANY`, as Istio's).
    outbound_traffic_policy: Option<OutboundMode>,
    /// Which side of the workload this filter runs on: `inbound`, `outbound`, or `auto`
    /// (Envoy's listener direction; the default).
    direction: Direction,
    /// The reply to an authorization denial that no annotated DENY policy decided.
    deny_response: Option<RawDenyResponse>,
}

impl FromJson for RawConfig {
    // Field by field on purpose (see below), which this lint would undo.
    #[allow(clippy::field_reassign_with_default)]
    fn from_json(value: &Json<'_>) -> Result<RawConfig, ConfigError> {
        let f = value.fields("RawConfig", &CONFIG_FIELDS)?;
        let flag = |name| f.or_default(name, Json::boolean);
        // Filled field by field: a `?` then drops one struct, not the fields read so far (in
        // a struct literal each `?` drops its own set, and the function grows with their count;
        // README, "What sets the memory at rest").
        let mut raw = RawConfig::default();
        raw.workload = f.optional("workload", RawWorkload::from_json)?;
        raw.root_namespace = f.optional("rootNamespace", Json::string)?;
        raw.trust_domain = f.optional("trustDomain", Json::string)?;
        raw.trust_domain_aliases = f.or_default("trustDomainAliases", Json::strings)?;
        raw.decision_header = flag("decisionHeader")?;
        raw.decision_latency_histogram = flag("decisionLatencyHistogram")?;
        raw.decision_filter_state = flag("decisionFilterState")?;
        raw.jwks_clusters = f.or_default("jwksClusters", Json::string_map)?;
        raw.jwks_refresh_seconds = f.optional("jwksRefreshSeconds", Json::u64)?;
        raw.jwt_cache_size = f.optional("jwtCacheSize", Json::usize)?;
        raw.jwt_source = f.or_default("jwtSource", JwtSource::from_json)?;
        raw.service_accounts = f.or_default("serviceAccounts", |v| {
            v.entries(Json::strings).map(ServiceAccounts::new)
        })?;
        raw.inventory = f.or_default("inventory", |v| v.list(InventoryEntry::from_json))?;
        raw.outbound_traffic_policy =
            f.optional("outboundTrafficPolicy", OutboundMode::from_json)?;
        raw.direction = f.or_default("direction", Direction::from_json)?;
        raw.deny_response = f.optional("denyResponse", RawDenyResponse::from_json)?;
        Ok(raw)
    }
}

#[derive(Debug)]
struct RawWorkload {
    namespace: String,
    labels: StringMap,
    /// Service FQDNs; default `<app label>.<namespace>.svc.cluster.local`.
    services: Option<Vec<String>>,
}

impl FromJson for RawWorkload {
    fn from_json(value: &Json<'_>) -> Result<RawWorkload, ConfigError> {
        let f = value.fields("RawWorkload", &["namespace", "labels", "services"])?;
        Ok(RawWorkload {
            namespace: f.required("namespace", Json::string)?,
            labels: f.or_default("labels", Json::string_map)?,
            services: f.optional("services", Json::strings)?,
        })
    }
}

/// Object metadata: server-set fields (uid, resourceVersion, managedFields, ...) are ignored
/// (only checked to be JSON).
#[derive(Debug)]
struct RawMetadata {
    name: String,
    namespace: Option<String>,
    creation_timestamp: Option<String>,
    annotations: StringMap,
}

const METADATA_FIELDS: [&str; 4] = ["name", "namespace", "creationTimestamp", "annotations"];

impl RawMetadata {
    #[inline(never)]
    fn parse(raw: &str) -> Result<RawMetadata, ConfigError> {
        let members = raw_members(raw, "RawMetadata").map_err(|e| raw_error(raw.as_bytes(), e))?;
        members.check(&METADATA_FIELDS, false)?;
        let json = parse_members(&members, |key| METADATA_FIELDS.contains(&key))?;
        let f = json.fields("RawMetadata", &METADATA_FIELDS)?;
        Ok(RawMetadata {
            name: f.required("name", Json::string)?,
            namespace: f.optional("namespace", Json::string)?,
            creation_timestamp: f.optional("creationTimestamp", Json::string)?,
            annotations: f.or_default("annotations", Json::string_map)?,
        })
    }
}

/// Where the workload identity for targeting came from, for the start-up log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkloadSource {
    Config,
    NodeMetadata,
    Default,
}

/// The local workload as Istio's node metadata describes it (`NAMESPACE`, `LABELS`).
#[derive(Debug, Clone, Default)]
pub struct NodeInfo {
    pub namespace: Option<String>,
    pub labels: Option<StringMap>,
}

/// Istio's `PILOT_JWT_PUB_KEY_REFRESH_INTERVAL` default.
const DEFAULT_JWKS_REFRESH_SECONDS: u64 = 20 * 60;

/// What loading found, for the start-up log line.
#[derive(Debug, Clone)]
pub struct LoadReport {
    pub workload: Workload,
    pub workload_source: WorkloadSource,
    pub resources: usize,
    pub applied_policies: usize,
}

const DEFAULT_ROOT_NAMESPACE: &str = "istio-system";
const DEFAULT_TRUST_DOMAIN: &str = "cluster.local";
const DEFAULT_NAMESPACE: &str = "default";
/// Upper bound on the rules compiled for one workload (memory per VM stays bounded).
pub const MAX_RULES: usize = 100_000;

/// Parses the configuration text into its top-level members, naming the failing field (found
/// from the error's position, see [`json_path`]). The text is checked as UTF-8 first and then
/// read as a `str`, like every other document here: one `serde_json` reader in the module
/// instead of two (JSON outside strings is ASCII and inside strings must be UTF-8, so this
/// accepts and rejects the same texts).
fn parse_config(text: &[u8]) -> Result<RawMembers<'_>, ConfigError> {
    match std::str::from_utf8(text) {
        Ok(s) => raw_members(s, "RawConfig").map_err(|e| raw_error(s.as_bytes(), e)),
        Err(e) => Err(ConfigError::new(
            json_path::path_at(text, e.valid_up_to()),
            format!(
                "configuration is not valid JSON: invalid UTF-8 at byte {}",
                e.valid_up_to()
            ),
        )),
    }
}

/// The [`ConfigError`] for a `serde_json` error in `text`. A syntax error is named from its
/// position (see [`json_path`]); any other error is about the whole text (the documents parsed
/// here are objects of raw members, lists of raw values and [`Json`] trees, which can only be
/// of the wrong type as a whole).
fn json_error(text: &[u8], e: &serde_json::Error) -> ConfigError {
    if e.is_syntax() || e.is_eof() {
        let path = json_path::offset_of(text, e.line(), e.column())
            .map(|offset| json_path::path_at(text, offset))
            .unwrap_or_default();
        ConfigError::new(path, format!("configuration is not valid JSON: {e}"))
    } else {
        let message = e.to_string();
        let position = format!(" at line {} column {}", e.line(), e.column());
        let reason = message.strip_suffix(&position).unwrap_or(&message);
        ConfigError::new(ConfigPath::root(), reason)
    }
}

/// A refusal of the raw reader as [`json_error`] words serde_json's: a type error without
/// its position, at the root of the text.
fn raw_error(text: &[u8], e: RawError) -> ConfigError {
    match e {
        RawError::Json(e) => json_error(text, &e),
        RawError::Type(reason) => ConfigError::new(ConfigPath::root(), reason),
    }
}

/// Parses one raw value of the configuration. Its text is already known to be UTF-8 (it is a
/// `str`), so it is read as one: strings are not validated again.
fn parse(raw: &str) -> Result<Json<'_>, ConfigError> {
    parse_json(raw).map_err(|e| json_error(raw.as_bytes(), &e))
}

/// The elements of one raw list of the configuration, each as text.
fn parse_items(raw: &str) -> Result<Vec<&str>, ConfigError> {
    raw_items(raw).map_err(|e| raw_error(raw.as_bytes(), e))
}

/// The members of `members` whose key passes `keep`, parsed into one object.
fn parse_members<'a>(
    members: &RawMembers<'a>,
    keep: impl Fn(&str) -> bool,
) -> Result<Json<'a>, ConfigError> {
    let mut out = Vec::new();
    for (key, raw) in members.iter().filter(|(k, _)| keep(k)) {
        let value = parse(raw).map_err(|e| e.within(ConfigPath::root().field(key.to_string())))?;
        out.push((key.clone(), value));
    }
    Ok(Json::Object(out))
}

/// Reads a resource's `spec` as `T`; errors are relative to the spec.
fn read_spec<T: FromJson>(spec: Option<&str>) -> Result<T, ConfigError> {
    match spec {
        Some(raw) => T::from_json(&parse(raw)?),
        // An object without `spec` is the empty spec (for an AuthorizationPolicy: ALLOW, no
        // rules, which denies everything), as Kubernetes and istiod treat it.
        None => T::from_json(&Json::Object(Vec::new())),
    }
}

/// Parses and compiles a plugin configuration held in memory (the CLI, the tests): read
/// through [`load_from`] as the filter reads it. An empty configuration means no policies.
pub fn load(bytes: &[u8], node: &NodeInfo) -> Result<(Engine, LoadReport), ConfigError> {
    load_from(&mut SliceSource::new(bytes), node).map_err(|e| match e {
        LoadError::Invalid(e) => e,
        // A slice is always read whole; kept for completeness.
        LoadError::Unreadable(e) => ConfigError::new(
            ConfigPath::root(),
            format!("cannot read the configuration {e}"),
        ),
    })
}

/// Why a configuration was not loaded.
#[derive(Debug, Clone, PartialEq)]
pub enum LoadError {
    /// The configuration is wrong (one error, naming the field).
    Invalid(ConfigError),
    /// The text could not be read from its source (a host error, or cut short).
    Unreadable(ReadError),
}

impl From<ConfigError> for LoadError {
    fn from(e: ConfigError) -> LoadError {
        LoadError::Invalid(e)
    }
}

impl From<ReadError> for LoadError {
    fn from(e: ReadError) -> LoadError {
        LoadError::Unreadable(e)
    }
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::Invalid(e) => e.fmt(f),
            LoadError::Unreadable(e) => write!(f, "cannot read the configuration {e}"),
        }
    }
}

/// Parses and compiles the configuration that `source` reads a chunk at a time, never holding
/// the whole text: one pass outlines it (where each top-level member and each resource is, the
/// whole text checked as JSON and UTF-8), then each member and each resource is read and parsed
/// from its own bytes, compiled, and freed before the next. A text the outline does not follow
/// (not JSON, or unusual: see `config_json::outline`) is read whole and parsed as one document,
/// so its error is the one it always was. Results and errors are those of parsing the whole
/// text.
pub fn load_from(
    source: &mut dyn ConfigSource,
    node: &NodeInfo,
) -> Result<(Engine, LoadReport), LoadError> {
    let mut cursor = Cursor::new(source);
    let compiled = match outline(&mut cursor)? {
        Some(outline) => compile(Text::Outlined(cursor, outline), node)?,
        None => {
            drop(cursor);
            let bytes = read_all(source)?;
            // Freed once every resource is compiled, before the engine is built: the engine
            // reuses its memory instead of growing the heap above it.
            compile(Text::Whole(&bytes), node)?
        }
    };
    Ok(compiled.build())
}

/// A configuration whose resources are compiled, owning nothing of its text: what
/// [`Compiled::build`] turns into the engine.
struct Compiled {
    applied: Vec<CompiledPolicy>,
    authenticator: Authenticator,
    settings: Settings,
    mtls: MtlsPolicy,
    security_layer: Option<Vec<CompiledRule>>,
    egress: Option<Egress>,
    report: LoadReport,
}

impl Compiled {
    /// The engine: rule sets at their final size and their indexes.
    fn build(self) -> (Engine, LoadReport) {
        let engine = Engine::new(self.applied, self.authenticator, self.settings)
            .with_mtls(self.mtls)
            .with_security_layer(self.security_layer)
            .with_egress(self.egress, self.report.workload.namespace());
        (engine, self.report)
    }
}

/// The configuration text, as [`compile`] reads it.
enum Text<'t, 's> {
    /// Whole in memory, parsed as one document whose members stay raw.
    Whole(&'t [u8]),
    /// With its source: each member and resource read where the outline puts it.
    Outlined(Cursor<'s>, Outline),
}

/// The `resources` of a configuration, not yet parsed.
enum Resources<'t, 's> {
    /// The raw elements of the whole text's list.
    Raw(Vec<&'t str>),
    /// Where each element is.
    Spans(Cursor<'s>, Vec<Span>),
}

impl Resources<'_, '_> {
    fn len(&self) -> usize {
        match self {
            Resources::Raw(list) => list.len(),
            Resources::Spans(_, spans) => spans.len(),
        }
    }

    /// Calls `f` with each resource's index and text, in order (the text is freed after).
    fn each(
        self,
        f: &mut dyn FnMut(usize, &str) -> Result<(), ConfigError>,
    ) -> Result<(), LoadError> {
        match self {
            Resources::Raw(list) => {
                for (i, value) in list.iter().enumerate() {
                    f(i, value)?;
                }
            }
            Resources::Spans(mut cursor, spans) => {
                for (i, span) in spans.iter().enumerate() {
                    let text = span_text(&mut cursor, *span, || {
                        ConfigPath::root().field("resources").index(i)
                    })?;
                    f(i, text)?;
                }
            }
        }
        Ok(())
    }
}

/// The text of `span`, UTF-8 as the outline checked (an error at `path` otherwise).
fn span_text<'c>(
    cursor: &'c mut Cursor<'_>,
    span: Span,
    path: impl Fn() -> ConfigPath,
) -> Result<&'c str, LoadError> {
    let bytes = cursor.bytes(span.start, span.end)?;
    std::str::from_utf8(bytes).map_err(|e| {
        LoadError::Invalid(ConfigError::new(
            path(),
            format!("configuration is not valid JSON: invalid UTF-8 ({e})"),
        ))
    })
}

/// The top-level members of a whole text: their keys checked, all but `resources` read into
/// the configuration's settings; the resources left raw.
#[inline(never)]
fn read_whole<'t, 's>(bytes: &'t [u8]) -> Result<(RawConfig, Resources<'t, 's>), ConfigError> {
    let trimmed = bytes.iter().filter(|b| !b.is_ascii_whitespace()).count();
    let text: &[u8] = if trimmed == 0 { b"{}" } else { bytes };
    let top = parse_config(text)?;
    top.check(&CONFIG_FIELDS, true)?;
    let raw = RawConfig::from_json(&parse_members(&top, |key| key != "resources")?)?;
    let resources: Vec<&str> = match top.get("resources") {
        Some(list) => parse_items(list).map_err(|e| e.within("resources"))?,
        None => Vec::new(),
    };
    Ok((raw, Resources::Raw(resources)))
}

/// The top-level members of an outlined text, read as [`read_whole`] reads them: each member
/// but `resources` read from its own bytes and parsed from them (so an error in it has the
/// line and column it had in the member's raw text).
#[inline(never)]
fn read_outlined<'t, 's>(
    mut cursor: Cursor<'s>,
    outline: Outline,
) -> Result<(RawConfig, Resources<'t, 's>), LoadError> {
    check_keys(
        &mut outline.members.iter().map(|(key, _)| key.as_str()),
        &CONFIG_FIELDS,
        true,
    )?;
    let mut texts = Vec::new();
    for (key, span) in outline.members.iter().filter(|(key, _)| key != "resources") {
        let text = span_text(&mut cursor, *span, || ConfigPath::root().field(key.clone()))?;
        texts.push((key.as_str(), text.to_string()));
    }
    let mut members = Vec::with_capacity(texts.len());
    for (key, text) in &texts {
        let value = parse(text).map_err(|e| e.within(ConfigPath::root().field(key.to_string())))?;
        members.push((Cow::Borrowed(*key), value));
    }
    let raw = RawConfig::from_json(&Json::Object(members))?;
    Ok((raw, Resources::Spans(cursor, outline.resources)))
}

/// Parses the configuration and compiles its resources, one at a time: a resource's text,
/// metadata and document are freed as soon as it is compiled.
// Its steps are functions of their own, never inlined here: V8 compiles the whole module at load
// with its optimizing compiler, and the memory it leaves behind grows with the largest function
// (README, "What sets the memory at rest").
fn compile(text: Text<'_, '_>, node: &NodeInfo) -> Result<Compiled, LoadError> {
    let (mut raw, resources) = match text {
        Text::Whole(bytes) => read_whole(bytes)?,
        Text::Outlined(cursor, outline) => read_outlined(cursor, outline)?,
    };
    let (workload, workload_source) = resolve_workload(raw.workload.take(), node)?;
    let root_namespace = non_empty(
        raw.root_namespace.take(),
        "rootNamespace",
        DEFAULT_ROOT_NAMESPACE,
    )?;
    let trust = trust_bundle(raw.trust_domain.take(), &raw.trust_domain_aliases)?;
    let scope = Scope {
        workload: &workload,
        root_namespace: &root_namespace,
        trust: &trust,
        jwks_clusters: &raw.jwks_clusters,
        service_accounts: &raw.service_accounts,
        inventory: &raw.inventory,
    };
    let (gathered, resource_count) = gather(resources, &scope)?;
    let origin = Origin {
        workload,
        workload_source,
        root_namespace,
        trust,
        resource_count,
    };
    Ok(gathered.finish(origin, &mut raw)?)
}

/// The workload the policies are selected for: the configuration's `workload`, else Istio's
/// node metadata, else `default` with no labels.
#[inline(never)]
fn resolve_workload(
    workload: Option<RawWorkload>,
    node: &NodeInfo,
) -> Result<(Workload, WorkloadSource), ConfigError> {
    Ok(match workload {
        Some(w) if w.namespace.is_empty() => {
            return Err(ConfigError::new(
                ConfigPath::root().field("workload").field("namespace"),
                "must not be empty",
            ));
        }
        Some(w) => {
            let workload = Workload::new(w.namespace, w.labels);
            let workload = match w.services {
                Some(s) => workload.with_services(s),
                None => workload,
            };
            (workload, WorkloadSource::Config)
        }
        None => match &node.namespace {
            Some(ns) => (
                Workload::new(ns.clone(), node.labels.clone().unwrap_or_default()),
                WorkloadSource::NodeMetadata,
            ),
            None => (
                Workload::new(DEFAULT_NAMESPACE.to_string(), StringMap::new()),
                WorkloadSource::Default,
            ),
        },
    })
}

/// `trustDomain` (default `cluster.local`) and `trustDomainAliases`, none of them empty.
#[inline(never)]
fn trust_bundle(
    trust_domain: Option<String>,
    aliases: &[String],
) -> Result<TrustBundle, ConfigError> {
    let trust_domain = non_empty(trust_domain, "trustDomain", DEFAULT_TRUST_DOMAIN)?;
    for (i, alias) in aliases.iter().enumerate() {
        if alias.is_empty() {
            return Err(ConfigError::new(
                ConfigPath::root().field("trustDomainAliases").index(i),
                "must not be empty",
            ));
        }
    }
    Ok(TrustBundle::new(&trust_domain, aliases))
}

/// Flattens and compiles every resource into what they compile to, with the count of resources
/// (`List` items counted one by one).
#[inline(never)]
fn gather(resources: Resources<'_, '_>, scope: &Scope<'_>) -> Result<(Gathered, usize), LoadError> {
    // At most one policy per resource unless `List`s expand: allocated once, not doubled.
    let mut out = Gathered {
        applied: Vec::with_capacity(resources.len()),
        ..Gathered::default()
    };
    // Each resource is flattened and compiled before the next is read, so no list of every
    // resource's metadata is ever held. Every resource is still read even after one fails to
    // compile: a resource that cannot be read (its kind, metadata or `List` items) is the error
    // reported, wherever it is, as when all were read before any was compiled.
    let mut resource_count = 0;
    let mut first_error = None;
    resources.each(&mut |i, value| {
        let mut items = Vec::new();
        flatten(value, ResourcePath::new(i), &mut items)?;
        resource_count += items.len();
        for (path, resource) in items {
            if first_error.is_none() {
                first_error = compile_resource(path, resource, scope, &mut out).err();
            }
        }
        Ok(())
    })?;
    match first_error {
        Some(e) => Err(e.into()),
        None => Ok((out, resource_count)),
    }
}

/// The settings of the top-level fields (`deny_response` is taken from `raw`).
#[inline(never)]
fn settings(raw: &mut RawConfig) -> Result<Settings, ConfigError> {
    Ok(Settings {
        decision_header: raw.decision_header,
        decision_latency_histogram: raw.decision_latency_histogram,
        decision_filter_state: raw.decision_filter_state,
        jwks_refresh_seconds: match raw.jwks_refresh_seconds {
            Some(0) => return Err(ConfigError::new("jwksRefreshSeconds", "must be at least 1")),
            Some(s) => s,
            None => DEFAULT_JWKS_REFRESH_SECONDS,
        },
        jwt_cache_size: raw.jwt_cache_size.unwrap_or(DEFAULT_CACHE_CAPACITY),
        jwt_source: raw.jwt_source,
        direction: raw.direction,
        deny_response: match raw.deny_response.take() {
            Some(r) => DenyResponse::from_config(r).map_err(|e| e.within("denyResponse"))?,
            None => DenyResponse::default(),
        },
    })
}

/// What the resources were compiled against, and how many there were.
struct Origin {
    workload: Workload,
    workload_source: WorkloadSource,
    root_namespace: String,
    trust: TrustBundle,
    resource_count: usize,
}

impl Gathered {
    /// The layers of the workload's configuration: the applied policies (or the v1alpha1 RBAC
    /// and SecurityRules when none applies), the mTLS mode, the egress selection and the
    /// JWT providers; the settings read from `raw` last, as their errors come after the
    /// resources'.
    #[inline(never)]
    fn finish(self, origin: Origin, raw: &mut RawConfig) -> Result<Compiled, ConfigError> {
        let Gathered {
            mut applied,
            mut providers,
            applied_authn,
            peer_authentications,
            legacy,
            security_rules,
            any_security_rule,
            sidecars,
            registry,
        } = self;
        let Origin {
            workload,
            workload_source,
            root_namespace,
            trust,
            resource_count,
        } = origin;
        // Istio 1.4/1.5: once any AuthorizationPolicy applies, v1alpha1 RBAC is ignored.
        // When an AuthorizationPolicy applies, Istio ignored the v1alpha1 RBAC that SuperGloo
        // generated; meshguard keeps SecurityRules enforced as their own layer instead (fail
        // closed).
        let mut security_layer = None;
        if applied.is_empty() {
            if let Some(policy) =
                legacy.compile(&workload, &trust, security_rules, any_security_rule)?
            {
                applied.push(policy);
            }
        } else if any_security_rule {
            security_layer = Some(security_rules);
        }
        let mtls = peer_authentication::compose(
            &peer_authentications,
            &root_namespace,
            workload.namespace(),
            |s| workload.matches_labels(s),
        );
        let outbound = raw
            .outbound_traffic_policy
            .unwrap_or(OutboundMode::AllowAny);
        let egress = sidecar::select(&sidecars, &registry, &workload, &root_namespace, outbound);
        let rules: usize = applied.iter().map(|p| p.rules.len()).sum();
        if rules > MAX_RULES {
            return Err(ConfigError::new(
                "resources",
                format!("{rules} rules apply to this workload; at most {MAX_RULES} are accepted"),
            ));
        }
        let settings = settings(raw)?;
        if settings.jwt_source == JwtSource::EnvoyJwtAuthn && !providers.is_empty() {
            // Istio's jwt_authn verifies (and strips) the tokens; verifying again here would
            // fail.
            providers.clear();
        }
        let report = LoadReport {
            workload,
            workload_source,
            resources: resource_count,
            applied_policies: applied.len() + applied_authn,
        };
        Ok(Compiled {
            applied,
            authenticator: Authenticator::new(providers),
            settings,
            mtls,
            security_layer,
            egress,
            report,
        })
    }
}

/// What the resources compile into, gathered one resource at a time.
#[derive(Default)]
struct Gathered {
    applied: Vec<CompiledPolicy>,
    providers: Vec<request_authentication::Provider>,
    applied_authn: usize,
    peer_authentications: Vec<peer_authentication::Compiled>,
    legacy: LegacyRbac,
    security_rules: Vec<CompiledRule>,
    any_security_rule: bool,
    sidecars: Vec<sidecar::Compiled>,
    registry: Vec<service_entry::RegisteredService>,
}

/// What every resource is compiled against.
struct Scope<'a> {
    workload: &'a Workload,
    root_namespace: &'a str,
    trust: &'a TrustBundle,
    jwks_clusters: &'a StringMap,
    service_accounts: &'a ServiceAccounts,
    inventory: &'a [InventoryEntry],
}

/// Compiles one resource into `out`: its name and namespace checked, then the compiler of its
/// kind.
// Each kind is compiled by its own function, never inlined here: V8 compiles the whole module
// at load with its optimizing compiler, and the memory it leaves behind grows with the largest
// function (README, "What sets the memory at rest").
#[inline(never)]
fn compile_resource(
    path: ResourcePath,
    resource: RawResource<'_>,
    scope: &Scope<'_>,
    out: &mut Gathered,
) -> Result<(), ConfigError> {
    if resource.metadata.name.is_empty() {
        return Err(ConfigError::new(
            path.path().field("metadata").field("name"),
            "must not be empty",
        ));
    }
    let namespace = resource
        .metadata
        .namespace
        .clone()
        .filter(|ns| !ns.is_empty())
        .unwrap_or_else(|| scope.workload.namespace().to_string());
    let item = Item {
        path: &path,
        metadata: &resource.metadata,
        namespace: &namespace,
        spec: resource.spec,
        scope,
    };
    match (resource.api_version.as_str(), resource.kind.as_str()) {
        ("security.istio.io/v1" | "security.istio.io/v1beta1", "AuthorizationPolicy") => {
            gather_authorization_policy(&item, out)
        }
        ("security.istio.io/v1" | "security.istio.io/v1beta1", "RequestAuthentication") => {
            gather_request_authentication(&item, out)
        }
        ("security.istio.io/v1" | "security.istio.io/v1beta1", "PeerAuthentication") => {
            gather_peer_authentication(&item, out)
        }
        ("supergloo.solo.io/v1", "SecurityRule") => gather_security_rule(&item, out),
        (
            "networking.istio.io/v1alpha3"
            | "networking.istio.io/v1beta1"
            | "networking.istio.io/v1",
            kind @ ("Sidecar" | "ServiceEntry"),
        ) => gather_networking(&item, kind == "Sidecar", out),
        ("rbac.istio.io/v1alpha1", "ClusterRbacConfig" | "RbacConfig") => {
            gather_legacy_rbac(&item, LegacyKind::Config, out)
        }
        ("rbac.istio.io/v1alpha1", "ServiceRole") => {
            gather_legacy_rbac(&item, LegacyKind::Role, out)
        }
        ("rbac.istio.io/v1alpha1", "ServiceRoleBinding") => {
            gather_legacy_rbac(&item, LegacyKind::Binding, out)
        }
        (api, kind) => Err(unsupported_resource(&path, api, kind)),
    }
}

/// One resource as its kind's compiler reads it.
struct Item<'r, 'v> {
    path: &'r ResourcePath,
    metadata: &'r RawMetadata,
    /// `metadata.namespace`, or the workload's when unset or empty.
    namespace: &'r str,
    spec: Option<&'v str>,
    scope: &'r Scope<'r>,
}

impl Item<'_, '_> {
    /// The path of the resource's `spec`.
    fn in_spec(&self) -> ConfigPath {
        self.path.path().field("spec")
    }

    /// The spec read as `T`; errors are relative to the resource.
    fn spec<T: FromJson>(&self) -> Result<T, ConfigError> {
        read_spec(self.spec).map_err(|e| e.within(self.in_spec()))
    }

    /// Whether a resource of this namespace with `selector` applies to the workload.
    fn applies_here(&self, selector: Option<&StringMap>, has_target_ref: bool) -> bool {
        applies(
            selector,
            has_target_ref,
            self.namespace,
            self.scope.root_namespace,
            self.scope.workload,
        )
    }
}

/// An AuthorizationPolicy: its policy kept when it applies to the workload.
#[inline(never)]
fn gather_authorization_policy(item: &Item<'_, '_>, out: &mut Gathered) -> Result<(), ConfigError> {
    let spec: authorization_policy::AuthorizationPolicySpec = item.spec()?;
    let ctx = authorization_policy::Context {
        name: &item.metadata.name,
        namespace: item.namespace,
        annotations: &item.metadata.annotations,
        trust: item.scope.trust,
    };
    let policy = authorization_policy::compile_authorization_policy(spec, &ctx)
        .map_err(|e| e.within(item.path.path()))?;
    if item.applies_here(policy.selector.as_ref(), policy.has_target_ref) {
        // The selector has done its work: drop it now rather than at the end of the load,
        // whose peak Wasm memory keeps for good.
        out.applied.push(CompiledPolicy {
            selector: None,
            ..policy
        });
    }
    Ok(())
}

/// A RequestAuthentication: its providers kept when it applies to the workload.
#[inline(never)]
fn gather_request_authentication(
    item: &Item<'_, '_>,
    out: &mut Gathered,
) -> Result<(), ConfigError> {
    let spec: request_authentication::RequestAuthenticationSpec = item.spec()?;
    let ra = request_authentication::compile_request_authentication(spec, item.scope.jwks_clusters)
        .map_err(|e| e.within(item.in_spec()))?;
    if item.applies_here(ra.selector.as_ref(), ra.has_target_ref) {
        out.providers.extend(ra.providers);
        out.applied_authn += 1;
    }
    Ok(())
}

/// A PeerAuthentication, kept for the composition of the workload's mTLS mode.
#[inline(never)]
fn gather_peer_authentication(item: &Item<'_, '_>, out: &mut Gathered) -> Result<(), ConfigError> {
    let spec: peer_authentication::PeerAuthenticationSpec = item.spec()?;
    let pa = peer_authentication::compile_peer_authentication(
        spec,
        &item.metadata.name,
        item.namespace,
        item.metadata.creation_timestamp.clone(),
    )
    .map_err(|e| e.within(item.in_spec()))?;
    out.peer_authentications.push(pa);
    Ok(())
}

/// A SuperGloo SecurityRule: its rule kept when it selects the workload.
#[inline(never)]
fn gather_security_rule(item: &Item<'_, '_>, out: &mut Gathered) -> Result<(), ConfigError> {
    let spec: security_rule::SecurityRuleSpec = item.spec()?;
    let ctx = security_rule::Context {
        workload: item.scope.workload,
        trust: item.scope.trust,
        service_accounts: item.scope.service_accounts,
        inventory: item.scope.inventory,
    };
    let id = RuleId::security_rule(item.namespace, &item.metadata.name);
    out.any_security_rule = true;
    if let Some(rule) = security_rule::compile_security_rule(&spec, id, &ctx)
        .map_err(|e| e.within(item.in_spec()))?
    {
        out.security_rules.push(rule);
    }
    Ok(())
}

/// A Sidecar (`sidecar`) or a ServiceEntry, kept for the egress selection.
#[inline(never)]
fn gather_networking(
    item: &Item<'_, '_>,
    sidecar: bool,
    out: &mut Gathered,
) -> Result<(), ConfigError> {
    if sidecar {
        let spec: sidecar::SidecarSpec = item.spec()?;
        out.sidecars.push(
            sidecar::compile_sidecar(spec, &item.metadata.name, item.namespace)
                .map_err(|e| e.within(item.in_spec()))?,
        );
    } else {
        let spec: service_entry::ServiceEntrySpec = item.spec()?;
        out.registry.push(
            service_entry::compile_service_entry(spec, item.namespace)
                .map_err(|e| e.within(item.in_spec()))?,
        );
    }
    Ok(())
}

/// Which v1alpha1 RBAC resource.
#[derive(Clone, Copy)]
enum LegacyKind {
    Config,
    Role,
    Binding,
}

/// A v1alpha1 RBAC resource (`ClusterRbacConfig`/`RbacConfig`, `ServiceRole`,
/// `ServiceRoleBinding`), added to the legacy layer.
#[inline(never)]
fn gather_legacy_rbac(
    item: &Item<'_, '_>,
    kind: LegacyKind,
    out: &mut Gathered,
) -> Result<(), ConfigError> {
    let (name, namespace, path) = (&item.metadata.name, item.namespace, item.path);
    match kind {
        LegacyKind::Config => out.legacy.add_config(name, item.spec()?, path),
        LegacyKind::Role => out.legacy.add_role(namespace, name, item.spec()?, path),
        LegacyKind::Binding => out.legacy.add_binding(namespace, name, item.spec()?, path),
    }
}

/// The error for a resource of a kind meshguard does not read.
#[inline(never)]
fn unsupported_resource(path: &ResourcePath, api: &str, kind: &str) -> ConfigError {
    ConfigError::new(
        path.path().field("kind"),
        format!(
            "unsupported resource {api}/{kind}: meshguard accepts security.istio.io \
            AuthorizationPolicy, RequestAuthentication and PeerAuthentication, \
            rbac.istio.io/v1alpha1 ClusterRbacConfig, ServiceRole and \
            ServiceRoleBinding, networking.istio.io Sidecar and ServiceEntry, and \
            supergloo.solo.io/v1 SecurityRule"
        ),
    )
}

fn non_empty(
    value: Option<String>,
    field: &'static str,
    default: &str,
) -> Result<String, ConfigError> {
    match value {
        None => Ok(default.to_string()),
        Some(v) if v.is_empty() => Err(ConfigError::new(field, "must not be empty")),
        Some(v) => Ok(v),
    }
}

/// The fields of one object of `resources`: a resource, or a `v1` `List` of them (as `kubectl
/// get -o yaml` prints several objects). `status` is written by controllers and never read.
const OBJECT_FIELDS: [&str; 6] = ["apiVersion", "kind", "metadata", "spec", "items", "status"];

/// A resource: its kind, metadata and (raw) spec.
struct RawResource<'a> {
    api_version: String,
    kind: String,
    metadata: RawMetadata,
    spec: Option<&'a str>,
}

/// Parses `value` and expands `v1` `List` objects into their items, each with its path.
/// Parsed once; `metadata` and `spec` stay raw until the kind is known.
// Not inlined into `compile`: V8 compiles the whole module at load with its optimizing
// compiler, whose memory grows with the largest function (README, "Module size and memory").
#[inline(never)]
fn flatten<'v>(
    value: &'v str,
    path: ResourcePath,
    out: &mut Vec<(ResourcePath, RawResource<'v>)>,
) -> Result<(), ConfigError> {
    let (object, api_version, kind) = read_object(value).map_err(|e| e.within(path.path()))?;
    let items: Option<Vec<&str>> = match object.get_some("items") {
        Some(raw) => Some(parse_items(raw).map_err(|e| e.within(path.path().field("items")))?),
        None => None,
    };
    let spec = object.get_some("spec");
    if kind == "List" && api_version == "v1" {
        if spec.is_some() {
            return Err(ConfigError::new(
                path.path().field("spec"),
                "unknown field `spec`, expected one of `apiVersion`, `kind`, `metadata`, `items`",
            ));
        }
        let Some(items) = items else {
            return Err(ConfigError::new(path.path(), "missing field `items`"));
        };
        for (i, item) in items.into_iter().enumerate() {
            flatten(item, path.item(i), out)?;
        }
        return Ok(());
    }
    if items.is_some() {
        return Err(ConfigError::new(
            path.path().field("items"),
            "unknown field `items`, expected one of `apiVersion`, `kind`, `metadata`, `spec`, \
            `status`",
        ));
    }
    let Some(metadata) = object.get_some("metadata") else {
        return Err(ConfigError::new(path.path(), "missing field `metadata`"));
    };
    let metadata =
        RawMetadata::parse(metadata).map_err(|e| e.within(path.path().field("metadata")))?;
    out.push((
        path,
        RawResource {
            api_version,
            kind,
            metadata,
            spec,
        },
    ));
    Ok(())
}

/// The members of one object of `resources`, checked, with its `apiVersion` and `kind`.
#[inline(never)]
fn read_object(value: &str) -> Result<(RawMembers<'_>, String, String), ConfigError> {
    let object = raw_members(value, "RawObject").map_err(|e| raw_error(value.as_bytes(), e))?;
    object.check(&OBJECT_FIELDS, true)?;
    let names = parse_members(&object, |key| key == "apiVersion" || key == "kind")?;
    let f = names.fields("RawObject", &OBJECT_FIELDS)?;
    let api_version = f.required("apiVersion", Json::string)?;
    let kind = f.required("kind", Json::string)?;
    Ok((object, api_version, kind))
}

/// istiod targeting for sidecars: root namespace or own namespace, selector subset, and never a
/// resource attached with `targetRef(s)`.
fn applies(
    selector: Option<&StringMap>,
    has_target_ref: bool,
    namespace: &str,
    root_namespace: &str,
    workload: &Workload,
) -> bool {
    if has_target_ref {
        return false;
    }
    if namespace != root_namespace && namespace != workload.namespace() {
        return false;
    }
    selector.is_none_or(|labels| workload.matches_labels(labels))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What loading `text` gives, as text: the error, or the counts of what was loaded.
    fn outcome(loaded: Result<(Engine, LoadReport), LoadError>) -> String {
        match loaded {
            Ok((engine, report)) => format!(
                "{} resources, {} apply, {} rules, policies {:?}",
                report.resources,
                report.applied_policies,
                engine.rule_count(),
                engine.policy_names().collect::<Vec<_>>()
            ),
            Err(e) => format!("error: {e}"),
        }
    }

    /// The text parsed whole, as the loader did before it read configurations in chunks.
    fn whole(text: &[u8]) -> String {
        outcome(compile(Text::Whole(text), &NodeInfo::default()).map(Compiled::build))
    }

    fn chunked(text: &[u8], max_read: usize) -> String {
        let mut source = SliceSource::with_max_read(text, max_read);
        outcome(load_from(&mut source, &NodeInfo::default()))
    }

    /// A configuration whose strings hold escapes and characters of two to four bytes, so
    /// that reads of a few bytes split them everywhere.
    const CONFIG: &str = r#"{"workload": {"namespace": "ns1", "labels": {"app": "caf\u00e9"}},
  "trustDomain": "cluster.local",
  "resources": [
    {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
     "metadata": {"name": "allow-é", "namespace": "ns1", "annotations": {"a": "\"q\" \\ \/"}},
     "spec": {"action": "ALLOW", "rules": [{"to": [{"operation":
       {"paths": ["/€/😀", "/caf\u00e9\ud83d\ude00"], "methods": ["GET"]}}]}]}},
    {"apiVersion": "v1", "kind": "List", "items": [
      {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
       "metadata": {"name": "deny\tx", "namespace": "ns1"},
       "spec": {"action": "DENY", "rules": [{"to": [{"operation": {"paths": ["/ß"]}}]}]}}]}
  ],
  "decisionHeader": true}"#;

    #[test]
    fn a_configuration_read_in_chunks_of_any_size_loads_as_the_whole_text() {
        let expected = whole(CONFIG.as_bytes());
        assert_eq!(
            expected,
            "2 resources, 2 apply, 2 rules, policies [\"ns[ns1]-policy[deny\\tx]\", \
            \"ns[ns1]-policy[allow-é]\"]"
        );
        for max_read in (1..=40).chain([CONFIG.len() - 1, CONFIG.len(), usize::MAX]) {
            assert_eq!(chunked(CONFIG.as_bytes(), max_read), expected, "{max_read}");
        }
    }

    #[test]
    fn a_configuration_of_exactly_one_chunk_and_one_byte_more_loads() {
        for size in [CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 2 * CHUNK_SIZE] {
            let mut text = CONFIG.as_bytes().to_vec();
            let last = text.pop();
            text.resize(size - 1, b' ');
            text.extend(last);
            assert_eq!(text.len(), size);
            assert_eq!(
                chunked(&text, usize::MAX),
                whole(CONFIG.as_bytes()),
                "{size}"
            );
        }
    }

    #[test]
    fn an_empty_or_blank_configuration_loads_no_policies() {
        for text in ["", "  \n", "\u{c}", "{}"] {
            assert_eq!(
                whole(text.as_bytes()),
                "0 resources, 0 apply, 0 rules, policies []"
            );
            for max_read in [1, 2, usize::MAX] {
                assert_eq!(chunked(text.as_bytes(), max_read), whole(text.as_bytes()));
            }
        }
    }

    /// Every text one edit away from the configuration, valid or not: the same result and the
    /// same error (the field, the reason, serde_json's line and column) read in chunks as whole.
    #[test]
    fn every_text_one_edit_from_a_configuration_gives_the_same_error_in_chunks() {
        let bytes = CONFIG.as_bytes();
        let mut errors = std::collections::BTreeSet::new();
        for at in 0..=bytes.len() {
            let mut variants = vec![
                [&bytes[..at], &bytes[(at + 1).min(bytes.len())..]].concat(),
                bytes[..at].to_vec(),
                [&bytes[..at], b"\xff", &bytes[at..]].concat(),
            ];
            for insert in [b"\"", b"\\", b",", b"}", b"]", b"x", b"0"] {
                variants.push([&bytes[..at], insert, &bytes[at..]].concat());
            }
            for variant in variants {
                let expected = whole(&variant);
                assert_eq!(
                    chunked(&variant, 3),
                    expected,
                    "{:?}",
                    String::from_utf8_lossy(&variant)
                );
                errors.insert(expected);
            }
        }
        // Syntax errors with serde_json's positions, refusals of fields, UTF-8, and more.
        assert!(errors.len() > 200, "{}", errors.len());
        assert!(errors
            .iter()
            .any(|e| e.contains("not valid JSON") && e.contains(" line ")));
        assert!(errors.iter().any(|e| e.contains("invalid UTF-8 at byte")));
        assert!(errors.iter().any(|e| e.contains("unknown field")));
    }

    /// A source that fails, or ends early, at a given byte.
    struct Failing {
        text: Vec<u8>,
        at: usize,
        host_error: bool,
    }

    impl ConfigSource for Failing {
        fn size(&self) -> usize {
            self.text.len()
        }

        fn read(&mut self, start: usize, max: usize) -> Result<Vec<u8>, ReadError> {
            if start + max > self.at && self.host_error {
                return Err(ReadError::new(start, "host status 2"));
            }
            let end = (start + max).min(self.at).max(start);
            Ok(self.text[start..end].to_vec())
        }
    }

    #[test]
    fn a_host_error_or_a_text_cut_short_fails_the_load() {
        let text = CONFIG.as_bytes().to_vec();
        for at in [0, 1, 100, text.len() - 1] {
            for host_error in [true, false] {
                let mut source = Failing {
                    text: text.clone(),
                    at,
                    host_error,
                };
                let Err(LoadError::Unreadable(e)) = load_from(&mut source, &NodeInfo::default())
                else {
                    panic!("loaded from a source failing at {at}");
                };
                assert!(e.at <= at, "{e}");
            }
        }
    }
}
