//! Istio `ServiceEntry` (`networking.istio.io/v1alpha3`, `v1beta1`, `v1`) as the service
//! registry that `outboundTrafficPolicy: REGISTRY_ONLY` consults: a host an application calls is
//! routable only when a Kubernetes service or a ServiceEntry visible to its namespace registers it
//! on the called port (istiod's `PushContext` service index; anything else goes to the
//! BlackHoleCluster).
//!
//! What decides: `hosts` (exact or a leading `*.`), the resource's namespace (what Sidecar egress
//! namespaces match), `exportTo` (`*`, `.`, `~` or namespace names; empty is the mesh default
//! `*`) and `ports[].number` (the destination ports the hosts are reachable on). `addresses`,
//! `location`, `resolution`, `endpoints`, `workloadSelector` and `subjectAltNames` do not affect
//! the decision and are accepted.

use crate::config_json::reader::{FromJson, Json};
use crate::egress::host_name::HostMatch;
use crate::error::{ConfigError, ConfigPath, ConfigResult};

/// A ServiceEntry's `spec`; `addresses`, `location`, `resolution`, `endpoints`,
/// `workloadSelector` and `subjectAltNames` are checked for their type and ignored.
#[derive(Debug)]
pub struct ServiceEntrySpec {
    pub hosts: Vec<String>,
    pub ports: Vec<ServicePort>,
    pub export_to: Vec<String>,
}

impl FromJson for ServiceEntrySpec {
    fn from_json(value: &Json<'_>) -> ConfigResult<ServiceEntrySpec> {
        let f = value.fields(
            "ServiceEntrySpec",
            &[
                "hosts",
                "addresses",
                "ports",
                "location",
                "resolution",
                "endpoints",
                "workloadSelector",
                "exportTo",
                "subjectAltNames",
            ],
        )?;
        let hosts = f.or_default("hosts", Json::strings)?;
        f.optional("addresses", Json::strings)?;
        let ports = f.or_default("ports", |v| v.list(ServicePort::from_json))?;
        f.optional("location", Json::string)?;
        f.optional("resolution", Json::string)?;
        f.optional("endpoints", |v| v.list(Json::any))?;
        f.optional("workloadSelector", Json::any)?;
        let export_to = f.or_default("exportTo", Json::strings)?;
        f.optional("subjectAltNames", Json::strings)?;
        Ok(ServiceEntrySpec {
            hosts,
            ports,
            export_to,
        })
    }
}

/// Istio's `ServicePort` (a ServiceEntry's `ports[]`; a Sidecar's `SidecarPort` has the same
/// fields): only `number` affects the decision.
#[derive(Debug)]
pub struct ServicePort {
    pub number: Option<u32>,
    pub protocol: Option<String>,
    pub name: Option<String>,
    pub target_port: Option<u32>,
}

impl FromJson for ServicePort {
    fn from_json(value: &Json<'_>) -> ConfigResult<ServicePort> {
        let f = value.fields("ServicePort", &["number", "protocol", "name", "targetPort"])?;
        Ok(ServicePort {
            number: f.optional("number", Json::u32)?,
            protocol: f.optional("protocol", Json::string)?,
            name: f.optional("name", Json::string)?,
            target_port: f.optional("targetPort", Json::u32)?,
        })
    }
}

/// One ServiceEntry, compiled: its hosts, namespace, visibility and ports.
#[derive(Debug, Clone)]
pub struct RegisteredService {
    pub namespace: String,
    hosts: Vec<HostMatch>,
    export: Export,
    ports: Vec<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Export {
    Everywhere,
    /// `.` and namespace names; empty with `~` (visible nowhere).
    To(Vec<String>),
}

/// Errors are relative to the spec.
pub fn compile_service_entry(
    spec: ServiceEntrySpec,
    namespace: &str,
) -> Result<RegisteredService, ConfigError> {
    if spec.hosts.is_empty() {
        return Err(ConfigError::new("hosts", "at least one host is required"));
    }
    let mut hosts = Vec::with_capacity(spec.hosts.len());
    for (i, h) in spec.hosts.iter().enumerate() {
        let p = || ConfigPath::root().field("hosts").index(i);
        match HostMatch::parse(h.trim_end_matches('.')).map_err(|e| e.within(p()))? {
            HostMatch::Any => return Err(ConfigError::new(p(), "'*' is not a valid host")),
            host => hosts.push(host),
        }
    }
    if spec.ports.is_empty() {
        return Err(ConfigError::new(
            "ports",
            "at least one port is required (meshguard registers hosts per port)",
        ));
    }
    let mut ports = Vec::with_capacity(spec.ports.len());
    for (i, port) in spec.ports.iter().enumerate() {
        ports.push(
            port.number()
                .map_err(|e| e.within(ConfigPath::root().field("ports").index(i)))?,
        );
    }
    let export = export_to(&spec.export_to, namespace).map_err(|e| e.within("exportTo"))?;
    Ok(RegisteredService {
        namespace: namespace.to_string(),
        hosts,
        export,
        ports,
    })
}

/// Errors are relative to `exportTo`.
fn export_to(values: &[String], namespace: &str) -> Result<Export, ConfigError> {
    if values.is_empty() || values.iter().any(|v| v == "*") {
        return Ok(Export::Everywhere);
    }
    if values.iter().any(|v| v == "~") {
        if values.len() > 1 {
            return Err(ConfigError::new(
                "",
                "'~' cannot be combined with other values",
            ));
        }
        return Ok(Export::To(Vec::new()));
    }
    let mut to = Vec::with_capacity(values.len());
    for v in values {
        if v.is_empty() || v.contains(['*', '~', '/']) {
            return Err(ConfigError::new(
                "",
                format!("{v:?} is not '*', '.', '~' or a namespace"),
            ));
        }
        to.push(if v == "." {
            namespace.to_string()
        } else {
            v.clone()
        });
    }
    Ok(Export::To(to))
}

impl ServicePort {
    /// The port number, required and 1..=65535; errors are relative to the port.
    pub fn number(&self) -> Result<u16, ConfigError> {
        match self.number.map(u16::try_from) {
            Some(Ok(n)) if n > 0 => Ok(n),
            _ => Err(ConfigError::new("number", "must be a port number 1..65535")),
        }
    }
}

impl RegisteredService {
    /// Whether a workload in `namespace` sees this entry.
    pub fn visible_to(&self, namespace: &str) -> bool {
        match &self.export {
            Export::Everywhere => true,
            Export::To(namespaces) => namespaces.iter().any(|n| n == namespace),
        }
    }

    /// Whether the entry registers the lower-case `host` on destination port `port` (an
    /// unknown port matches none).
    pub fn registers(&self, host: &str, port: Option<u16>) -> bool {
        port.is_some_and(|p| self.ports.contains(&p)) && self.hosts.iter().any(|h| h.matches(host))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(
        hosts: &[&str],
        ports: &[u32],
        export_to: &[&str],
    ) -> Result<RegisteredService, ConfigError> {
        let spec = ServiceEntrySpec {
            hosts: hosts.iter().map(|s| s.to_string()).collect(),
            ports: ports
                .iter()
                .map(|n| ServicePort {
                    number: Some(*n),
                    protocol: Some("HTTP".into()),
                    name: None,
                    target_port: None,
                })
                .collect(),
            export_to: export_to.iter().map(|s| s.to_string()).collect(),
        };
        compile_service_entry(spec, "egress")
    }

    #[test]
    fn registers_its_hosts_on_its_ports_only() {
        let e = entry(&["www.example.com", "*.googleapis.com"], &[80, 443], &[]).unwrap();
        assert!(e.registers("www.example.com", Some(443)));
        assert!(e.registers("storage.googleapis.com", Some(80)));
        assert!(!e.registers("googleapis.com", Some(80)));
        assert!(!e.registers("www.example.com", Some(8080)));
        assert!(!e.registers("www.example.com", None));
    }

    #[test]
    fn export_to_limits_the_namespaces_that_see_it() {
        assert!(entry(&["a.com"], &[80], &[]).unwrap().visible_to("x"));
        let own = entry(&["a.com"], &[80], &["."]).unwrap();
        assert!(own.visible_to("egress") && !own.visible_to("x"));
        let listed = entry(&["a.com"], &[80], &["x", "y"]).unwrap();
        assert!(listed.visible_to("y") && !listed.visible_to("egress"));
        assert!(!entry(&["a.com"], &[80], &["~"])
            .unwrap()
            .visible_to("egress"));
    }

    /// hosts, ports, exportTo, and the field the error names.
    type Case<'a> = (&'a [&'a str], &'a [u32], &'a [&'a str], &'a str);

    #[test]
    fn malformed_entries_are_load_errors() {
        let cases: [Case; 6] = [
            (&[], &[80], &[], "hosts"),
            (&["*"], &[80], &[], "hosts[0]"),
            (&["a.*.com"], &[80], &[], "hosts[0]"),
            (&["a.com"], &[], &[], "ports"),
            (&["a.com"], &[0], &[], "ports[0].number"),
            (&["a.com"], &[80], &["~", "x"], "exportTo"),
        ];
        for (hosts, ports, export, field) in cases {
            let err = entry(hosts, ports, export).unwrap_err().to_string();
            assert!(err.contains(field), "{field}: {err}");
        }
    }
}
