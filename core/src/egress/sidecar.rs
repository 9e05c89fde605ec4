//! Istio `Sidecar` (`networking.istio.io/v1alpha3`, `v1beta1`, `v1`) egress: on the workload's
//! outbound side, with `outboundTrafficPolicy: REGISTRY_ONLY`, only hosts listed in
//! `egress[].hosts` may be called.
//!
//! Selection as istiod does it: the Sidecar in the workload's namespace whose
//! `workloadSelector` matches, else the one in that namespace without selector, else the one in
//! the root namespace without selector. Hosts are `namespace/dnsName`: namespace `*` (any),
//! `.` (the Sidecar's own namespace) or a name (`~` matches nothing); dnsName `*`, `*.suffix`
//! or an exact name. The called host (`:authority` without port) is made a FQDN the way a pod's
//! resolver would: `name` becomes `name.<workload ns>.svc.cluster.local`, `name.ns` becomes
//! `name.ns.svc.cluster.local`; its namespace is the label after the service name.
//!
//! Istio answers a blocked call with an opaque 502 from its BlackHoleCluster; meshguard answers
//! 403 with a body naming the blocked host and the Sidecar.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::error::ConfigError;
use crate::targeting::workload::Workload;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SidecarSpec {
    pub workload_selector: Option<WorkloadSelector>,
    #[serde(default)]
    pub egress: Vec<EgressListener>,
    /// Inbound listener settings do not affect authorization; accepted and ignored.
    pub ingress: Option<Vec<Value>>,
    pub outbound_traffic_policy: Option<OutboundTrafficPolicy>,
    pub inbound_connection_pool: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadSelector {
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EgressListener {
    pub port: Option<Value>,
    pub bind: Option<String>,
    pub capture_mode: Option<String>,
    #[serde(default)]
    pub hosts: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OutboundTrafficPolicy {
    pub mode: Option<OutboundMode>,
    pub egress_proxy: Option<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OutboundMode {
    AllowAny,
    RegistryOnly,
}

/// One validated Sidecar.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub name: String,
    pub namespace: String,
    pub selector: Option<BTreeMap<String, String>>,
    hosts: Vec<(NamespaceMatch, HostMatch)>,
    pub mode: Option<OutboundMode>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum NamespaceMatch {
    Any,
    Exactly(String),
    Nothing,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostMatch {
    Any,
    Suffix(String),
    Exact(String),
}

/// The egress rules in force for this workload.
#[derive(Debug, Clone)]
pub struct Egress {
    pub sidecar: String,
    hosts: Vec<(NamespaceMatch, HostMatch)>,
    pub registry_only: bool,
}

pub fn compile_sidecar(
    spec: SidecarSpec,
    name: &str,
    namespace: &str,
    path: &str,
) -> Result<Compiled, ConfigError> {
    let mut hosts = Vec::new();
    for (i, listener) in spec.egress.iter().enumerate() {
        if listener.hosts.is_empty() {
            return Err(ConfigError::new(
                &format!("{path}.egress[{i}].hosts"),
                "at least one host is required",
            ));
        }
        for (j, h) in listener.hosts.iter().enumerate() {
            let p = format!("{path}.egress[{i}].hosts[{j}]");
            let (ns, dns) = h.split_once('/').ok_or_else(|| {
                ConfigError::new(&p, format!("{h:?} must be <namespace>/<dnsName>"))
            })?;
            if dns.is_empty() {
                return Err(ConfigError::new(&p, "dnsName must not be empty"));
            }
            let ns = match ns {
                "*" => NamespaceMatch::Any,
                "." => NamespaceMatch::Exactly(namespace.to_string()),
                "~" => NamespaceMatch::Nothing,
                "" => return Err(ConfigError::new(&p, "namespace must not be empty")),
                other => NamespaceMatch::Exactly(other.to_string()),
            };
            let host = match dns {
                "*" => HostMatch::Any,
                d if d.starts_with("*.") => {
                    HostMatch::Suffix(d.trim_start_matches('*').to_ascii_lowercase())
                }
                d if d.contains('*') => {
                    return Err(ConfigError::new(
                        &p,
                        "a wildcard is only allowed as a leading '*.'",
                    ))
                }
                d => HostMatch::Exact(d.to_ascii_lowercase()),
            };
            hosts.push((ns, host));
        }
    }
    Ok(Compiled {
        name: name.to_string(),
        namespace: namespace.to_string(),
        selector: spec.workload_selector.map(|s| s.labels),
        hosts,
        mode: spec.outbound_traffic_policy.and_then(|p| p.mode),
    })
}

/// Picks the Sidecar for the workload (istiod's precedence) and the outbound mode in force.
pub fn select(
    all: &[Compiled],
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
    })?;
    Some(Egress {
        sidecar: format!("{}/{}", chosen.namespace, chosen.name),
        hosts: chosen.hosts.clone(),
        registry_only: chosen.mode.unwrap_or(mesh_mode) == OutboundMode::RegistryOnly,
    })
}

impl Egress {
    /// Whether a call to `authority` (`:authority`, port allowed) is permitted.
    pub fn allows(&self, authority: &str, workload_namespace: &str) -> bool {
        if !self.registry_only {
            return true;
        }
        let (fqdn, namespace) = resolve(authority, workload_namespace);
        self.hosts.iter().any(|(ns, host)| {
            let ns_ok = match ns {
                NamespaceMatch::Any => true,
                NamespaceMatch::Exactly(n) => namespace.as_deref() == Some(n.as_str()),
                NamespaceMatch::Nothing => false,
            };
            let host_ok = match host {
                HostMatch::Any => true,
                HostMatch::Suffix(s) => fqdn.ends_with(s.as_str()),
                HostMatch::Exact(e) => fqdn == *e,
            };
            ns_ok && host_ok
        })
    }
}

/// The FQDN of a called host and the namespace of the service it names, if it is one.
pub fn resolve(authority: &str, workload_namespace: &str) -> (String, Option<String>) {
    let host = match authority.rsplit_once(':') {
        Some((h, port)) if !h.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => authority,
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
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

    fn sidecar(hosts: &[&str], mode: Option<OutboundMode>) -> Egress {
        let spec = SidecarSpec {
            workload_selector: None,
            egress: vec![EgressListener {
                port: None,
                bind: None,
                capture_mode: None,
                hosts: hosts.iter().map(|s| s.to_string()).collect(),
            }],
            ingress: None,
            outbound_traffic_policy: mode.map(|m| OutboundTrafficPolicy {
                mode: Some(m),
                egress_proxy: None,
            }),
            inbound_connection_pool: None,
        };
        let c = compile_sidecar(spec, "sc", "bookinfo", "spec").unwrap();
        let w = Workload::new("bookinfo".into(), BTreeMap::new());
        select(&[c], &w, "istio-system", OutboundMode::RegistryOnly).unwrap()
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
        assert!(e.allows("reviews:9080", "bookinfo"));
        assert!(e.allows("details.bookinfo:9080", "bookinfo"));
        assert!(e.allows("details.bookinfo.svc.cluster.local", "bookinfo"));
        assert!(!e.allows("ratings:9080", "bookinfo"));
        assert!(e.allows("istiod.istio-system.svc:15012", "bookinfo"));
        assert!(!e.allows("www.example.com", "bookinfo"));
    }

    #[test]
    fn dot_namespace_and_wildcards() {
        let e = sidecar(&["./*", "*/*.example.com"], None);
        assert!(e.allows("anything", "bookinfo"));
        assert!(!e.allows("svc.other", "bookinfo"));
        assert!(e.allows("api.example.com:443", "bookinfo"));
        assert!(!e.allows("example.com", "bookinfo"));
    }

    #[test]
    fn allow_any_permits_everything() {
        let e = sidecar(
            &["./reviews.bookinfo.svc.cluster.local"],
            Some(OutboundMode::AllowAny),
        );
        assert!(e.allows("ratings", "bookinfo"));
    }
}
