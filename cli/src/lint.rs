//! `meshguard lint`: every WasmPlugin in the files matches Istio's WasmPlugin CRD (as the API
//! server's strict validation applies it, [`crate::crd`]) and every plugin configuration loads,
//! or each error names the field. All errors of all documents are reported; directories are
//! read recursively (`*.yaml`, `*.yml`, `*.json`); `--output json` prints one JSON report.

use std::path::Path;

use serde::Serialize;
use serde_json::{json, Value};

use meshguard_core::error::{ConfigError, ConfigPath, PathSegment};
use meshguard_core::plugin::engine::Engine;
use meshguard_core::plugin::plugin_config::{LoadReport, NodeInfo};

use crate::crd::{validate_wasmplugin, wasmplugin_schema};
use crate::documents::{
    describe_workload, is_resource, is_wasmplugin, kind, load_value, read_documents, remote_jwks,
    wasmplugin_unit, Unit,
};
use crate::{Fail, LintArgs, LintOutput};

/// One line of the report.
#[derive(Debug, Serialize)]
struct Finding {
    file: String,
    /// 1-based document number in the file (absent for a single-document file).
    #[serde(skip_serializing_if = "Option::is_none")]
    document: Option<usize>,
    /// `error`, `warning`, `skipped` or `ok`.
    level: &'static str,
    message: String,
}

struct Report {
    findings: Vec<Finding>,
}

impl Report {
    fn push(&mut self, file: &str, document: Option<usize>, level: &'static str, message: String) {
        self.findings.push(Finding {
            file: file.to_string(),
            document,
            level,
            message,
        });
    }

    fn count(&self, level: &str) -> usize {
        self.findings.iter().filter(|f| f.level == level).count()
    }
}

pub fn lint(args: &LintArgs) -> Result<u8, Fail> {
    let schema = wasmplugin_schema()?;
    let node = args.node.node();
    let mut report = Report {
        findings: Vec::new(),
    };
    for file in expand(&args.files, &mut report) {
        lint_file(&file, &schema, &node, args.skip_unknown_kinds, &mut report);
    }
    let errors = report.count("error");
    match args.output {
        LintOutput::Text => {
            for f in &report.findings {
                match f.level {
                    "ok" => println!("{}", f.message),
                    "warning" => eprintln!("warning: {}", f.message),
                    "skipped" => eprintln!("skipped: {}", f.message),
                    _ => eprintln!("{}", f.message),
                }
            }
        }
        LintOutput::Json => {
            let out = json!({
                "valid": errors == 0,
                "errors": errors,
                "warnings": report.count("warning"),
                "findings": report.findings,
            });
            println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
        }
    }
    Ok(u8::from(errors > 0))
}

/// Files as given; a directory becomes its `*.yaml`, `*.yml` and `*.json` files, recursively,
/// in name order.
fn expand(inputs: &[String], report: &mut Report) -> Vec<String> {
    let mut out = Vec::new();
    for input in inputs {
        let path = Path::new(input);
        if input != "-" && path.is_dir() {
            let before = out.len();
            walk_dir(path, &mut out, report);
            if out.len() == before {
                report.push(
                    input,
                    None,
                    "error",
                    format!("{input}: no *.yaml, *.yml or *.json file in the directory"),
                );
            }
        } else {
            out.push(input.clone());
        }
    }
    out
}

fn walk_dir(dir: &Path, out: &mut Vec<String>, report: &mut Report) {
    let shown = dir.display().to_string();
    let mut entries: Vec<_> = match std::fs::read_dir(dir) {
        Ok(rd) => rd.filter_map(Result::ok).map(|e| e.path()).collect(),
        Err(e) => {
            report.push(&shown, None, "error", format!("{shown}: cannot read: {e}"));
            return;
        }
    };
    entries.sort();
    for path in entries {
        if path.is_dir() {
            walk_dir(&path, out, report);
        } else if path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"))
        {
            out.push(path.display().to_string());
        }
    }
}

fn lint_file(file: &str, schema: &Value, node: &NodeInfo, skip: bool, report: &mut Report) {
    let docs = match read_documents(file) {
        Ok(d) if d.is_empty() => {
            report.push(file, None, "error", format!("{file}: no document found"));
            return;
        }
        Ok(d) => d,
        Err(e) => {
            report.push(file, None, "error", format!("{file}: {e}"));
            return;
        }
    };
    let many = docs.len() > 1;
    let number = |i: usize| many.then_some(i + 1);
    let label = |i: usize| {
        if many {
            format!("{file} (document {})", i + 1)
        } else {
            file.to_string()
        }
    };
    let mut resources: Vec<(usize, Value)> = Vec::new();
    for (i, doc) in docs.into_iter().enumerate() {
        if is_wasmplugin(&doc) {
            for e in validate_wasmplugin(&doc, schema) {
                report.push(file, number(i), "error", format!("{}: {e}", label(i)));
            }
            let unit = wasmplugin_unit(label(i), &doc);
            load_unit(&unit, node, number(i), file, report);
        } else if is_resource(&doc) {
            resources.push((i, doc));
        } else if doc.is_object() {
            let unit = plain_unit(label(i), doc);
            load_unit(&unit, node, number(i), file, report);
        } else {
            report.push(
                file,
                number(i),
                "error",
                format!(
                    "{}: expected a plugin configuration, a WasmPlugin or Kubernetes resources",
                    label(i)
                ),
            );
        }
    }
    if !resources.is_empty() {
        lint_resources(file, many, resources, node, skip, report);
    }
}

fn plain_unit(label: String, config: Value) -> Unit {
    Unit {
        label,
        config,
        prefix: ConfigPath::root(),
        documents: Vec::new(),
        warnings: Vec::new(),
    }
}

/// The file's Kubernetes resources: each one alone first, so every document's error is reported,
/// then all together (one plugin configuration, as `check` and `convert` read them).
fn lint_resources(
    file: &str,
    many: bool,
    resources: Vec<(usize, Value)>,
    node: &NodeInfo,
    skip: bool,
    report: &mut Report,
) {
    let mut kept: Vec<(usize, Value)> = Vec::new();
    let mut failed = false;
    for (i, doc) in resources {
        let alone = json!({ "resources": [doc] });
        match load_value(&alone, node) {
            Ok(_) => kept.push((i, doc)),
            Err(e) if skip && is_unsupported_kind(&e) => {
                let name = doc
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                report.push(
                    file,
                    many.then_some(i + 1),
                    "skipped",
                    format!(
                        "{file}: document {}: {} {name}: a kind meshguard does not handle",
                        i + 1,
                        kind(&doc).unwrap_or("")
                    ),
                );
            }
            Err(e) => {
                failed = true;
                let index = kept.len();
                let e = ConfigError::new(e.path.with_resource_index(index), e.reason);
                // error_text names `(document N)` from the unit's document list.
                let mut documents = Vec::new();
                if many {
                    documents.resize(index, 0);
                    documents.push(i + 1);
                }
                let unit = Unit {
                    documents,
                    ..plain_unit(file.to_string(), Value::Null)
                };
                report.push(file, many.then_some(i + 1), "error", unit.error_text(&e));
                kept.push((i, doc));
            }
        }
    }
    if failed || kept.is_empty() {
        return;
    }
    let documents = if many {
        kept.iter().map(|(i, _)| i + 1).collect()
    } else {
        Vec::new()
    };
    let unit = Unit {
        config: json!({ "resources": kept.into_iter().map(|(_, d)| d).collect::<Vec<_>>() }),
        documents,
        ..plain_unit(file.to_string(), Value::Null)
    };
    load_unit(&unit, node, None, file, report);
}

/// The loader's answer to a kind it has no compiler for (`resources[0].kind: unsupported ...`).
fn is_unsupported_kind(e: &ConfigError) -> bool {
    e.path.resource_index() == Some(0)
        && e.path.segments().get(2) == Some(&PathSegment::Field("kind".into()))
        && e.path.segments().len() == 3
        && e.reason.starts_with("unsupported resource")
}

fn load_unit(unit: &Unit, node: &NodeInfo, document: Option<usize>, file: &str, r: &mut Report) {
    for w in &unit.warnings {
        r.push(file, document, "warning", w.clone());
    }
    match load_value(&unit.config, node) {
        Ok((engine, load)) => r.push(file, document, "ok", summary(&unit.label, &engine, &load)),
        Err(e) => r.push(file, document, "error", unit.error_text(&e)),
    }
}

fn summary(label: &str, engine: &Engine, report: &LoadReport) -> String {
    let remote = remote_jwks(engine);
    format!(
        "{label}: ok: {} resources, {} applied, {} rules; workload {}{}",
        report.resources,
        report.applied_policies,
        engine.rule_count(),
        describe_workload(report),
        if remote.is_empty() {
            String::new()
        } else {
            format!("; remote JWKS: {}", remote.join(", "))
        }
    )
}
