//! The CLI's input: files of JSON or YAML documents (YAML through serde-saphyr, a maintained,
//! panic-free pure-Rust parser), classified into plugin configurations ([`Unit`]s) with the
//! labels that error messages name, and loaded through the core's `plugin_config::load`.

use std::io::Read;

use serde_json::{json, Value};

use meshguard_core::authn::request_authentication::Keys;
use meshguard_core::error::{ConfigError, ConfigPath};
use meshguard_core::plugin::engine::Engine;
use meshguard_core::plugin::plugin_config::{load, LoadReport, NodeInfo, WorkloadSource};

/// One document of an input file, as JSON.
pub fn read_documents(file: &str) -> Result<Vec<Value>, String> {
    let text = if file == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| format!("cannot read standard input: {e}"))?;
        s
    } else {
        std::fs::read_to_string(file).map_err(|e| format!("cannot read: {e}"))?
    };
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') {
        let value: Value =
            serde_json::from_str(&text).map_err(|e| format!("not valid JSON: {e}"))?;
        return Ok(vec![value]);
    }
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(&text).map_err(|e| format!("not valid YAML: {e}"))?;
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
}

pub fn kind(doc: &Value) -> Option<&str> {
    doc.get("kind").and_then(Value::as_str)
}

pub fn is_resource(doc: &Value) -> bool {
    doc.get("apiVersion").is_some() && doc.get("kind").is_some()
}

pub fn is_wasmplugin(doc: &Value) -> bool {
    kind(doc) == Some("WasmPlugin")
        && doc
            .get("apiVersion")
            .and_then(Value::as_str)
            .is_some_and(|a| a.starts_with("extensions.istio.io/"))
}

/// A plugin configuration found in a file, and how to name its fields in messages.
pub struct Unit {
    /// Shown before each message: the file, plus the document for multi-document files.
    pub label: String,
    pub config: Value,
    /// Where the plugin configuration sits in the document (`spec.pluginConfig` for a
    /// WasmPlugin); the loader's field paths are relative to it.
    pub prefix: ConfigPath,
    /// For wrapped resource streams: the document number of `resources[i]`.
    pub documents: Vec<usize>,
    pub warnings: Vec<String>,
}

impl Unit {
    pub fn error_text(&self, e: &ConfigError) -> String {
        let path = self.prefix.clone().join(e.path.clone());
        let mut text = if path.is_empty() {
            format!("{}: {}", self.label, e.reason)
        } else {
            format!("{}: {path}: {}", self.label, e.reason)
        };
        if let Some(doc) = e.path.resource_index().and_then(|i| self.documents.get(i)) {
            text.push_str(&format!(" (document {doc})"));
        }
        text
    }
}

/// Splits a file into plugin configurations: every WasmPlugin and every plain configuration
/// is one; all other Kubernetes resources together form one (`{"resources": [...]}`).
pub fn units(file: &str) -> Result<Vec<Unit>, String> {
    let docs = read_documents(file)?;
    if docs.is_empty() {
        return Err("no document found".to_string());
    }
    let many = docs.len() > 1;
    let label = |i: usize| {
        if many {
            format!("{file} (document {})", i + 1)
        } else {
            file.to_string()
        }
    };
    let mut out = Vec::new();
    let mut resources = Vec::new();
    let mut documents = Vec::new();
    for (i, doc) in docs.into_iter().enumerate() {
        if is_wasmplugin(&doc) {
            out.push(wasmplugin_unit(label(i), &doc));
        } else if is_resource(&doc) {
            resources.push(doc);
            documents.push(i + 1);
        } else if doc.is_object() {
            out.push(Unit {
                label: label(i),
                config: doc,
                prefix: ConfigPath::root(),
                documents: Vec::new(),
                warnings: Vec::new(),
            });
        } else {
            return Err(format!(
                "document {}: expected a plugin configuration, a WasmPlugin or Kubernetes \
                resources",
                i + 1
            ));
        }
    }
    if !resources.is_empty() {
        out.push(Unit {
            label: file.to_string(),
            config: json!({ "resources": resources }),
            prefix: ConfigPath::root(),
            documents: if many { documents } else { Vec::new() },
            warnings: Vec::new(),
        });
    }
    Ok(out)
}

pub fn wasmplugin_unit(label: String, doc: &Value) -> Unit {
    let spec = doc.get("spec");
    let mut warnings = Vec::new();
    let text = |field: &str| spec.and_then(|s| s.get(field)).and_then(Value::as_str);
    if text("failStrategy") == Some("FAIL_OPEN") {
        warnings.push(format!(
            "{label}: spec.failStrategy: FAIL_OPEN skips authorization when the VM fails; use \
            FAIL_CLOSE"
        ));
    }
    if !matches!(text("phase"), Some("AUTHN" | "AUTHZ")) {
        warnings.push(format!(
            "{label}: spec.phase: use AUTHZ (or AUTHN): other phases run after Istio's RBAC"
        ));
    }
    let config = match spec.and_then(|s| s.get("pluginConfig")) {
        None | Some(Value::Null) => {
            warnings.push(format!(
                "{label}: spec.pluginConfig: absent: the filter gets an empty configuration (no \
                policies)"
            ));
            json!({})
        }
        Some(v) => v.clone(),
    };
    Unit {
        label,
        config,
        prefix: ConfigPath::root().field("spec").field("pluginConfig"),
        documents: Vec::new(),
        warnings,
    }
}

pub fn load_value(config: &Value, node: &NodeInfo) -> Result<(Engine, LoadReport), ConfigError> {
    let bytes = serde_json::to_vec(config).unwrap_or_default();
    load(&bytes, node)
}

pub fn describe_workload(report: &LoadReport) -> String {
    let labels: Vec<String> = report
        .workload
        .labels()
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let source = match report.workload_source {
        WorkloadSource::Config => "from the configuration",
        WorkloadSource::NodeMetadata => "from --namespace/--label",
        WorkloadSource::Default => "default: Istio's node metadata decides at run time",
    };
    format!(
        "{} {{{}}} ({source})",
        report.workload.namespace(),
        labels.join(",")
    )
}

pub fn remote_jwks(engine: &Engine) -> Vec<String> {
    engine
        .authenticator()
        .providers()
        .iter()
        .filter_map(|p| match &p.keys {
            Keys::Remote(r) => Some(r.uri.clone()),
            Keys::Inline(_) => None,
        })
        .collect()
}
