//! The workspace's architecture rules, checked on the source text (`cargo test` runs this):
//!
//! * **One-way layers in the core.** Every folder of `core/src/` is a layer; a module may import
//!   modules of its own folder and of lower layers only, never a higher layer nor a sibling
//!   family, and the module graph has no cycle:
//!
//!   ```text
//!   plugin (configuration, compiled plugin, request pipeline)
//!     -> authorization | authn | mtls | egress   (policy families, independent of each other)
//!       -> targeting -> matchers -> request | config_json -> error
//!   ```
//!
//!   The glue (`src/`) and the CLI (`cli/`) sit above `plugin`. Grouped `crate::{...}` imports
//!   are refused so that every dependency is visible to this check.
//! * **The crypto crates below the core.** `crypto/` (`meshguard-crypto`: the verification-only
//!   RSA and P-256) and `crypto-p384/` (`meshguard-crypto-p384`: P-384), which `authn::jwt`
//!   calls, depend on no host SDK and on no other meshguard crate, except `crypto-p384` on
//!   `crypto` (the group law they share): the core imports them, never the reverse.
//! * **proxy-wasm only in the glue.** Only the root package depends on proxy-wasm.
//! * **Every host call through `src/host.rs`.** No other glue module declares host imports,
//!   calls `proxy_wasm::hostcalls`, installs the SDK's logger (`proxy_wasm::set_log_level`,
//!   which unwraps) or calls the SDK's context helpers (`self.set_tick_period(...)`,
//!   `self.dispatch_http_call(...)`, ...), which panic on an unexpected host status.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The core's folders, lowest layer first; folders of one rank are siblings that must not
/// import each other.
const LAYERS: &[(&str, u8)] = &[
    ("error", 0),
    ("request", 1),
    ("config_json", 1),
    ("matchers", 2),
    ("targeting", 3),
    ("authorization", 4),
    ("authn", 4),
    ("mtls", 4),
    ("egress", 4),
    ("plugin", 5),
];

fn rank(folder: &str) -> Option<u8> {
    LAYERS.iter().find(|(f, _)| *f == folder).map(|(_, r)| *r)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `folder::module` of a core source file (`error` for `error.rs`), `None` for `lib.rs` and the
/// folders' `mod.rs`, which only declare modules.
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    match parts.as_slice() {
        [m] if m == "lib" => None,
        [m] => Some(m.clone()),
        [_, m] if m == "mod" => None,
        [f, m] => Some(format!("{f}::{m}")),
        _ => panic!("{}: nest core modules one folder deep", file.display()),
    }
}

/// Every `crate::folder::module` (or `crate::error`) the text refers to.
fn imports(text: &str) -> Result<BTreeSet<String>, String> {
    let mut out = BTreeSet::new();
    for (at, _) in text.match_indices("crate::") {
        let rest = &text[at + "crate::".len()..];
        if rest.starts_with('{') {
            return Err("grouped `crate::{...}` import".to_string());
        }
        let ident = |s: &str| -> String {
            s.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        };
        let folder = ident(rest);
        if folder == "error" {
            out.insert(folder);
            continue;
        }
        let after = &rest[folder.len()..];
        let Some(after) = after.strip_prefix("::") else {
            return Err(format!("`crate::{folder}` without its module"));
        };
        if after.starts_with('{') {
            return Err(format!("grouped `crate::{folder}::{{...}}` import"));
        }
        out.insert(format!("{folder}::{}", ident(after)));
    }
    Ok(out)
}

fn core_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(ROOT).join("core/src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut graph = BTreeMap::new();
    for file in files {
        let Some(module) = module_of(&src, &file) else {
            continue;
        };
        let text = fs::read_to_string(&file).unwrap();
        let deps = imports(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        graph.insert(module, deps);
    }
    graph
}

fn folder(module: &str) -> &str {
    module.split("::").next().unwrap_or(module)
}

#[test]
fn core_modules_import_only_their_folder_and_lower_layers() {
    let graph = core_graph();
    assert!(graph.len() > 20, "found only {} core modules", graph.len());
    let mut violations = Vec::new();
    for (module, deps) in &graph {
        let from = folder(module);
        let from_rank =
            rank(from).unwrap_or_else(|| panic!("core/src/{from}/ is not in LAYERS (add it)"));
        for dep in deps {
            assert!(
                graph.contains_key(dep),
                "{module} imports {dep}, which is no core module"
            );
            let to = folder(dep);
            let to_rank = rank(to).unwrap();
            if to != from && to_rank >= from_rank {
                violations.push(format!("{module} -> {dep}"));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "back-edges or sibling-family imports (see tests/architecture.rs for the layers):\n{}",
        violations.join("\n")
    );
}

#[test]
fn core_module_graph_has_no_cycle() {
    let graph = core_graph();
    // Depth-first search; a module met again while on the stack closes a cycle.
    fn visit<'g>(
        module: &'g str,
        graph: &'g BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<&'g str>,
        done: &mut BTreeSet<&'g str>,
    ) {
        if done.contains(module) {
            return;
        }
        if let Some(at) = stack.iter().position(|m| *m == module) {
            panic!("import cycle: {} -> {module}", stack[at..].join(" -> "));
        }
        stack.push(module);
        for dep in graph.get(module).into_iter().flatten() {
            visit(dep, graph, stack, done);
        }
        stack.pop();
        done.insert(module);
    }
    let mut done = BTreeSet::new();
    for module in graph.keys() {
        visit(module, &graph, &mut Vec::new(), &mut done);
    }
}

#[test]
fn the_check_catches_a_back_edge_and_a_grouped_import() {
    let deps =
        imports("use crate::plugin::engine::Engine;\nuse crate::error::ConfigError;").unwrap();
    assert_eq!(
        deps.into_iter().collect::<Vec<_>>(),
        ["error", "plugin::engine"]
    );
    assert!(imports("use crate::{plugin, error};").is_err());
    assert!(imports("use crate::matchers::{predicate, cidr};").is_err());
    assert!(rank("plugin") > rank("authorization") && rank("authn") == rank("mtls"));
}

#[test]
fn the_crypto_crates_depend_on_no_other_meshguard_crate_but_p384_on_crypto() {
    let mut files = Vec::new();
    // The one edge allowed between them: P-384 instantiates `meshguard-crypto`'s group law.
    for (dir, allowed) in [
        ("crypto", &[][..]),
        ("crypto-p384", &["meshguard-crypto.workspace = true"][..]),
    ] {
        let manifest = fs::read_to_string(Path::new(ROOT).join(dir).join("Cargo.toml")).unwrap();
        let meshguard_deps: Vec<&str> = manifest
            .lines()
            .filter(|l| l.trim_start().starts_with("meshguard") && !allowed.contains(&l.trim()))
            .collect();
        assert!(
            meshguard_deps.is_empty(),
            "{dir}/Cargo.toml depends on {meshguard_deps:?}"
        );
        rust_files(&Path::new(ROOT).join(dir), &mut files);
    }
    assert!(files.iter().any(|f| f.ends_with("rsa_verify.rs")));
    assert!(files.iter().any(|f| f.ends_with("p384_verify.rs")));
    for file in files {
        let text = fs::read_to_string(&file).unwrap();
        for other in ["meshguard_core", "meshguard::", "proxy_wasm"] {
            assert!(!text.contains(other), "{} uses {other}", file.display());
        }
    }
}

#[test]
fn only_the_glue_depends_on_proxy_wasm() {
    for manifest in [
        "core/Cargo.toml",
        "crypto/Cargo.toml",
        "crypto-p384/Cargo.toml",
        "cli/Cargo.toml",
    ] {
        let text = fs::read_to_string(Path::new(ROOT).join(manifest)).unwrap();
        let depends = text
            .lines()
            .any(|l| l.trim_start().starts_with("proxy-wasm"));
        assert!(!depends, "{manifest} depends on proxy-wasm");
    }
    let mut files = Vec::new();
    rust_files(&Path::new(ROOT).join("core"), &mut files);
    rust_files(&Path::new(ROOT).join("cli"), &mut files);
    for file in files {
        let text = fs::read_to_string(&file).unwrap();
        assert!(
            !text.contains("proxy_wasm"),
            "{} uses proxy_wasm",
            file.display()
        );
    }
}

/// The helper methods of the SDK's `Context`/`RootContext`/`HttpContext`/`StreamContext` traits
/// (proxy-wasm 0.2.5 `traits.rs`): each is a host call that unwraps or panics on an unexpected
/// status.
const SDK_HOST_METHODS: &[&str] = &[
    "add_http_request_header",
    "add_http_request_header_bytes",
    "add_http_request_trailer",
    "add_http_request_trailer_bytes",
    "add_http_response_header",
    "add_http_response_header_bytes",
    "add_http_response_trailer",
    "add_http_response_trailer_bytes",
    "call_foreign_function",
    "cancel_grpc_call",
    "cancel_grpc_stream",
    "close_downstream",
    "close_grpc_stream",
    "close_upstream",
    "dequeue_shared_queue",
    "dispatch_grpc_call",
    "dispatch_http_call",
    "done",
    "enqueue_shared_queue",
    "get_current_time",
    "get_downstream_data",
    "get_grpc_call_response_body",
    "get_grpc_status",
    "get_grpc_stream_initial_metadata",
    "get_grpc_stream_initial_metadata_value",
    "get_grpc_stream_message",
    "get_grpc_stream_trailing_metadata",
    "get_grpc_stream_trailing_metadata_value",
    "get_http_call_response_body",
    "get_http_call_response_header",
    "get_http_call_response_header_bytes",
    "get_http_call_response_headers",
    "get_http_call_response_headers_bytes",
    "get_http_call_response_trailer",
    "get_http_call_response_trailer_bytes",
    "get_http_call_response_trailers",
    "get_http_call_response_trailers_bytes",
    "get_http_request_body",
    "get_http_request_header",
    "get_http_request_header_bytes",
    "get_http_request_headers",
    "get_http_request_headers_bytes",
    "get_http_request_trailer",
    "get_http_request_trailer_bytes",
    "get_http_request_trailers",
    "get_http_request_trailers_bytes",
    "get_http_response_body",
    "get_http_response_header",
    "get_http_response_header_bytes",
    "get_http_response_headers",
    "get_http_response_headers_bytes",
    "get_http_response_trailer",
    "get_http_response_trailer_bytes",
    "get_http_response_trailers",
    "get_http_response_trailers_bytes",
    "get_plugin_configuration",
    "get_property",
    "get_shared_data",
    "get_upstream_data",
    "get_vm_configuration",
    "open_grpc_stream",
    "register_shared_queue",
    "remove_http_request_header",
    "remove_http_request_trailer",
    "remove_http_response_header",
    "remove_http_response_trailer",
    "remove_shared_data",
    "reset_http_request",
    "reset_http_response",
    "resolve_shared_queue",
    "resume_downstream",
    "resume_http_request",
    "resume_http_response",
    "resume_upstream",
    "send_grpc_response",
    "send_grpc_stream_message",
    "send_http_response",
    "set_downstream_data",
    "set_http_request_body",
    "set_http_request_header",
    "set_http_request_header_bytes",
    "set_http_request_headers",
    "set_http_request_headers_bytes",
    "set_http_request_trailer",
    "set_http_request_trailer_bytes",
    "set_http_request_trailers",
    "set_http_request_trailers_bytes",
    "set_http_response_body",
    "set_http_response_header",
    "set_http_response_header_bytes",
    "set_http_response_headers",
    "set_http_response_headers_bytes",
    "set_http_response_trailer",
    "set_http_response_trailer_bytes",
    "set_http_response_trailers",
    "set_http_response_trailers_bytes",
    "set_property",
    "set_shared_data",
    "set_tick_period",
    "set_upstream_data",
];

#[test]
fn host_calls_go_through_the_host_module() {
    let mut files = Vec::new();
    rust_files(&Path::new(ROOT).join("src"), &mut files);
    assert!(files.iter().any(|f| f.ends_with("filter.rs")));
    let mut violations = Vec::new();
    for file in files.iter().filter(|f| !f.ends_with("host.rs")) {
        let text = fs::read_to_string(file).unwrap();
        for forbidden in [
            "hostcalls",
            "extern \"C\"",
            "wasm_import_module",
            "proxy_wasm::set_log_level",
        ] {
            if text.contains(forbidden) {
                violations.push(format!("{}: {forbidden}", file.display()));
            }
        }
        for method in SDK_HOST_METHODS {
            if text.contains(&format!(".{method}(")) {
                violations.push(format!("{}: .{method}(", file.display()));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "host calls outside src/host.rs:\n{}",
        violations.join("\n")
    );
}

/// rustfmt's `max_width` (no rustfmt.toml: the default).
const MAX_WIDTH: usize = 100;

/// `cargo fmt --check` only checks what rustfmt can format: an expression holding a string
/// literal too long for the line is left as written, silently. A line over the width is the
/// sign of that (or of a macro body rustfmt cannot parse), so none may exist; long literals are
/// continued with `\` line breaks, which rustfmt keeps.
#[test]
fn no_line_is_wider_than_rustfmt_formats() {
    let mut files = Vec::new();
    for dir in ["src", "core", "crypto", "crypto-p384", "cli", "tests"] {
        rust_files(&Path::new(ROOT).join(dir), &mut files);
    }
    let mut wide = Vec::new();
    for file in &files {
        let text = fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            if line.chars().count() > MAX_WIDTH {
                wide.push(format!("{}:{}", file.display(), n + 1));
            }
        }
    }
    assert!(
        wide.is_empty(),
        "lines wider than {MAX_WIDTH} (rustfmt skips such expressions):\n{}",
        wide.join("\n")
    );
}
