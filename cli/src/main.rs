//! `meshguard`: the command line next to the filter, built from the same core.
//!
//! ```text
//! meshguard lint FILE...                 validate plugin configurations, WasmPlugins, kubectl YAML
//! meshguard check CONFIG [request...]    decide one request as the filter would (exit 0/2)
//! meshguard convert FILE... [--to ...]   kubectl YAML of policies -> plugin config or WasmPlugin
//! ```
//!
//! Arguments are parsed by clap (`meshguard <command> --help`); a usage error prints clap's
//! message and usage line, as kubectl does, and exits 1 (2 is `check`'s "denied").

mod check;
mod convert;
mod crd;
mod documents;
mod lint;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use meshguard_core::plugin::plugin_config::NodeInfo;

/// Istio authorization decided as the meshguard filter in Envoy decides it.
#[derive(Debug, Parser)]
#[command(name = "meshguard", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate plugin configurations (JSON or YAML), WasmPlugin manifests (spec.pluginConfig) or
    /// kubectl YAML streams / v1 Lists of resources. Errors name the field: `FILE: path: reason`.
    /// Exit 0 valid, 1 invalid.
    Lint(LintArgs),
    /// Decide one request as the filter would: the reply Envoy sends, the step and the rule that
    /// decided, the dry-run result and the AUDIT match. Exit 0 allowed, 2 denied, 1 error.
    Check(CheckArgs),
    /// Turn kubectl YAML (multi-document or v1 List) of supported resources into a plugin
    /// configuration (JSON) or a WasmPlugin manifest (YAML).
    Convert(ConvertArgs),
}

/// Istio's node metadata (NAMESPACE, LABELS), used when the configuration has no `workload`.
#[derive(Debug, Args)]
pub struct NodeArgs {
    /// The workload's namespace.
    #[arg(long)]
    namespace: Option<String>,
    /// A workload label (repeatable).
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = parse_pair)]
    labels: Vec<(String, String)>,
}

impl NodeArgs {
    /// Istio's node metadata; `--label` without `--namespace` is a workload in the `default`
    /// namespace (the loader would otherwise ignore the labels).
    pub fn node(&self) -> NodeInfo {
        let namespace = match &self.namespace {
            None if !self.labels.is_empty() => Some("default".to_string()),
            ns => ns.clone(),
        };
        NodeInfo {
            namespace,
            labels: (!self.labels.is_empty()).then(|| self.labels.iter().cloned().collect()),
        }
    }

    /// The note to print when [`NodeArgs::node`] chose the namespace.
    pub fn defaulted_namespace(&self) -> Option<&'static str> {
        (self.namespace.is_none() && !self.labels.is_empty()).then_some(
            "--label without --namespace: the workload is taken to be in namespace default",
        )
    }
}

#[derive(Debug, Args)]
pub struct LintArgs {
    /// Files or directories to validate (`-` reads standard input; a directory: its `*.yaml`,
    /// `*.yml` and `*.json` files, recursively).
    #[arg(required = true, value_name = "FILE")]
    files: Vec<String>,
    /// `text` (errors on stderr, `ok:` lines on stdout) or one `json` report on stdout.
    #[arg(long, short = 'o', value_enum, default_value = "text")]
    output: LintOutput,
    /// Skip (and list) Kubernetes resources of kinds meshguard does not handle, e.g. the
    /// Deployments and Services of an application's manifests, instead of failing on them.
    #[arg(long)]
    skip_unknown_kinds: bool,
    #[command(flatten)]
    node: NodeArgs,
}

/// `lint`'s report format.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LintOutput {
    Text,
    Json,
}

/// The side of the workload the filter runs on.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DirectionArg {
    Inbound,
    Outbound,
}

/// Istio's `meshConfig.pathNormalization.normalization` options (the HCM settings they select).
#[derive(Debug, Clone, Copy, ValueEnum)]
#[value(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum NormalizationArg {
    /// No normalization.
    None,
    /// `normalize_path` (RFC 3986 dot segments, `\` to `/`, unreserved escapes decoded): Istio's
    /// default.
    Base,
    /// BASE plus `merge_slashes`.
    MergeSlashes,
    /// MERGE_SLASHES plus `%2F`/`%5C` unescaped first.
    DecodeAndMergeSlashes,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The plugin configuration (JSON or YAML, a WasmPlugin, or kubectl YAML of resources).
    #[arg(value_name = "CONFIG")]
    config: String,
    #[arg(long, default_value = "GET")]
    method: String,
    /// The request path as the client sends it (normalized as Envoy's HCM does first).
    #[arg(long, default_value = "/")]
    path: String,
    /// The `:authority` (Host).
    #[arg(long, default_value = "localhost")]
    host: String,
    /// A request header, `name=value` or `name: value` (repeatable).
    #[arg(long = "header", value_name = "NAME=VALUE")]
    headers: Vec<String>,
    /// The client certificate's URI SAN (`spiffe://` is added when missing); implies mTLS.
    #[arg(long, value_name = "SPIFFE_ID")]
    principal: Option<String>,
    /// The physical peer address (`source.ip`).
    #[arg(long, value_name = "IP")]
    source_ip: Option<IpAddr>,
    /// The client address Envoy derived (`remote.ip`; default: the source IP).
    #[arg(long, value_name = "IP")]
    remote_ip: Option<IpAddr>,
    /// The local port the request arrived on (`destination.port`).
    #[arg(long, value_name = "N")]
    port: Option<u16>,
    /// The TLS SNI.
    #[arg(long)]
    sni: Option<String>,
    /// A bearer token, sent as `authorization: Bearer TOKEN` (a leading `Bearer ` is accepted).
    #[arg(long, value_name = "TOKEN")]
    jwt: Option<String>,
    /// The keys of a remote `jwksUri`, from a local JWKS file: `URI=FILE` for that provider,
    /// or `FILE` for every provider with a remote `jwksUri` (repeatable).
    #[arg(long = "jwks", value_name = "[URI=]FILE")]
    jwks: Vec<String>,
    /// The payload Envoy's jwt_authn verified (for `jwtSource: envoyJwtAuthn`), a JSON object.
    #[arg(long, value_name = "JSON")]
    claims: Option<String>,
    /// The clock, in seconds since the Unix epoch (default: now).
    #[arg(long, value_name = "UNIX_SECS")]
    now: Option<u64>,
    /// The side of the workload (default: the configuration's `direction`; `auto` is inbound).
    #[arg(long, value_enum)]
    direction: Option<DirectionArg>,
    /// Path normalization, as Istio configures Envoy's HCM.
    #[arg(long, value_enum, default_value = "BASE")]
    normalization: NormalizationArg,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    node: NodeArgs,
}

/// What `convert` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ConvertTo {
    Wasmplugin,
    Config,
}

#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// kubectl YAML files (`-` reads standard input).
    #[arg(required = true, value_name = "FILE")]
    files: Vec<String>,
    #[arg(long, value_enum, default_value = "wasmplugin")]
    to: ConvertTo,
    /// The WasmPlugin's name.
    #[arg(long, default_value = "meshguard")]
    name: String,
    /// The namespace of the WasmPlugin and of resources without one.
    #[arg(long)]
    namespace: Option<String>,
    /// The WasmPlugin's workload selector label (repeatable).
    #[arg(long = "selector", value_name = "KEY=VALUE", value_parser = parse_pair)]
    selector: Vec<(String, String)>,
    /// The image manifest digest to pin (`make oci` prints it).
    #[arg(long, value_name = "DIGEST")]
    sha256: Option<String>,
    /// Where to write (default: standard output).
    #[arg(short = 'o', long = "output", value_name = "OUT")]
    output: Option<String>,
}

impl ConvertArgs {
    fn selector(&self) -> BTreeMap<String, String> {
        self.selector.iter().cloned().collect()
    }
}

fn parse_pair(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got `{s}`")),
    }
}

/// A user-facing failure: printed as is, exit 1.
pub struct Fail(pub String);

impl From<String> for Fail {
    fn from(s: String) -> Fail {
        Fail(s)
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let result = match &cli.command {
        Command::Lint(args) => lint::lint(args),
        Command::Check(args) => check::check(args),
        Command::Convert(args) => convert::convert(args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(Fail(message)) => {
            eprintln!("{message}");
            ExitCode::from(1)
        }
    }
}
