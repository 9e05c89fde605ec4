//! `meshguard convert`: kubectl YAML of supported resources -> a plugin configuration (JSON) or
//! a WasmPlugin manifest (YAML serialized from typed structs), refusing output that would not load.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{json, Value};

use meshguard_core::error::ConfigPath;
use meshguard_core::plugin::plugin_config::NodeInfo;

use meshguard_core::authn::request_authentication::{Keys, RemoteJwks};

use crate::documents::{is_resource, is_wasmplugin, kind, load_value, read_documents, Unit};
use crate::{ConvertArgs, ConvertTo, Fail};

const VERSION: &str = env!("CARGO_PKG_VERSION");
const IMAGE: &str = "oci://ghcr.io/meshguard/meshguard";

pub fn convert(args: &ConvertArgs) -> Result<u8, Fail> {
    let namespace = args.namespace.as_deref();
    let selector = args.selector();
    let mut resources = Vec::new();
    for file in &args.files {
        let docs = read_documents(file).map_err(|e| Fail(format!("{file}: {e}")))?;
        for (i, doc) in docs.into_iter().enumerate() {
            collect_resources(doc, namespace, &mut resources)
                .map_err(|e| Fail(format!("{file} (document {}): {e}", i + 1)))?;
        }
    }
    if resources.is_empty() {
        return Err(Fail("meshguard convert: no resources found".to_string()));
    }
    if let Some(ns) = namespace {
        for r in &resources {
            let rns = r.pointer("/metadata/namespace").and_then(Value::as_str);
            if rns.is_some_and(|r| r != ns && r != "istio-system") {
                eprintln!(
                    "warning: {} {}: namespace {} is neither {ns} nor the root namespace: it \
                    never applies to workloads of {ns}",
                    kind(r).unwrap_or("?"),
                    r.pointer("/metadata/name")
                        .and_then(Value::as_str)
                        .unwrap_or("?"),
                    rns.unwrap_or("?"),
                );
            }
        }
    }
    let config = json!({ "resources": resources });
    // The output must load: refuse to write a configuration Envoy would refuse.
    let node = NodeInfo {
        namespace: namespace.map(str::to_string),
        labels: (!selector.is_empty()).then(|| selector.clone().into_iter().collect()),
    };
    let remote = match load_value(&config, &node) {
        Ok(_) => remote_jwks_clusters(&resources, &node),
        Err(e) => {
            let unit = Unit {
                label: "meshguard convert".to_string(),
                config: Value::Null,
                prefix: ConfigPath::root(),
                documents: Vec::new(),
                warnings: Vec::new(),
            };
            return Err(Fail(unit.error_text(&e)));
        }
    };
    let text = if args.to == ConvertTo::Config {
        let mut s = serde_json::to_string_pretty(&config).unwrap_or_default();
        s.push('\n');
        s
    } else {
        let sha256 = match args.sha256.as_deref() {
            Some(d) => {
                let hex = d.strip_prefix("sha256:").unwrap_or(d);
                if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
                    return Err(Fail(format!(
                        "meshguard convert: --sha256 must be 64 lower-case hex digits (the image \
                        manifest digest), got `{d}`"
                    )));
                }
                Some(hex.to_string())
            }
            None => None,
        };
        let mut text =
            wasmplugin_yaml(&args.name, namespace, &selector, sha256.as_deref(), &config)?;
        for r in &remote {
            text.push_str(&jwks_egress_yaml(r, namespace)?);
        }
        text
    };
    match args.output.as_deref() {
        None | Some("-") => print!("{text}"),
        Some(out) => std::fs::write(out, text)
            .map_err(|e| Fail(format!("meshguard convert: cannot write {out}: {e}")))?,
    }
    Ok(0)
}

/// Adds one document's resources (a v1 List is flattened), keeping only what the loader
/// reads: server-set metadata, `status` and kubectl's last-applied annotation are dropped.
fn collect_resources(
    doc: Value,
    namespace: Option<&str>,
    out: &mut Vec<Value>,
) -> Result<(), String> {
    if kind(&doc) == Some("List") {
        let Some(Value::Array(items)) = doc.get("items").cloned() else {
            return Err("a v1 List needs an items array".to_string());
        };
        for item in items {
            collect_resources(item, namespace, out)?;
        }
        return Ok(());
    }
    if !is_resource(&doc) {
        return Err("expected a Kubernetes resource (apiVersion and kind)".to_string());
    }
    if is_wasmplugin(&doc) {
        return Err("a WasmPlugin cannot be converted; lint it instead".to_string());
    }
    let Value::Object(mut object) = doc else {
        return Err("expected an object".to_string());
    };
    object.remove("status");
    if let Some(Value::Object(meta)) = object.get_mut("metadata") {
        meta.retain(|k, _| matches!(k.as_str(), "name" | "namespace" | "annotations"));
        if let Some(Value::Object(annotations)) = meta.get_mut("annotations") {
            annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
            if annotations.is_empty() {
                meta.remove("annotations");
            }
        }
        if let Some(ns) = namespace {
            // What `kubectl apply -n NS` does with an object without a namespace.
            meta.entry("namespace").or_insert_with(|| json!(ns));
        }
    }
    out.push(Value::Object(object));
    Ok(())
}

/// An Istio `extensions.istio.io/v1alpha1` WasmPlugin, as `convert` writes it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WasmPlugin<'a> {
    api_version: &'static str,
    kind: &'static str,
    metadata: ObjectMeta<'a>,
    spec: WasmPluginSpec<'a>,
}

#[derive(Serialize)]
struct ObjectMeta<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WasmPluginSpec<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    selector: Option<WorkloadSelector<'a>>,
    url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    sha256: Option<&'a str>,
    #[serde(rename = "type")]
    plugin_type: &'static str,
    phase: &'static str,
    priority: u32,
    fail_strategy: &'static str,
    #[serde(rename = "match")]
    traffic: Vec<TrafficSelector>,
    plugin_config: &'a Value,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WorkloadSelector<'a> {
    match_labels: &'a BTreeMap<String, String>,
}

#[derive(Serialize)]
struct TrafficSelector {
    mode: &'static str,
}

const GENERATED_HEADER: &str = "\
# Generated by `meshguard convert` {VERSION}. phase AUTHZ: after Istio's jwt_authn, before \
Istio's RBAC;
# FAIL_CLOSE: a failed VM denies; mode SERVER: sidecar inbound only. Pin the image with
# `sha256: <manifest digest>` (`make oci` prints it).
";

fn wasmplugin_yaml(
    name: &str,
    namespace: Option<&str>,
    selector: &BTreeMap<String, String>,
    sha256: Option<&str>,
    config: &Value,
) -> Result<String, Fail> {
    let manifest = WasmPlugin {
        api_version: "extensions.istio.io/v1alpha1",
        kind: "WasmPlugin",
        metadata: ObjectMeta { name, namespace },
        spec: WasmPluginSpec {
            selector: (!selector.is_empty()).then_some(WorkloadSelector {
                match_labels: selector,
            }),
            url: format!("{IMAGE}:{VERSION}"),
            sha256,
            plugin_type: "HTTP",
            phase: "AUTHZ",
            priority: 100,
            fail_strategy: "FAIL_CLOSE",
            traffic: vec![TrafficSelector { mode: "SERVER" }],
            plugin_config: config,
        },
    };
    let body =
        serde_saphyr::to_string(&manifest).map_err(|e| Fail(format!("meshguard convert: {e}")))?;
    Ok(format!(
        "{}{body}",
        GENERATED_HEADER.replace("{VERSION}", VERSION)
    ))
}

/// The remote JWKS of every RequestAuthentication in the input, whichever workload it selects,
/// fetched through Istio's default `outbound|<port>||<host>` cluster; one per cluster. Each is
/// compiled by the core alone, without its selector, so the URI-to-cluster rule is the filter's.
fn remote_jwks_clusters(resources: &[Value], node: &NodeInfo) -> Vec<RemoteJwks> {
    let mut out: Vec<RemoteJwks> = Vec::new();
    for r in resources
        .iter()
        .filter(|r| kind(r) == Some("RequestAuthentication"))
    {
        let mut r = r.clone();
        if let Some(Value::Object(spec)) = r.get_mut("spec") {
            for field in ["selector", "targetRef", "targetRefs"] {
                spec.remove(field);
            }
        }
        let Ok((engine, _)) = load_value(&json!({ "resources": [r] }), node) else {
            continue;
        };
        for p in engine.authenticator().providers() {
            if let Keys::Remote(remote) = &p.keys {
                let default_cluster = remote.cluster.starts_with("outbound|");
                if default_cluster && !out.iter().any(|o| o.cluster == remote.cluster) {
                    out.push(remote.clone());
                }
            }
        }
    }
    out
}

/// The cluster a `jwksUri` needs in the sidecar: the filter fetches the keys itself with a
/// plain-HTTP `dispatch_http_call` to `outbound|<port>||<host>`, which exists only for a
/// service Istio knows; a ServiceEntry declares the host (port protocol HTTP, so the call is
/// routed as HTTP) and, for `https`, a DestinationRule makes the sidecar originate TLS to it
/// (mode SIMPLE, SNI the host). Istio's own RequestAuthentication needs none of this because
/// istiod fetches the keys.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Resource<'a, S> {
    api_version: &'static str,
    kind: &'static str,
    metadata: ObjectMeta<'a>,
    spec: S,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ServiceEntrySpec<'a> {
    hosts: [&'a str; 1],
    location: &'static str,
    resolution: &'static str,
    ports: [ServicePort; 1],
    export_to: [&'static str; 1],
}

#[derive(Serialize)]
struct ServicePort {
    number: u16,
    name: String,
    protocol: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DestinationRuleSpec<'a> {
    host: &'a str,
    traffic_policy: TrafficPolicy<'a>,
    export_to: [&'static str; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TrafficPolicy<'a> {
    port_level_settings: [PortSettings<'a>; 1],
}

#[derive(Serialize)]
struct PortSettings<'a> {
    port: PortSelector,
    tls: ClientTls<'a>,
}

#[derive(Serialize)]
struct PortSelector {
    number: u16,
}

#[derive(Serialize)]
struct ClientTls<'a> {
    mode: &'static str,
    sni: &'a str,
}

fn jwks_egress_yaml(r: &RemoteJwks, namespace: Option<&str>) -> Result<String, Fail> {
    let mut fields = r.cluster.split('|');
    let port: u16 = fields.nth(1).and_then(|p| p.parse().ok()).unwrap_or(443);
    let host = fields.nth(1).unwrap_or(&r.authority);
    let https = r.uri.starts_with("https://");
    let name = format!("meshguard-jwks-{}", host.replace('.', "-"));
    let mut out = format!(
        "---\n# {} is fetched by meshguard from the sidecar through cluster {}: this \
        ServiceEntry{} declare{} it.\n",
        r.uri,
        r.cluster,
        if https {
            " and DestinationRule (TLS origination)"
        } else {
            ""
        },
        if https { "" } else { "s" },
    );
    let entry = Resource {
        api_version: "networking.istio.io/v1",
        kind: "ServiceEntry",
        metadata: ObjectMeta {
            name: &name,
            namespace,
        },
        spec: ServiceEntrySpec {
            hosts: [host],
            location: "MESH_EXTERNAL",
            resolution: "DNS",
            ports: [ServicePort {
                number: port,
                name: format!("http-jwks-{port}"),
                protocol: "HTTP",
            }],
            export_to: ["."],
        },
    };
    out.push_str(&to_yaml(&entry)?);
    if https {
        let rule = Resource {
            api_version: "networking.istio.io/v1",
            kind: "DestinationRule",
            metadata: ObjectMeta {
                name: &name,
                namespace,
            },
            spec: DestinationRuleSpec {
                host,
                traffic_policy: TrafficPolicy {
                    port_level_settings: [PortSettings {
                        port: PortSelector { number: port },
                        tls: ClientTls {
                            mode: "SIMPLE",
                            sni: host,
                        },
                    }],
                },
                export_to: ["."],
            },
        };
        out.push_str("---\n");
        out.push_str(&to_yaml(&rule)?);
    }
    Ok(out)
}

fn to_yaml<T: Serialize>(value: &T) -> Result<String, Fail> {
    serde_saphyr::to_string(value).map_err(|e| Fail(format!("meshguard convert: {e}")))
}
