//! Istio `Sidecar` (`networking.istio.io/v1alpha3`, `v1beta1`, `v1`) egress: on the workload's
//! outbound side, with `outboundTrafficPolicy: REGISTRY_ONLY`, only hosts listed in
//! `egress[].hosts` may be called.
//!
//! Selection as istiod does it: the Sidecar in the workload's namespace whose
//! `workloadSelector` matches, else the one in that namespace without selector, else the one in
//! the root namespace without selector. Hosts are `namespace/dnsName`: namespace `*` (any),
//! `.` (the Sidecar's own namespace) or a name; dnsName `*`, `*.suffix` or an exact name.
//! Istio 1.31 exclusions (istio/istio#60581): a `~` before the namespace excludes, `~ns/*` every
//! host of `ns`, `~ns/host` one host, `~/host` that host in every namespace (`~` alone is the
//! wildcard namespace, so `~/*` imports nothing); a host is selected when included and not
//! excluded, within one egress listener. The called host (`:authority` without port) is made a
//! FQDN the way a pod's resolver would: `name` becomes `name.<workload ns>.svc.cluster.local`,
//! `name.ns` becomes `name.ns.svc.cluster.local`; its namespace is the label after the service
//! name.
//!
//! `egress[].port`: as istiod builds listeners, a call to a port that has its own egress
//! listener sees only that listener's hosts; any other port sees the listener without a port
//! (none: nothing is reachable). The port is the connection's destination port (the port the
//! application called, restored by Istio's original-destination listener).
//!
//! Under REGISTRY_ONLY the host must also be registered (`service_entry.rs`: a visible
//! ServiceEntry on the called port, whose namespace is the one namespaces match, or a
//! cluster-local service name).
//!
//! Istio answers a blocked call with an opaque 502 from its BlackHoleCluster; meshguard answers
//! 403 with a body naming the blocked host and the Sidecar.

use crate::config_json::string_map::StringMap;

use crate::config_json::reader::{FromJson, Json};
use crate::egress::host_name::HostMatch;
use crate::egress::service_entry::{RegisteredService, ServicePort};
use crate::error::{ConfigError, ConfigPath, ConfigResult};
use crate::targeting::workload::Workload;

/// A Sidecar's `spec`. Inbound listener settings (`ingress`, `inboundConnectionPool`) and
/// `outboundTrafficPolicy.egressProxy` do not affect authorization; accepted and ignored.
#[derive(Debug)]
pub struct SidecarSpec {
    pub workload_selector: Option<WorkloadSelector>,
    pub egress: Vec<EgressListener>,
    pub outbound_traffic_policy: Option<OutboundTrafficPolicy>,
}

impl FromJson for SidecarSpec {
    fn from_json(value: &Json<'_>) -> ConfigResult<SidecarSpec> {
        let f = value.fields(
            "SidecarSpec",
            &[
                "workloadSelector",
                "egress",
                "ingress",
                "outboundTrafficPolicy",
                "inboundConnectionPool",
            ],
        )?;
        let workload_selector = f.optional("workloadSelector", |v| {
            let f = v.fields("WorkloadSelector", &["labels"])?;
            Ok(WorkloadSelector {
                labels: f.or_default("labels", Json::string_map)?,
            })
        })?;
        let egress = f.or_default("egress", |v| v.list(EgressListener::from_json))?;
        f.optional("ingress", |v| v.list(Json::any))?;
        let outbound_traffic_policy = f.optional("outboundTrafficPolicy", |v| {
            let f = v.fields("OutboundTrafficPolicy", &["mode", "egressProxy"])?;
            let mode = f.optional("mode", OutboundMode::from_json)?;
            f.optional("egressProxy", Json::any)?;
            Ok(OutboundTrafficPolicy { mode })
        })?;
        f.optional("inboundConnectionPool", Json::any)?;
        Ok(SidecarSpec {
            workload_selector,
            egress,
            outbound_traffic_policy,
        })
    }
}

#[derive(Debug)]
pub struct WorkloadSelector {
    pub labels: StringMap,
}

#[derive(Debug)]
pub struct EgressListener {
    /// Istio's `SidecarPort`, the same fields as a ServiceEntry's port.
    pub port: Option<ServicePort>,
    pub bind: Option<String>,
    pub capture_mode: Option<String>,
    pub hosts: Vec<String>,
}

impl FromJson for EgressListener {
    fn from_json(value: &Json<'_>) -> ConfigResult<EgressListener> {
        let f = value.fields("EgressListener", &["port", "bind", "captureMode", "hosts"])?;
        Ok(EgressListener {
            port: f.optional("port", ServicePort::from_json)?,
            bind: f.optional("bind", Json::string)?,
            capture_mode: f.optional("captureMode", Json::string)?,
            hosts: f.or_default("hosts", Json::strings)?,
        })
    }
}

#[derive(Debug)]
pub struct OutboundTrafficPolicy {
    pub mode: Option<OutboundMode>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboundMode {
    AllowAny,
    RegistryOnly,
}

impl FromJson for OutboundMode {
    fn from_json(value: &Json<'_>) -> ConfigResult<OutboundMode> {
        value.variant(&[
            ("ALLOW_ANY", OutboundMode::AllowAny),
            ("REGISTRY_ONLY", OutboundMode::RegistryOnly),
        ])
    }
}

/// One validated Sidecar.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub name: String,
    pub namespace: String,
    pub selector: Option<StringMap>,
    listeners: Vec<Listener>,
    pub mode: Option<OutboundMode>,
}

/// One `egress[]` entry: the port it owns (`None`: every other port), what it imports and what
/// it excludes.
#[derive(Debug, Clone)]
struct Listener {
    port: Option<u16>,
    include: Vec<(NamespaceMatch, HostMatch)>,
    exclude: Vec<(NamespaceMatch, HostMatch)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum NamespaceMatch {
    Any,
    Exactly(String),
}

/// The egress rules in force for this workload.
#[derive(Debug, Clone)]
pub struct Egress {
    pub sidecar: String,
    listeners: Vec<Listener>,
    /// The ServiceEntries visible to the workload's namespace.
    registry: Vec<RegisteredService>,
    pub registry_only: bool,
}

/// Errors are relative to the spec.
pub fn compile_sidecar(
    spec: SidecarSpec,
    name: &str,
    namespace: &str,
) -> Result<Compiled, ConfigError> {
    let mut listeners: Vec<Listener> = Vec::new();
    for (i, listener) in spec.egress.iter().enumerate() {
        let at = || ConfigPath::root().field("egress").index(i);
        if listener.hosts.is_empty() {
            return Err(ConfigError::new(
                at().field("hosts"),
                "at least one host is required",
            ));
        }
        let port = listener
            .port
            .as_ref()
            .map(|p| p.number().map_err(|e| e.within(at().field("port"))))
            .transpose()?;
        if listeners.iter().any(|l| l.port == port) {
            let what = match port {
                Some(p) => format!("port {p} has another egress listener"),
                None => "only one egress listener may omit the port".to_string(),
            };
            return Err(ConfigError::new(at().field("port"), what));
        }
        let mut compiled = Listener {
            port,
            include: Vec::new(),
            exclude: Vec::new(),
        };
        for (j, h) in listener.hosts.iter().enumerate() {
            let (excluded, pair) =
                egress_host(h, namespace).map_err(|e| e.within(at().field("hosts").index(j)))?;
            if excluded {
                compiled.exclude.push(pair);
            } else {
                compiled.include.push(pair);
            }
        }
        listeners.push(compiled);
    }
    Ok(Compiled {
        name: name.to_string(),
        namespace: namespace.to_string(),
        selector: spec.workload_selector.map(|s| s.labels),
        listeners,
        mode: spec.outbound_traffic_policy.and_then(|p| p.mode),
    })
}

/// One `[~]namespace/dnsName` entry: whether it excludes, and what it matches. Errors are
/// relative to the entry.
fn egress_host(
    entry: &str,
    own_namespace: &str,
) -> Result<(bool, (NamespaceMatch, HostMatch)), ConfigError> {
    let (ns, dns) = entry
        .split_once('/')
        .ok_or_else(|| ConfigError::new("", format!("{entry:?} must be <namespace>/<dnsName>")))?;
    let (excluded, ns) = match ns.strip_prefix('~') {
        Some(rest) => (true, rest),
        None => (false, ns),
    };
    let ns = match ns {
        "*" if !excluded => NamespaceMatch::Any,
        "" if excluded => NamespaceMatch::Any,
        "." if !excluded => NamespaceMatch::Exactly(own_namespace.to_string()),
        "" | "*" | "." => {
            return Err(ConfigError::new(
                "",
                "namespace must be a name, '*', '.', '~' or '~<name>'",
            ))
        }
        other if other.contains('*') || other.contains('~') => {
            return Err(ConfigError::new(
                "",
                "a namespace cannot contain '*' or '~'",
            ))
        }
        other => NamespaceMatch::Exactly(other.to_string()),
    };
    Ok((excluded, (ns, HostMatch::parse(dns)?)))
}

/// Picks the Sidecar for the workload (istiod's precedence) and the outbound mode in force.
pub fn select(
    all: &[Compiled],
    registry: &[RegisteredService],
    workload: &Workload,
    root_namespace: &str,
    mesh_mode: OutboundMode,
) -> Option<Egress> {
    let own = |selected: bool| {
        all.iter().find(|s| {
            s.namespace == workload.namespace()
                && match &s.selector {
                    Some(labels) => {
                        selected && !labels.is_empty() && workload.matches_labels(labels)
                    }
                    None => !selected,
                }
        })
    };
    let chosen = own(true).or_else(|| own(false)).or_else(|| {
        all.iter()
            .find(|s| s.namespace == root_namespace && s.selector.is_none())
    });
    let visible = || {
        registry
            .iter()
            .filter(|r| r.visible_to(workload.namespace()))
            .cloned()
            .collect()
    };
    let Some(chosen) = chosen else {
        // No Sidecar: istiod's default scope imports `*/*`, and a REGISTRY_ONLY mesh still
        // blackholes every host outside the registry.
        return (mesh_mode == OutboundMode::RegistryOnly).then(|| Egress {
            sidecar: DEFAULT_SCOPE.to_string(),
            listeners: vec![Listener {
                port: None,
                include: vec![(NamespaceMatch::Any, HostMatch::Any)],
                exclude: Vec::new(),
            }],
            registry: visible(),
            registry_only: true,
        });
    };
    Some(Egress {
        sidecar: format!("{}/{}", chosen.namespace, chosen.name),
        listeners: chosen.listeners.clone(),
        registry: visible(),
        registry_only: chosen.mode.unwrap_or(mesh_mode) == OutboundMode::RegistryOnly,
    })
}

/// How the reply names the egress scope when no Sidecar applies to the workload.
pub const DEFAULT_SCOPE: &str = "(none: the mesh default */*)";

impl Egress {
    /// Whether a call to `authority` (`:authority`, port allowed) on destination port `port`
    /// is permitted.
    pub fn allows(&self, authority: &str, workload_namespace: &str, port: Option<u16>) -> bool {
        if !self.registry_only {
            return true;
        }
        let listener = self
            .listeners
            .iter()
            .find(|l| l.port.is_some() && l.port == port)
            .or_else(|| self.listeners.iter().find(|l| l.port.is_none()));
        let Some(listener) = listener else {
            return false;
        };
        let (fqdn, namespace) = self.registered(authority, workload_namespace, port);
        let selected = |ns: &str| {
            listener.include.iter().any(|e| selects(e, &fqdn, ns))
                && !listener.exclude.iter().any(|e| selects(e, &fqdn, ns))
        };
        match namespace {
            Registered::Cluster(ns) => selected(&ns),
            Registered::Entries(namespaces) => namespaces.into_iter().any(selected),
        }
    }

    /// The called host's FQDN and where the registry knows it from: a visible ServiceEntry
    /// registering the host as written on the called port (its namespaces), else a cluster-local
    /// service name (its namespace); neither leaves no namespace to select.
    fn registered(
        &self,
        authority: &str,
        workload_namespace: &str,
        port: Option<u16>,
    ) -> (String, Registered<'_>) {
        let host = strip_port(authority)
            .trim_end_matches('.')
            .to_ascii_lowercase();
        let entries: Vec<&str> = self
            .registry
            .iter()
            .filter(|r| r.registers(&host, port))
            .map(|r| r.namespace.as_str())
            .collect();
        if !entries.is_empty() {
            return (host, Registered::Entries(entries));
        }
        match resolve(authority, workload_namespace) {
            (fqdn, Some(ns)) => (fqdn, Registered::Cluster(ns)),
            (fqdn, None) => (fqdn, Registered::Entries(Vec::new())),
        }
    }
}

/// Where a called host is registered.
enum Registered<'r> {
    /// A cluster-local service name in this namespace.
    Cluster(String),
    /// The namespaces of the visible ServiceEntries registering it (none: not registered).
    Entries(Vec<&'r str>),
}

/// Whether one entry names `fqdn` registered in `namespace`.
fn selects((ns, host): &(NamespaceMatch, HostMatch), fqdn: &str, namespace: &str) -> bool {
    let ns_ok = match ns {
        NamespaceMatch::Any => true,
        NamespaceMatch::Exactly(n) => n == namespace,
    };
    ns_ok && host.matches(fqdn)
}

fn strip_port(authority: &str) -> &str {
    match authority.rsplit_once(':') {
        Some((h, port)) if !h.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => authority,
    }
}

/// The FQDN of a called host and the namespace of the service it names, if it is one.
pub fn resolve(authority: &str, workload_namespace: &str) -> (String, Option<String>) {
    let host = strip_port(authority)
        .trim_end_matches('.')
        .to_ascii_lowercase();
    let labels: Vec<&str> = host.split('.').collect();
    match labels.as_slice() {
        [name] => (
            format!("{name}.{workload_namespace}.svc.cluster.local"),
            Some(workload_namespace.to_string()),
        ),
        [name, ns] => (
            format!("{name}.{ns}.svc.cluster.local"),
            Some((*ns).to_string()),
        ),
        [_, ns, "svc"] | [_, ns, "svc", ..] => {
            let fqdn = if host.ends_with(".svc") {
                format!("{host}.cluster.local")
            } else {
                host.clone()
            };
            (fqdn, Some((*ns).to_string()))
        }
        _ => (host.clone(), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_only_mesh_without_sidecar_applies_the_default_scope_and_the_registry() {
        let w = Workload::new("bookinfo".into(), StringMap::new());
        let egress = select(&[], &[], &w, "istio-system", OutboundMode::RegistryOnly).unwrap();
        assert_eq!(egress.sidecar, DEFAULT_SCOPE);
        assert!(egress.allows("ratings:9080", "bookinfo", Some(9080)));
        assert!(egress.allows("details.other.svc.cluster.local", "bookinfo", Some(80)));
        assert!(!egress.allows("www.google.com", "bookinfo", Some(443)));
        assert!(select(&[], &[], &w, "istio-system", OutboundMode::AllowAny).is_none());
    }

    fn listener(port: Option<u32>, hosts: &[&str]) -> EgressListener {
        EgressListener {
            port: port.map(|n| ServicePort {
                number: Some(n),
                protocol: Some("HTTP".into()),
                name: None,
                target_port: None,
            }),
            bind: None,
            capture_mode: None,
            hosts: hosts.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn compile(listeners: Vec<EgressListener>) -> Result<Compiled, ConfigError> {
        let spec = SidecarSpec {
            workload_selector: None,
            egress: listeners,
            outbound_traffic_policy: None,
        };
        compile_sidecar(spec, "sc", "bookinfo")
    }

    fn registry_only(listeners: Vec<EgressListener>) -> Egress {
        let c = compile(listeners).unwrap();
        let w = Workload::new("bookinfo".into(), StringMap::new());
        select(&[c], &[], &w, "istio-system", OutboundMode::RegistryOnly).unwrap()
    }

    fn sidecar(hosts: &[&str], mode: Option<OutboundMode>) -> Egress {
        let spec = SidecarSpec {
            workload_selector: None,
            egress: vec![listener(None, hosts)],
            outbound_traffic_policy: mode.map(|m| OutboundTrafficPolicy { mode: Some(m) }),
        };
        let c = compile_sidecar(spec, "sc", "bookinfo").unwrap();
        let w = Workload::new("bookinfo".into(), StringMap::new());
        select(&[c], &[], &w, "istio-system", OutboundMode::RegistryOnly).unwrap()
    }

    /// A ServiceEntry spec read from JSON, as the configuration loader reads it.
    fn read(value: serde_json::Value) -> crate::egress::service_entry::ServiceEntrySpec {
        let text = value.to_string();
        let json: Json = serde_json::from_str(&text).unwrap();
        crate::egress::service_entry::ServiceEntrySpec::from_json(&json).unwrap()
    }

    /// A ServiceEntry in `namespace` registering `hosts` on `port` (exported everywhere).
    fn entry(namespace: &str, hosts: &[&str], port: u16) -> RegisteredService {
        let spec = read(serde_json::json!({
            "hosts": hosts, "ports": [{"number": port, "name": "p", "protocol": "HTTP"}],
            "location": "MESH_EXTERNAL", "resolution": "DNS"}));
        crate::egress::service_entry::compile_service_entry(spec, namespace).unwrap()
    }

    fn with_registry(mut e: Egress, entries: Vec<RegisteredService>) -> Egress {
        e.registry = entries;
        e
    }

    #[test]
    fn seed_002_productpage_reaches_reviews_and_details_not_ratings() {
        let e = sidecar(
            &[
                "bookinfo/reviews.bookinfo.svc.cluster.local",
                "bookinfo/details.bookinfo.svc.cluster.local",
                "istio-system/*",
            ],
            None,
        );
        assert!(e.allows("reviews:9080", "bookinfo", None));
        assert!(e.allows("details.bookinfo:9080", "bookinfo", None));
        assert!(e.allows("details.bookinfo.svc.cluster.local", "bookinfo", None));
        assert!(!e.allows("ratings:9080", "bookinfo", None));
        assert!(e.allows("istiod.istio-system.svc:15012", "bookinfo", None));
        assert!(!e.allows("www.example.com", "bookinfo", None));
    }

    #[test]
    fn dot_namespace_and_wildcards() {
        let e = with_registry(
            sidecar(&["./*", "*/*.example.com"], None),
            vec![entry("egress", &["api.example.com", "example.com"], 443)],
        );
        assert!(e.allows("anything", "bookinfo", None));
        assert!(!e.allows("svc.other", "bookinfo", None));
        assert!(e.allows("api.example.com:443", "bookinfo", Some(443)));
        assert!(!e.allows("example.com", "bookinfo", Some(443)));
    }

    #[test]
    fn registry_only_refuses_hosts_no_service_entry_registers() {
        let e = with_registry(
            sidecar(&["*/*"], None),
            vec![entry("egress", &["*.googleapis.com"], 443)],
        );
        assert!(e.allows("storage.googleapis.com", "bookinfo", Some(443)));
        assert!(!e.allows("storage.googleapis.com:80", "bookinfo", Some(80)));
        assert!(!e.allows("www.google.com", "bookinfo", Some(443)));
        // Cluster-local service names are registered, in every form a pod resolves.
        for host in [
            "reviews",
            "reviews.other",
            "reviews.other.svc",
            "reviews.other.svc.corp.local",
        ] {
            assert!(e.allows(host, "bookinfo", Some(9080)), "{host}");
        }
    }

    #[test]
    fn a_service_entry_host_is_in_its_resources_namespace() {
        let e = with_registry(
            sidecar(&["egress/*", "./*"], None),
            vec![
                entry("egress", &["api.example.com"], 443),
                entry("other", &["db.example.com"], 443),
            ],
        );
        assert!(e.allows("api.example.com", "bookinfo", Some(443)));
        assert!(!e.allows("db.example.com", "bookinfo", Some(443)));
        let invisible = select(
            &[compile(vec![listener(None, &["*/*"])]).unwrap()],
            &[crate::egress::service_entry::compile_service_entry(
                read(serde_json::json!({
                    "hosts": ["api.example.com"], "ports": [{"number": 443}], "exportTo": ["."]})),
                "egress",
            )
            .unwrap()],
            &Workload::new("bookinfo".into(), StringMap::new()),
            "istio-system",
            OutboundMode::RegistryOnly,
        )
        .unwrap();
        assert!(!invisible.allows("api.example.com", "bookinfo", Some(443)));
    }

    #[test]
    fn allow_any_permits_everything() {
        let e = sidecar(
            &["./reviews.bookinfo.svc.cluster.local"],
            Some(OutboundMode::AllowAny),
        );
        assert!(e.allows("ratings", "bookinfo", None));
    }

    #[test]
    fn tilde_namespace_excludes_every_host_of_that_namespace() {
        let e = sidecar(&["*/*", "~prod-us2/*"], None);
        assert!(!e.allows("api.prod-us2:8080", "bookinfo", None));
        assert!(!e.allows("api.prod-us2.svc.cluster.local", "bookinfo", None));
        assert!(e.allows("api.prod-us1:8080", "bookinfo", None));
        assert!(e.allows("ratings", "bookinfo", None));
    }

    #[test]
    fn tilde_namespace_and_host_excludes_one_host() {
        let e = sidecar(
            &["bookinfo/*", "~bookinfo/ratings.bookinfo.svc.cluster.local"],
            None,
        );
        assert!(!e.allows("ratings:9080", "bookinfo", None));
        assert!(e.allows("reviews:9080", "bookinfo", None));
    }

    #[test]
    fn bare_tilde_excludes_the_host_in_every_namespace() {
        let e = with_registry(
            sidecar(&["*/*", "~/*.internal.example.com"], None),
            vec![
                entry("a", &["db.internal.example.com"], 443),
                entry("b", &["db.internal.example.com", "www.example.com"], 443),
            ],
        );
        assert!(!e.allows("db.internal.example.com", "bookinfo", Some(443)));
        assert!(e.allows("www.example.com", "bookinfo", Some(443)));
        let nothing = sidecar(&["~/*"], None);
        assert!(!nothing.allows("reviews", "bookinfo", None));
    }

    #[test]
    fn exclusion_wins_over_an_exact_inclusion() {
        let e = sidecar(
            &["bookinfo/reviews.bookinfo.svc.cluster.local", "~bookinfo/*"],
            None,
        );
        assert!(!e.allows("reviews", "bookinfo", None));
    }

    #[test]
    fn a_namespaced_exclusion_removes_the_host_of_that_namespaces_service_entry() {
        let e = with_registry(
            sidecar(&["*/*", "~egress/www.example.com"], None),
            vec![entry(
                "egress",
                &["www.example.com", "api.example.com"],
                443,
            )],
        );
        assert!(!e.allows("www.example.com", "bookinfo", Some(443)));
        assert!(e.allows("api.example.com", "bookinfo", Some(443)));
        // The same host registered again in another namespace is still selected from there.
        let twice = with_registry(
            e,
            vec![
                entry("egress", &["www.example.com"], 443),
                entry("partner", &["www.example.com"], 443),
            ],
        );
        assert!(twice.allows("www.example.com", "bookinfo", Some(443)));
    }

    #[test]
    fn malformed_exclusions_are_load_errors() {
        for bad in ["~*/x.com", "~./x.com", "~a~b/x.com", "a*/x.com"] {
            let err = compile(vec![listener(None, &[bad])]).unwrap_err();
            assert!(
                err.to_string().contains("egress[0].hosts[0]"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn a_port_listener_owns_its_port_and_the_portless_one_the_rest() {
        let e = registry_only(vec![
            listener(Some(9080), &["./reviews.bookinfo.svc.cluster.local"]),
            listener(None, &["./ratings.bookinfo.svc.cluster.local"]),
        ]);
        assert!(e.allows("reviews:9080", "bookinfo", Some(9080)));
        assert!(!e.allows("ratings:9080", "bookinfo", Some(9080)));
        assert!(e.allows("ratings:8080", "bookinfo", Some(8080)));
        assert!(!e.allows("reviews:8080", "bookinfo", Some(8080)));
        assert!(e.allows("ratings", "bookinfo", None));
    }

    #[test]
    fn without_a_portless_listener_other_ports_reach_nothing() {
        let e = registry_only(vec![listener(Some(9080), &["*/*"])]);
        assert!(e.allows("reviews", "bookinfo", Some(9080)));
        assert!(!e.allows("reviews", "bookinfo", Some(9081)));
        assert!(!e.allows("reviews", "bookinfo", None));
    }

    #[test]
    fn duplicate_or_invalid_ports_are_load_errors() {
        let twice = compile(vec![
            listener(Some(80), &["*/*"]),
            listener(Some(80), &["*/*"]),
        ]);
        assert!(twice.unwrap_err().to_string().contains("egress[1].port"));
        let two_portless = compile(vec![listener(None, &["*/*"]), listener(None, &["*/*"])]);
        assert!(two_portless
            .unwrap_err()
            .to_string()
            .contains("egress[1].port"));
        for n in [0, 65536] {
            let err = compile(vec![listener(Some(n), &["*/*"])]).unwrap_err();
            assert!(err.to_string().contains("egress[0].port.number"), "{n}");
        }
    }
}
