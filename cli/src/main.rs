//! `meshguard`: the command line next to the filter, built from the same engine.
//!
//! ```text
//! meshguard lint FILE...                 validate plugin configurations, WasmPlugins, kubectl YAML
//! meshguard check CONFIG [request...]    decide one request as the filter would (exit 0/2)
//! meshguard convert FILE... [--to ...]   kubectl YAML of policies -> plugin config or WasmPlugin
//! ```
//!
//! Native only: on wasm32 this binary is an empty `main` (and `make build` builds `--lib`).

#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
fn main() -> std::process::ExitCode {
    native::main()
}

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::collections::BTreeMap;
    use std::io::Read;
    use std::net::IpAddr;
    use std::process::ExitCode;
    use std::time::{SystemTime, UNIX_EPOCH};

    use serde::Deserialize;
    use serde_json::{json, Map, Value};

    use std::cell::RefCell;

    use meshguard_core::authn::authenticator::{AuthnState, Outcome};
    use meshguard_core::authn::request_authentication::Keys;
    use meshguard_core::error::ConfigError;
    use meshguard_core::plugin::engine::{DryRun, Engine, Verdict};
    use meshguard_core::plugin::plugin_config::{
        load, JwtSource, LoadReport, NodeInfo, WorkloadSource,
    };
    use meshguard_core::plugin::request_pipeline::{decide_request, PipelineRequest, Side, Stage};
    use meshguard_core::request::path_normalization::{PathNormalization, PathRejected};
    use meshguard_core::request::peer::Peer;
    use meshguard_core::request::request_view::{Headers, StaticConnection};

    const VERSION: &str = env!("CARGO_PKG_VERSION");
    const IMAGE: &str = "oci://ghcr.io/meshguard/meshguard";

    const USAGE: &str = "\
usage:
  meshguard lint FILE... [--namespace NS] [--label k=v]...
      Validate plugin configurations (JSON or YAML), WasmPlugin manifests (spec.pluginConfig) or
      kubectl YAML streams / v1 Lists of AuthorizationPolicy and RequestAuthentication resources.
      Errors name the field: `FILE: path: reason`. Exit 0 valid, 1 invalid.
  meshguard check CONFIG [--method GET] [--path /] [--host H] [--header k=v]...
                  [--principal spiffe://TD/ns/NS/sa/SA] [--source-ip IP] [--remote-ip IP]
                  [--port N] [--sni S] [--jwt TOKEN] [--claims JSON] [--now UNIX_SECS]
                  [--namespace NS] [--label k=v]... [--json]
      Decide one request as the filter would: the decision, the deciding rule, the dry-run
      result and the AUDIT match. Exit 0 allowed, 2 denied (403, or 401 for a bad token), 1 error.
  meshguard convert FILE... [--to wasmplugin|config] [--name N] [--namespace NS]
                  [--selector k=v]... [--sha256 DIGEST] [-o OUT]
      Turn kubectl YAML (multi-document or v1 List) of supported resources into a plugin
      configuration (JSON) or a WasmPlugin manifest (YAML, the default).

--namespace/--label for lint and check stand for Istio's node metadata (NAMESPACE, LABELS),
used when the configuration has no `workload`. FILE `-` reads standard input.";

    /// A user-facing failure: printed as is, exit 1.
    struct Fail(String);

    impl From<String> for Fail {
        fn from(s: String) -> Fail {
            Fail(s)
        }
    }

    pub fn main() -> ExitCode {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let Some((command, rest)) = args.split_first() else {
            eprintln!("{USAGE}");
            return ExitCode::from(1);
        };
        let result = match command.as_str() {
            "lint" => lint(rest),
            "check" => check(rest),
            "convert" => convert(rest),
            "help" | "-h" | "--help" => {
                println!("{USAGE}");
                Ok(0)
            }
            "version" | "-V" | "--version" => {
                println!("meshguard {VERSION}");
                Ok(0)
            }
            other => Err(Fail(format!(
                "meshguard: unknown command `{other}`\n\n{USAGE}"
            ))),
        };
        match result {
            Ok(code) => ExitCode::from(code),
            Err(Fail(message)) => {
                eprintln!("{message}");
                ExitCode::from(1)
            }
        }
    }

    // ------------------------------------------------------------------------------------------
    // Arguments

    /// Hand-rolled option parsing: `--opt VALUE`, `--opt=VALUE`, flags, positionals.
    struct Args {
        positional: Vec<String>,
        options: Vec<(String, String)>,
        flags: Vec<String>,
    }

    impl Args {
        fn parse(args: &[String], with_value: &[&str], flags: &[&str]) -> Result<Args, Fail> {
            let mut out = Args {
                positional: Vec::new(),
                options: Vec::new(),
                flags: Vec::new(),
            };
            let mut iter = args.iter();
            while let Some(arg) = iter.next() {
                if arg == "--" {
                    out.positional.extend(iter.by_ref().cloned());
                    break;
                }
                if arg.starts_with('-') && arg != "-" {
                    let (name, inline) = match arg.split_once('=') {
                        Some((n, v)) => (n, Some(v.to_string())),
                        None => (arg.as_str(), None),
                    };
                    if with_value.contains(&name) {
                        let value = match inline {
                            Some(v) => v,
                            None => iter
                                .next()
                                .cloned()
                                .ok_or_else(|| Fail(format!("meshguard: {name} needs a value")))?,
                        };
                        out.options.push((name.to_string(), value));
                    } else if flags.contains(&name) && inline.is_none() {
                        out.flags.push(name.to_string());
                    } else {
                        return Err(Fail(format!(
                            "meshguard: unknown option `{arg}`\n\n{USAGE}"
                        )));
                    }
                } else {
                    out.positional.push(arg.clone());
                }
            }
            Ok(out)
        }

        fn last(&self, name: &str) -> Option<&str> {
            self.options
                .iter()
                .rev()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        }

        fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
            self.options
                .iter()
                .filter(move |(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        }

        fn flag(&self, name: &str) -> bool {
            self.flags.iter().any(|f| f == name)
        }

        fn pairs(&self, name: &str) -> Result<BTreeMap<String, String>, Fail> {
            let mut out = BTreeMap::new();
            for value in self.all(name) {
                let (k, v) = split_pair(value)
                    .ok_or_else(|| Fail(format!("meshguard: {name} expects k=v, got `{value}`")))?;
                out.insert(k.to_string(), v.to_string());
            }
            Ok(out)
        }

        /// Istio node metadata stand-in for configurations without `workload`.
        fn node(&self) -> Result<NodeInfo, Fail> {
            let labels = self.pairs("--label")?;
            Ok(NodeInfo {
                namespace: self.last("--namespace").map(str::to_string),
                labels: (!labels.is_empty()).then_some(labels),
            })
        }
    }

    /// `name=value` or `name: value`, split at whichever separator comes first (a pseudo-header's
    /// leading `:` is part of its name).
    fn split_header(h: &str) -> Option<(&str, &str)> {
        let start = usize::from(h.starts_with(':'));
        let at = h.get(start..)?.find(['=', ':'])? + start;
        let name = h.get(..at)?.trim();
        let value = h.get(at + 1..)?.trim_start();
        (!name.is_empty()).then_some((name, value))
    }

    fn split_pair(s: &str) -> Option<(&str, &str)> {
        let (k, v) = s.split_once('=')?;
        (!k.is_empty()).then_some((k, v))
    }

    // ------------------------------------------------------------------------------------------
    // Input: JSON or YAML documents, classified into plugin configurations

    /// One document of an input file, as JSON.
    fn read_documents(file: &str) -> Result<Vec<Value>, String> {
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
        let mut docs = Vec::new();
        for (i, doc) in serde_yaml::Deserializer::from_str(&text).enumerate() {
            let value = Value::deserialize(doc)
                .map_err(|e| format!("document {}: not valid YAML: {e}", i + 1))?;
            if !value.is_null() {
                docs.push(value);
            }
        }
        Ok(docs)
    }

    fn kind(doc: &Value) -> Option<&str> {
        doc.get("kind").and_then(Value::as_str)
    }

    fn is_resource(doc: &Value) -> bool {
        doc.get("apiVersion").is_some() && doc.get("kind").is_some()
    }

    fn is_wasmplugin(doc: &Value) -> bool {
        kind(doc) == Some("WasmPlugin")
            && doc
                .get("apiVersion")
                .and_then(Value::as_str)
                .is_some_and(|a| a.starts_with("extensions.istio.io/"))
    }

    /// A plugin configuration found in a file, and how to name its fields in messages.
    struct Unit {
        /// Shown before each message: the file, plus the document for multi-document files.
        label: String,
        config: Value,
        /// Prefix for the loader's field paths (`spec.pluginConfig` for a WasmPlugin).
        prefix: &'static str,
        /// For wrapped resource streams: the document number of `resources[i]`.
        documents: Vec<usize>,
        /// Problems of the surrounding manifest (not of the plugin configuration).
        errors: Vec<String>,
        warnings: Vec<String>,
    }

    impl Unit {
        fn error_text(&self, e: &ConfigError) -> String {
            let mut path = e.path.clone();
            if !self.prefix.is_empty() {
                path = if path.is_empty() {
                    self.prefix.to_string()
                } else {
                    format!("{}.{path}", self.prefix)
                };
            }
            let mut text = if path.is_empty() {
                format!("{}: {}", self.label, e.reason)
            } else {
                format!("{}: {path}: {}", self.label, e.reason)
            };
            if let Some(doc) = resource_index(&e.path).and_then(|i| self.documents.get(i)) {
                text.push_str(&format!(" (document {doc})"));
            }
            text
        }
    }

    /// `resources[3].spec...` -> 3.
    fn resource_index(path: &str) -> Option<usize> {
        let rest = path.strip_prefix("resources[")?;
        rest.split(']').next()?.parse().ok()
    }

    /// Splits a file into plugin configurations: every WasmPlugin and every plain configuration
    /// is one; all other Kubernetes resources together form one (`{"resources": [...]}`).
    fn units(file: &str) -> Result<Vec<Unit>, String> {
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
                    prefix: "",
                    documents: Vec::new(),
                    errors: Vec::new(),
                    warnings: Vec::new(),
                });
            } else {
                return Err(format!(
                    "document {}: expected a plugin configuration, a WasmPlugin or Kubernetes resources",
                    i + 1
                ));
            }
        }
        if !resources.is_empty() {
            out.push(Unit {
                label: file.to_string(),
                config: json!({ "resources": resources }),
                prefix: "",
                documents: if many { documents } else { Vec::new() },
                errors: Vec::new(),
                warnings: Vec::new(),
            });
        }
        Ok(out)
    }

    fn wasmplugin_unit(label: String, doc: &Value) -> Unit {
        let spec = doc.get("spec");
        let mut errors = Vec::new();
        let mut warnings = Vec::new();
        if spec
            .and_then(|s| s.get("url"))
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            errors.push(format!("{label}: spec.url: required"));
        }
        let text = |field: &str| spec.and_then(|s| s.get(field)).and_then(Value::as_str);
        if text("failStrategy") == Some("FAIL_OPEN") {
            warnings.push(format!(
                "{label}: spec.failStrategy: FAIL_OPEN skips authorization when the VM fails; use FAIL_CLOSE"
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
                    "{label}: spec.pluginConfig: absent: the filter gets an empty configuration (no policies)"
                ));
                json!({})
            }
            Some(v) => v.clone(),
        };
        Unit {
            label,
            config,
            prefix: "spec.pluginConfig",
            documents: Vec::new(),
            errors,
            warnings,
        }
    }

    fn load_value(config: &Value, node: &NodeInfo) -> Result<(Engine, LoadReport), ConfigError> {
        let bytes = serde_json::to_vec(config).unwrap_or_default();
        load(&bytes, node)
    }

    fn describe_workload(report: &LoadReport) -> String {
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

    // ------------------------------------------------------------------------------------------
    // lint

    fn lint(args: &[String]) -> Result<u8, Fail> {
        let args = Args::parse(args, &["--namespace", "--label"], &[])?;
        if args.positional.is_empty() {
            return Err(Fail(format!("meshguard lint: no FILE given\n\n{USAGE}")));
        }
        let node = args.node()?;
        let mut failed = false;
        for file in &args.positional {
            let units = match units(file) {
                Ok(u) => u,
                Err(e) => {
                    eprintln!("{file}: {e}");
                    failed = true;
                    continue;
                }
            };
            for unit in units {
                for w in &unit.warnings {
                    eprintln!("warning: {w}");
                }
                for e in &unit.errors {
                    eprintln!("{e}");
                    failed = true;
                }
                match load_value(&unit.config, &node) {
                    Ok((engine, report)) => {
                        let remote = remote_jwks(&engine);
                        println!(
                            "{}: ok: {} resources, {} applied, {} rules; workload {}{}",
                            unit.label,
                            report.resources,
                            report.applied_policies,
                            engine.rule_count(),
                            describe_workload(&report),
                            if remote.is_empty() {
                                String::new()
                            } else {
                                format!("; remote JWKS: {}", remote.join(", "))
                            }
                        );
                    }
                    Err(e) => {
                        eprintln!("{}", unit.error_text(&e));
                        failed = true;
                    }
                }
            }
        }
        Ok(u8::from(failed))
    }

    fn remote_jwks(engine: &Engine) -> Vec<String> {
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

    // ------------------------------------------------------------------------------------------
    // check

    fn check(args: &[String]) -> Result<u8, Fail> {
        let args = Args::parse(
            args,
            &[
                "--method",
                "--path",
                "--host",
                "--header",
                "--principal",
                "--source-ip",
                "--remote-ip",
                "--port",
                "--sni",
                "--jwt",
                "--claims",
                "--now",
                "--namespace",
                "--label",
                "--direction",
                "--normalization",
            ],
            &["--json"],
        )?;
        let [file] = args.positional.as_slice() else {
            return Err(Fail(format!(
                "meshguard check: expected exactly one CONFIG\n\n{USAGE}"
            )));
        };
        let node = args.node()?;
        let mut units = units(file).map_err(|e| Fail(format!("{file}: {e}")))?;
        if units.len() != 1 {
            return Err(Fail(format!(
                "{file}: holds {} plugin configurations; check needs one",
                units.len()
            )));
        }
        let unit = units.remove(0);
        let (engine, report) =
            load_value(&unit.config, &node).map_err(|e| Fail(unit.error_text(&e)))?;

        // The request, as Envoy hands it to the filter.
        let method = args.last("--method").unwrap_or("GET").to_ascii_uppercase();
        let raw_path = args.last("--path").unwrap_or("/").to_string();
        let normalization = match args.last("--normalization") {
            None => PathNormalization::ISTIO_DEFAULT,
            Some(option) => PathNormalization::istio(option).ok_or_else(|| {
                Fail(format!(
                    "meshguard check: --normalization must be NONE, BASE, MERGE_SLASHES or DECODE_AND_MERGE_SLASHES, got `{option}`"
                ))
            })?,
        };
        let side = match args.last("--direction") {
            None => engine.settings().direction.side(|| None),
            Some("inbound") => Side::Inbound,
            Some("outbound") => Side::Outbound,
            Some(other) => {
                return Err(Fail(format!(
                    "meshguard check: --direction must be inbound or outbound, got `{other}`"
                )))
            }
        };
        // The HCM normalizes the path before any filter; a path it refuses never reaches one.
        let path = match normalization.apply(&raw_path) {
            Ok(p) => p,
            Err(PathRejected) => return Ok(path_rejected(&raw_path, args.flag("--json"))),
        };
        let host = args.last("--host").unwrap_or("localhost").to_string();
        let principal = args.last("--principal").map(|p| {
            if p.contains("://") {
                p.to_string()
            } else {
                format!("spiffe://{p}")
            }
        });
        let sni = args.last("--sni").map(str::to_string);
        let scheme = if principal.is_some() || sni.is_some() {
            "https"
        } else {
            "http"
        };
        let mut headers: Vec<(String, Vec<u8>)> = vec![
            (":method".into(), method.clone().into_bytes()),
            (":path".into(), path.clone().into_bytes()),
            (":authority".into(), host.into_bytes()),
            (":scheme".into(), scheme.as_bytes().to_vec()),
        ];
        for h in args.all("--header") {
            let (k, v) = split_header(h).ok_or_else(|| {
                Fail(format!(
                    "meshguard check: --header expects name=value or name:value, got `{h}`"
                ))
            })?;
            headers.push((k.to_ascii_lowercase(), v.as_bytes().to_vec()));
        }
        if let Some(token) = args.last("--jwt") {
            headers.push((
                "authorization".into(),
                format!("Bearer {token}").into_bytes(),
            ));
        }
        let ip = |name: &str| -> Result<Option<IpAddr>, Fail> {
            args.last(name)
                .map(|v| {
                    v.parse::<IpAddr>().map_err(|_| {
                        Fail(format!("meshguard check: {name}: not an IP address: `{v}`"))
                    })
                })
                .transpose()
        };
        let source_ip = ip("--source-ip")?;
        let connection = StaticConnection {
            peer: principal
                .as_ref()
                .map(|p| Peer::new(Some(p.clone().into_bytes()), None, None)),
            source_ip,
            // Without X-Forwarded-For handling Envoy's remote address is the peer's.
            remote_ip: ip("--remote-ip")?.or(source_ip),
            destination_port: args
                .last("--port")
                .map(|p| {
                    p.parse::<u16>()
                        .map_err(|_| Fail(format!("meshguard check: --port: not a port: `{p}`")))
                })
                .transpose()?,
            sni: sni.map(String::into_bytes),
            ..StaticConnection::default()
        };
        let now = match args.last("--now") {
            Some(n) => n
                .parse::<u64>()
                .map_err(|_| Fail(format!("meshguard check: --now: not UNIX seconds: `{n}`")))?,
            None => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        };

        // The notes on what the CLI cannot see.
        let mut notes = Vec::new();
        let remote = remote_jwks(&engine);
        if !remote.is_empty() {
            notes.push(format!(
                "remote JWKS are not fetched by the CLI ({}): tokens of those issuers get 401 `Jwks remote fetch is failed`; use an inline `jwks` to check them",
                remote.join(", ")
            ));
        }
        let claims = match args.last("--claims") {
            Some(text) => match serde_json::from_str::<Value>(text) {
                Ok(Value::Object(payload)) => Some(payload),
                _ => {
                    return Err(Fail(
                        "meshguard check: --claims must be a JSON object".into(),
                    ))
                }
            },
            None => None,
        };
        if engine.settings().jwt_source == JwtSource::EnvoyJwtAuthn {
            if claims.is_none() && args.last("--jwt").is_some() {
                notes.push("jwtSource is envoyJwtAuthn: Envoy's jwt_authn verifies tokens, not meshguard; pass the verified payload with --claims".to_string());
            }
        } else {
            if claims.is_some() {
                notes.push(
                    "--claims is ignored: jwtSource is filter, meshguard verifies --jwt itself"
                        .to_string(),
                );
            }
            if engine.authenticator().is_empty() && args.last("--jwt").is_some() {
                notes.push("no RequestAuthentication applies to the workload: the token is not checked and carries no identity".to_string());
            }
        }
        if path != raw_path {
            notes.push(format!(
                "path normalized as Envoy's HCM does ({}): {raw_path} -> {path}",
                args.last("--normalization")
                    .unwrap_or("Istio's default BASE")
            ));
        }
        if side == Side::Outbound {
            notes.push(
                "outbound side: only the Sidecar egress list applies (Istio enforces authentication and authorization inbound)"
                    .to_string(),
            );
        }

        // The same pipeline the filter runs.
        let jwt_authn_payload = || claims.clone();
        let request = PipelineRequest {
            headers: Headers::new(&headers),
            connection: &connection,
            side,
            now,
            jwt_authn_payload: &jwt_authn_payload,
        };
        let cache = RefCell::new(AuthnState::new(0));
        let outcome = decide_request(&engine, &request, &cache);
        let allowed = outcome.verdict == Verdict::Allow;
        let (status, body) = match &outcome.reply {
            Some(reply) => (reply.status, reply.body.clone()),
            None => (200, String::new()),
        };
        let (authn, decision) = match &outcome.stage {
            Stage::Authorized { authn, decision } => (Some(authn.clone()), Some(*decision)),
            Stage::TokenRejected(f) => (Some(Outcome::Rejected(*f)), None),
            Stage::EgressAllowed | Stage::EgressDenied { .. } | Stage::MtlsRequired { .. } => {
                (None, None)
            }
        };
        let summary = match &outcome.stage {
            Stage::Authorized { decision, .. } => decision.summary(),
            Stage::TokenRejected(f) => format!("deny jwt: {}", f.message()),
            _ => outcome.decision_state.clone().unwrap_or_default(),
        };
        let policy = match &outcome.stage {
            Stage::Authorized { decision, .. } => decision.policy,
            Stage::EgressDenied { sidecar, .. } => Some(*sidecar),
            Stage::MtlsRequired { source } => Some(*source),
            _ => None,
        };

        if args.flag("--json") {
            let request = json!({
                "method": method,
                "path": path,
                "rawPath": raw_path,
                "direction": side_name(side),
                "principal": principal,
                "sourceIp": connection.source_ip.map(|i| i.to_string()),
                "remoteIp": connection.remote_ip.map(|i| i.to_string()),
                "port": connection.destination_port,
            });
            let mut out = Map::new();
            out.insert("config".into(), json!(file));
            out.insert(
                "workload".into(),
                json!({
                    "namespace": report.workload.namespace(),
                    "labels": report.workload.labels(),
                }),
            );
            out.insert("request".into(), request);
            out.insert("authn".into(), authn_json(authn.as_ref()));
            out.insert(
                "decision".into(),
                json!(if allowed { "allow" } else { "deny" }),
            );
            out.insert("status".into(), json!(status));
            out.insert("body".into(), json!(body));
            out.insert("stage".into(), json!(stage_name(&outcome.stage)));
            out.insert("summary".into(), json!(summary));
            out.insert("policy".into(), json!(policy));
            out.insert("reason".into(), json!(reason(&engine, &outcome.stage)));
            out.insert(
                "dryRun".into(),
                decision.map_or(Value::Null, |d| dry_run_json(d.dry_run)),
            );
            out.insert("audit".into(), json!(decision.and_then(|d| d.audit)));
            out.insert(
                "reply".into(),
                match &outcome.reply {
                    Some(r) => json!({
                        "status": r.status,
                        "details": r.details,
                        "headers": r.headers,
                        "body": r.body,
                    }),
                    None => Value::Null,
                },
            );
            out.insert("notes".into(), json!(notes));
            println!(
                "{}",
                serde_json::to_string_pretty(&Value::Object(out)).unwrap_or_default()
            );
        } else {
            println!("workload: {}", describe_workload(&report));
            println!("request:  {method} {path} ({} side)", side_name(side));
            match &authn {
                None => println!("authn:    not reached"),
                Some(Outcome::NoToken) => println!("authn:    no token (no end-user identity)"),
                Some(Outcome::Verified(c)) => println!(
                    "authn:    verified iss={} sub={}",
                    c.string("iss").unwrap_or("-"),
                    c.string("sub").unwrap_or("-")
                ),
                Some(Outcome::Rejected(f)) => {
                    println!("authn:    rejected: {} {}", f.http_status(), f.message())
                }
            }
            if allowed {
                println!("decision: ALLOW (200)");
            } else {
                println!("decision: DENY ({status} {body})");
            }
            println!("policy:   {}", policy.unwrap_or("none"));
            println!("reason:   {}", reason(&engine, &outcome.stage));
            if let Some(d) = decision {
                println!("dry-run:  {}", dry_run_text(d.dry_run));
                println!("audit:    {}", d.audit.unwrap_or("none"));
            }
            println!("summary:  {summary}");
            for note in &notes {
                println!("note:     {note}");
            }
        }
        Ok(if allowed { 0 } else { 2 })
    }

    /// A path Envoy's HCM refuses (400) before any filter runs.
    fn path_rejected(raw_path: &str, as_json: bool) -> u8 {
        if as_json {
            let out = json!({
                "request": {"rawPath": raw_path},
                "decision": "deny",
                "status": 400,
                "body": "Bad Request",
                "stage": "pathRejected",
                "reason": "Envoy's HCM refuses the path (path normalization failed)",
            });
            println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
        } else {
            println!(
                "decision: DENY (400): Envoy's HCM refuses the path {raw_path} before any filter"
            );
        }
        2
    }

    fn side_name(side: Side) -> &'static str {
        match side {
            Side::Inbound => "inbound",
            Side::Outbound => "outbound",
        }
    }

    fn stage_name(stage: &Stage<'_>) -> &'static str {
        match stage {
            Stage::EgressAllowed => "egressAllowed",
            Stage::EgressDenied { .. } => "egressDenied",
            Stage::MtlsRequired { .. } => "mtlsRequired",
            Stage::TokenRejected(_) => "tokenRejected",
            Stage::Authorized { .. } => "authorized",
        }
    }

    fn authn_json(authn: Option<&Outcome>) -> Value {
        match authn {
            None => json!({"result": "notReached"}),
            Some(Outcome::NoToken) => json!({"result": "noToken"}),
            Some(Outcome::Verified(c)) => json!({
                "result": "verified",
                "issuer": c.string("iss"),
                "subject": c.string("sub"),
            }),
            Some(Outcome::Rejected(f)) => json!({
                "result": "rejected",
                "status": f.http_status(),
                "reason": f.reason(),
                "message": f.message(),
            }),
        }
    }

    fn reason(engine: &Engine, stage: &Stage<'_>) -> String {
        let d = match stage {
            Stage::EgressAllowed => {
                return "outbound: the Sidecar egress list allows the host (or none applies)".into()
            }
            Stage::EgressDenied { host, .. } => {
                return format!(
                    "outbound: {host} is not in the Sidecar's egress hosts (REGISTRY_ONLY)"
                )
            }
            Stage::MtlsRequired { .. } => {
                return "a STRICT PeerAuthentication requires mTLS and the request is plaintext"
                    .into()
            }
            Stage::TokenRejected(_) => {
                return "RequestAuthentication rejected the token before authorization".into()
            }
            Stage::Authorized { decision, .. } => decision,
        };
        match (d.verdict, d.policy) {
            (Verdict::Deny, Some(_)) => "a DENY rule matched",
            (Verdict::Deny, None) => "ALLOW policies apply and no ALLOW rule matched",
            (Verdict::Allow, Some(_)) => "an ALLOW rule matched",
            (Verdict::Allow, None) if engine.rule_count() == 0 => "no policy applies",
            (Verdict::Allow, None) => "no DENY rule matched and no ALLOW policy applies",
        }
        .to_string()
    }

    fn dry_run_text(d: DryRun<'_>) -> String {
        match d {
            DryRun::None => "none (no dry-run policy applies)".to_string(),
            DryRun::WouldDeny(id) => format!("would deny: {id}"),
            DryRun::WouldDenyNoAllowMatched => {
                "would deny: no dry-run ALLOW rule matched".to_string()
            }
            DryRun::WouldAllow(Some(id)) => format!("would allow: {id}"),
            DryRun::WouldAllow(None) => "would allow".to_string(),
        }
    }

    fn dry_run_json(d: DryRun<'_>) -> Value {
        match d {
            DryRun::None => json!({"result": "none"}),
            DryRun::WouldDeny(id) => json!({"result": "wouldDeny", "policy": id}),
            DryRun::WouldDenyNoAllowMatched => json!({"result": "wouldDeny", "policy": null}),
            DryRun::WouldAllow(id) => json!({"result": "wouldAllow", "policy": id}),
        }
    }

    // ------------------------------------------------------------------------------------------
    // convert

    fn convert(args: &[String]) -> Result<u8, Fail> {
        let args = Args::parse(
            args,
            &[
                "--to",
                "--name",
                "--namespace",
                "--selector",
                "--sha256",
                "-o",
                "--output",
            ],
            &[],
        )?;
        if args.positional.is_empty() {
            return Err(Fail(format!("meshguard convert: no FILE given\n\n{USAGE}")));
        }
        let to = args.last("--to").unwrap_or("wasmplugin");
        if !matches!(to, "wasmplugin" | "config") {
            return Err(Fail(format!(
                "meshguard convert: --to must be wasmplugin or config, got `{to}`"
            )));
        }
        let namespace = args.last("--namespace");
        let selector = args.pairs("--selector")?;
        let mut resources = Vec::new();
        for file in &args.positional {
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
                        "warning: {} {}: namespace {} is neither {ns} nor the root namespace: it never applies to workloads of {ns}",
                        kind(r).unwrap_or("?"),
                        r.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("?"),
                        rns.unwrap_or("?"),
                    );
                }
            }
        }
        let config = json!({ "resources": resources });
        // The output must load: refuse to write a configuration Envoy would refuse.
        let node = NodeInfo {
            namespace: namespace.map(str::to_string),
            labels: (!selector.is_empty()).then(|| selector.clone()),
        };
        if let Err(e) = load_value(&config, &node) {
            let unit = Unit {
                label: "meshguard convert".to_string(),
                config: Value::Null,
                prefix: "",
                documents: Vec::new(),
                errors: Vec::new(),
                warnings: Vec::new(),
            };
            return Err(Fail(unit.error_text(&e)));
        }
        let text = if to == "config" {
            let mut s = serde_json::to_string_pretty(&config).unwrap_or_default();
            s.push('\n');
            s
        } else {
            let sha256 = match args.last("--sha256") {
                Some(d) => {
                    let hex = d.strip_prefix("sha256:").unwrap_or(d);
                    if hex.len() != 64
                        || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
                    {
                        return Err(Fail(format!(
                            "meshguard convert: --sha256 must be 64 lower-case hex digits (the image manifest digest), got `{d}`"
                        )));
                    }
                    Some(hex.to_string())
                }
                None => None,
            };
            wasmplugin_yaml(
                args.last("--name").unwrap_or("meshguard"),
                namespace,
                &selector,
                sha256.as_deref(),
                &config,
            )?
        };
        match args.last("-o").or(args.last("--output")) {
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

    fn wasmplugin_yaml(
        name: &str,
        namespace: Option<&str>,
        selector: &BTreeMap<String, String>,
        sha256: Option<&str>,
        config: &Value,
    ) -> Result<String, Fail> {
        use serde_yaml::{Mapping, Value as Y};
        let s = |v: &str| Y::String(v.to_string());
        let mut metadata = Mapping::new();
        metadata.insert(s("name"), s(name));
        if let Some(ns) = namespace {
            metadata.insert(s("namespace"), s(ns));
        }
        let mut spec = Mapping::new();
        if !selector.is_empty() {
            let labels: Mapping = selector.iter().map(|(k, v)| (s(k), s(v))).collect();
            let mut sel = Mapping::new();
            sel.insert(s("matchLabels"), Y::Mapping(labels));
            spec.insert(s("selector"), Y::Mapping(sel));
        }
        spec.insert(s("url"), s(&format!("{IMAGE}:{VERSION}")));
        if let Some(digest) = sha256 {
            spec.insert(s("sha256"), s(digest));
        }
        spec.insert(s("type"), s("HTTP"));
        spec.insert(s("phase"), s("AUTHZ"));
        spec.insert(s("priority"), Y::Number(100.into()));
        spec.insert(s("failStrategy"), s("FAIL_CLOSE"));
        let mut server = Mapping::new();
        server.insert(s("mode"), s("SERVER"));
        spec.insert(s("match"), Y::Sequence(vec![Y::Mapping(server)]));
        let plugin_config =
            serde_yaml::to_value(config).map_err(|e| Fail(format!("meshguard convert: {e}")))?;
        spec.insert(s("pluginConfig"), plugin_config);
        let mut root = Mapping::new();
        root.insert(s("apiVersion"), s("extensions.istio.io/v1alpha1"));
        root.insert(s("kind"), s("WasmPlugin"));
        root.insert(s("metadata"), Y::Mapping(metadata));
        root.insert(s("spec"), Y::Mapping(spec));
        let body = serde_yaml::to_string(&Y::Mapping(root))
            .map_err(|e| Fail(format!("meshguard convert: {e}")))?;
        Ok(format!(
            "# Generated by `meshguard convert` {VERSION}. phase AUTHZ: after Istio's jwt_authn, before Istio's RBAC;\n\
             # FAIL_CLOSE: a failed VM denies; mode SERVER: sidecar inbound only. Pin the image with\n\
             # `sha256: <manifest digest>` (`make oci` prints it).\n{body}"
        ))
    }
}
