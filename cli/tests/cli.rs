//! The `meshguard` command line (cli/src/main.rs), run as a process: `lint`, `check`,
//! `convert`, their output and exit codes (lint: 0/1; check: 0 allowed, 2 denied, 1 error).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use jwt_simple::prelude::*;
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_meshguard");
/// The workspace root (this crate lives in `cli/`).
const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
/// 2027-01-15, passed to `check --now`.
const NOW: u64 = 1_800_000_000;
const ISS: &str = "https://issuer.example.com";

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(args: &[&str]) -> Run {
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(BIN)
        .args(args)
        .output()
        .expect("run meshguard");
    Run {
        code: status.code().expect("exit code"),
        stdout: String::from_utf8(stdout).unwrap(),
        stderr: String::from_utf8(stderr).unwrap(),
    }
}

/// A fresh file under the integration-test temp dir.
fn write(name: &str, text: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "cli-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn ap(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
           "metadata": {"name": name, "namespace": "default"}, "spec": spec})
}

fn config(resources: Vec<Value>) -> PathBuf {
    let c = json!({"workload": {"namespace": "default", "labels": {"app": "details"}},
                   "resources": resources});
    write("config.json", &serde_json::to_string_pretty(&c).unwrap())
}

/// ALLOW productpage on GET /details/*, DENY /admin*, a dry-run DENY on /beta*, an AUDIT on
/// /audited*.
fn bookinfo() -> PathBuf {
    let mut dry = ap(
        "dry-deny-beta",
        json!({"action": "DENY",
            "rules": [{"to": [{"operation": {"paths": ["/details/beta*"]}}]}]}),
    );
    dry["metadata"]["annotations"] = json!({"istio.io/dry-run": "true"});
    config(vec![
        ap(
            "details-viewer",
            json!({"action": "ALLOW", "rules": [
                {"from": [{"source": {"principals": ["cluster.local/ns/default/sa/productpage"]}}],
                 "to": [{"operation": {"methods": ["GET"], "paths": ["/details/*"]}}]}]}),
        ),
        ap(
            "deny-admin",
            json!({"action": "DENY", "rules": [{"to": [{"operation": {"paths": ["/admin*"]}}]}]}),
        ),
        dry,
        ap(
            "audit-details",
            json!({"action": "AUDIT",
                "rules": [{"to": [{"operation": {"paths": ["/details/audited*"]}}]}]}),
        ),
    ])
}

const PRODUCTPAGE: &str = "spiffe://cluster.local/ns/default/sa/productpage";

fn check_json(config: &Path, extra: &[&str]) -> (i32, Value) {
    let mut args = vec!["check", s(config), "--json", "--now", "1800000000"];
    args.extend_from_slice(extra);
    let r = run(&args);
    let v: Value = serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", r.stdout, r.stderr));
    (r.code, v)
}

// ---------------------------------------------------------------------------------------
// lint

#[test]
fn lint_accepts_the_shipped_manifests_and_demos() {
    for file in [
        "wasmplugin/bookinfo-details.yaml",
        "wasmplugin/pong-server.yaml",
        "wasmplugin/mesh-default-deny.yaml",
        "envoy-test/demos/bookinfo.json",
    ] {
        let path = Path::new(REPO).join(file);
        let r = run(&["lint", s(&path)]);
        assert_eq!(r.code, 0, "{file}: {}{}", r.stdout, r.stderr);
        assert!(
            r.stdout.contains(": ok: 2 resources, 2 applied"),
            "{}",
            r.stdout
        );
    }
}

#[test]
fn lint_summarizes_a_plain_configuration() {
    let r = run(&["lint", s(&bookinfo())]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .contains("ok: 4 resources, 4 applied, 4 rules; workload default {app=details}"),
        "{}",
        r.stdout
    );
}

#[test]
fn lint_names_the_field_in_a_wasmplugin() {
    let wp = write(
        "wp.yaml",
        "apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata: {name: m, namespace: default}
spec:
  url: oci://ghcr.io/meshguard/meshguard:0.1.0
  phase: AUTHZ
  pluginConfig:
    resources:
    - apiVersion: security.istio.io/v1
      kind: AuthorizationPolicy
      metadata: {name: p}
      spec:
        rules:
        - from:
          - source: {notPrincipal: [x]}
",
    );
    let r = run(&["lint", s(&wp)]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    let want = format!(
        "{}: spec.pluginConfig.resources[0].spec.rules[0].from[0].source.notPrincipal: unknown \
        field `notPrincipal`",
        s(&wp)
    );
    assert!(r.stderr.contains(&want), "{}", r.stderr);
}

#[test]
fn lint_wraps_a_kubectl_stream_and_names_the_document() {
    let stream = write(
        "stream.yaml",
        "apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ok, namespace: default, uid: abc, resourceVersion: '12'}
spec: {action: ALLOW, rules: [{}]}
status: {}
---
apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata: {name: bad}
spec:
  action: DENY
  rules: [{to: [{operation: {ports: ['99999']}}]}]
",
    );
    let r = run(&["lint", s(&stream)]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(
        r.stderr
            .contains(": resources[1].spec.rules[0].to[0].operation.ports[0]: "),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.trim_end().ends_with("(document 2)"),
        "{}",
        r.stderr
    );

    // A v1 List (kubectl get -o yaml) of valid resources.
    let list = write(
        "list.yaml",
        "apiVersion: v1
kind: List
metadata: {resourceVersion: ''}
items:
- apiVersion: security.istio.io/v1
  kind: AuthorizationPolicy
  metadata: {name: a, namespace: default}
  spec: {action: DENY, rules: [{to: [{operation: {paths: [/admin]}}]}]}
",
    );
    let r = run(&["lint", s(&list)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("ok: 1 resources, 1 applied, 1 rules"),
        "{}",
        r.stdout
    );
}

const BROKEN_WASMPLUGIN: &str = "apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata: {name: meshguard, namespace: bookinfo}
spec:
  selector: {app: details}
  url: oci://ghcr.io/meshguard/meshguard:0.1.0
  phase: authz
  failStratgy: FAIL_CLOSE
  match: [{mode: SERVER, ports: [9080]}]
  pluginConfig: {}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: details}
spec: {}
";

#[test]
fn lint_applies_the_wasmplugin_crd_and_reports_every_error() {
    let path = write("broken.yaml", BROKEN_WASMPLUGIN);
    let r = run(&["lint", s(&path)]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    for want in [
        "(document 1): unknown field \"spec.failStratgy\"",
        "(document 1): spec.phase: Unsupported value: \"authz\"",
        "(document 1): spec.match[0].ports[0]: Invalid value: \"integer\": must be of type object",
        "(document 1): unknown field \"spec.selector.app\"",
        "resources[0].kind: unsupported resource apps/v1/Deployment",
    ] {
        assert!(r.stderr.contains(want), "{want}: {}", r.stderr);
    }
}

#[test]
fn lint_skips_unknown_kinds_when_asked_and_reports_json() {
    let fine = BROKEN_WASMPLUGIN
        .replace("{app: details}", "{matchLabels: {app: details}}")
        .replace("phase: authz", "phase: AUTHZ")
        .replace("failStratgy", "failStrategy")
        .replace("[9080]", "[{number: 9080}]");
    let path = write("fine.yaml", &fine);
    assert_eq!(run(&["lint", s(&path)]).code, 1, "the Deployment fails");
    let r = run(&["lint", "--skip-unknown-kinds", "--output", "json", s(&path)]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let report: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(report["valid"], true);
    let levels: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["level"].as_str().unwrap())
        .collect();
    assert_eq!(levels, ["ok", "skipped"], "{report}");
    assert_eq!(report["findings"][1]["document"], 2);

    let broken = write("broken.yaml", BROKEN_WASMPLUGIN);
    let r = run(&["lint", "-o", "json", s(&broken)]);
    assert_eq!(r.code, 1);
    let report: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(report["errors"], 5, "{report}");
}

#[test]
fn lint_reads_directories_recursively() {
    let r = run(&["lint", &format!("{REPO}/wasmplugin/hipstershop")]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(r.stdout.lines().filter(|l| l.contains(": ok: ")).count(), 5);
    let broken = write("broken.yaml", BROKEN_WASMPLUGIN);
    let dir = broken.parent().unwrap();
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("sub/also.yml"), BROKEN_WASMPLUGIN).unwrap();
    std::fs::write(dir.join("README.txt"), "not read").unwrap();
    let r = run(&["lint", s(dir)]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("broken.yaml (document 1)"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("also.yml (document 1)"), "{}", r.stderr);
    assert!(!r.stderr.contains("README"), "{}", r.stderr);
}

#[test]
fn lint_reports_syntax_errors_and_usage() {
    let bad = write("bad.json", "{\"resources\": [}");
    let r = run(&["lint", s(&bad)]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("not valid JSON"), "{}", r.stderr);
    assert_eq!(run(&["lint"]).code, 1);
    assert_eq!(run(&["frobnicate"]).code, 1);
}

// ---------------------------------------------------------------------------------------
// check

#[test]
fn check_allows_and_names_the_allow_rule() {
    let r = run(&[
        "check",
        s(&bookinfo()),
        "--path",
        "/details/1",
        "--principal",
        PRODUCTPAGE,
    ]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("decision: ALLOW"), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("policy:   ns[default]-policy[details-viewer]-rule[0]"),
        "{}",
        r.stdout
    );
}

#[test]
fn check_denies_with_the_deny_rule_or_no_allow_match() {
    let cfg = bookinfo();
    let (code, v) = check_json(&cfg, &["--path", "/admin", "--principal", PRODUCTPAGE]);
    assert_eq!(code, 2);
    assert_eq!(v["decision"], "deny");
    assert_eq!(v["status"], 403);
    assert_eq!(v["policy"], "ns[default]-policy[deny-admin]-rule[0]");
    assert_eq!(v["summary"], "deny ns[default]-policy[deny-admin]-rule[0]");

    // No client certificate: the ALLOW policy applies and nothing matches.
    let (code, v) = check_json(&cfg, &["--path", "/details/1"]);
    assert_eq!(code, 2);
    assert_eq!(v["policy"], Value::Null);
    assert_eq!(v["summary"], "deny none");
    assert_eq!(
        v["reason"],
        "ALLOW policies apply and no ALLOW rule matched"
    );

    // Wrong method.
    let (code, _) = check_json(
        &cfg,
        &[
            "--method",
            "post",
            "--path",
            "/details/1",
            "--principal",
            PRODUCTPAGE,
        ],
    );
    assert_eq!(code, 2);
}

#[test]
fn check_reports_dry_run_and_audit_without_enforcing_them() {
    let cfg = bookinfo();
    let (code, v) = check_json(
        &cfg,
        &["--path", "/details/beta", "--principal", PRODUCTPAGE],
    );
    assert_eq!(code, 0, "{v}");
    assert_eq!(
        v["dryRun"],
        json!({"result": "wouldDeny", "policy": "ns[default]-policy[dry-deny-beta]-rule[0]"})
    );
    assert_eq!(v["audit"], Value::Null);

    let (code, v) = check_json(
        &cfg,
        &["--path", "/details/audited", "--principal", PRODUCTPAGE],
    );
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["audit"], "ns[default]-policy[audit-details]-rule[0]");
    assert_eq!(v["dryRun"]["result"], "wouldAllow");
    assert_eq!(
        v["filterState"]["wasm.envoy.common.access_log_hint"],
        "true"
    );
    assert_eq!(
        v["filterState"]["wasm.envoy.filters.http.rbac.istio_dry_run_deny_shadow_engine_result"],
        "allowed"
    );

    let r = run(&[
        "check",
        s(&cfg),
        "--path",
        "/details/beta",
        "--principal",
        PRODUCTPAGE,
    ]);
    assert!(
        r.stdout
            .contains("dry-run:  would deny: ns[default]-policy[dry-deny-beta]-rule[0]"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains(
            "state:    wasm.envoy.filters.http.rbac.istio_dry_run_deny_shadow_effective_policy_id \
             = ns[default]-policy[dry-deny-beta]-rule[0]"
        ),
        "{}",
        r.stdout
    );
}

#[test]
fn check_uses_headers_ports_and_addresses() {
    let cfg = config(vec![ap(
        "deny-some",
        json!({"action": "DENY", "rules": [
            {"when": [{"key": "request.headers[x-env]", "values": ["test"]}]},
            {"to": [{"operation": {"ports": ["8080"]}}]},
            {"from": [{"source": {"ipBlocks": ["10.0.0.0/8"]}}]},
            {"to": [{"operation": {"hosts": ["admin.example.com"]}}]}]}),
    )]);
    let policy = |i: usize| format!("ns[default]-policy[deny-some]-rule[{i}]");
    assert_eq!(check_json(&cfg, &[]).0, 0);
    let (code, v) = check_json(&cfg, &["--header", "x-env=test"]);
    assert_eq!((code, v["policy"].as_str().unwrap()), (2, &*policy(0)));
    let (code, v) = check_json(&cfg, &["--header", "X-Env: test"]);
    assert_eq!((code, v["policy"].as_str().unwrap()), (2, &*policy(0)));
    assert_eq!(check_json(&cfg, &["--header", "x-env=test:1"]).0, 0);
    let (code, v) = check_json(&cfg, &["--port", "8080"]);
    assert_eq!((code, v["policy"].as_str().unwrap()), (2, &*policy(1)));
    let (code, v) = check_json(&cfg, &["--source-ip", "10.1.2.3"]);
    assert_eq!((code, v["policy"].as_str().unwrap()), (2, &*policy(2)));
    let (code, v) = check_json(&cfg, &["--host", "admin.example.com"]);
    assert_eq!((code, v["policy"].as_str().unwrap()), (2, &*policy(3)));
    assert_eq!(check_json(&cfg, &["--port", "9090"]).0, 0);
}

fn jwt_config(key: &HS256Key) -> PathBuf {
    jwt_config_with(
        key,
        ap(
            "require-jwt",
            json!({"action": "ALLOW",
                "rules": [{"from": [{"source": {
                    "requestPrincipals": [format!("{ISS}/alice")]}}]}]}),
        ),
    )
}

/// A RequestAuthentication for ISS with `key` inline, and `policy`.
fn jwt_config_with(key: &HS256Key, policy: Value) -> PathBuf {
    let k = Base64UrlSafeNoPadding::encode_to_string(key.to_bytes()).unwrap();
    let jwks = json!({"keys": [{"kty": "oct", "alg": "HS256", "kid": "hs-1", "k": k}]}).to_string();
    config(vec![
        json!({"apiVersion": "security.istio.io/v1", "kind": "RequestAuthentication",
               "metadata": {"name": "ra", "namespace": "default"},
               "spec": {"jwtRules": [{"issuer": ISS, "jwks": jwks}]}}),
        policy,
    ])
}

/// `iss` ISS, `sub` alice, `exp` as given.
fn alice(exp: u64) -> JWTClaims<serde_json::Map<String, Value>> {
    let mut custom = serde_json::Map::new();
    custom.insert("iss".into(), json!(ISS));
    custom.insert("sub".into(), json!("alice"));
    custom.insert("exp".into(), json!(exp));
    JWTClaims {
        issued_at: None,
        expires_at: None,
        invalid_before: None,
        issuer: None,
        subject: None,
        audiences: None,
        jwt_id: None,
        nonce: None,
        custom,
    }
}

fn token(key: &HS256Key, exp: u64) -> String {
    key.authenticate(alice(exp)).unwrap()
}

#[test]
fn check_verifies_jwts_and_answers_401_like_jwt_authn() {
    let key = HS256Key::generate().with_key_id("hs-1");
    let cfg = jwt_config(&key);

    let (code, v) = check_json(&cfg, &["--jwt", &token(&key, NOW + 3600)]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["authn"]["result"], "verified");
    assert_eq!(v["authn"]["subject"], "alice");
    assert_eq!(v["policy"], "ns[default]-policy[require-jwt]-rule[0]");

    // Expired (beyond the 60 s skew): 401 before authorization.
    let (code, v) = check_json(&cfg, &["--jwt", &token(&key, NOW - 3600)]);
    assert_eq!(code, 2, "{v}");
    assert_eq!(v["status"], 401);
    assert_eq!(v["authn"]["message"], "Jwt is expired");

    // Signed with another key.
    let other = HS256Key::generate().with_key_id("hs-1");
    let (code, v) = check_json(&cfg, &["--jwt", &token(&other, NOW + 3600)]);
    assert_eq!((code, v["status"].as_u64()), (2, Some(401)), "{v}");
    assert_eq!(v["authn"]["message"], "Jwt verification fails");

    // No token: authentication passes, the ALLOW policy does not match.
    let (code, v) = check_json(&cfg, &[]);
    assert_eq!((code, v["status"].as_u64()), (2, Some(403)), "{v}");
    assert_eq!(v["authn"]["result"], "noToken");

    let r = run(&["check", s(&cfg), "--jwt", "not-a-jwt"]);
    assert_eq!(r.code, 2);
    assert!(r.stdout.contains("decision: DENY (401 "), "{}", r.stdout);
}

#[test]
fn check_says_remote_jwks_are_not_fetched() {
    let cfg = config(vec![json!({
        "apiVersion": "security.istio.io/v1", "kind": "RequestAuthentication",
        "metadata": {"name": "ra", "namespace": "default"},
        "spec": {"jwtRules": [{"issuer": ISS, "jwksUri": "https://issuer.example.com/jwks"}]}})]);
    let key = HS256Key::generate();
    let (code, v) = check_json(&cfg, &["--jwt", &token(&key, NOW + 3600)]);
    assert_eq!(code, 2, "{v}");
    assert_eq!(v["authn"]["message"], "Jwks remote fetch is failed");
    let notes = v["notes"].to_string();
    assert!(notes.contains("remote JWKS are not fetched"), "{notes}");
    assert!(notes.contains("https://issuer.example.com/jwks"), "{notes}");
}

#[test]
fn check_takes_remote_keys_from_a_jwks_file_and_a_bearer_prefix() {
    let uri = "https://issuer.example.com/jwks";
    let cfg = config(vec![
        json!({"apiVersion": "security.istio.io/v1", "kind": "RequestAuthentication",
            "metadata": {"name": "ra", "namespace": "default"},
            "spec": {"jwtRules": [{"issuer": ISS, "jwksUri": uri}]}}),
        ap(
            "require-jwt",
            json!({"action": "ALLOW",
                "rules": [{"from": [{"source": {
                    "requestPrincipals": [format!("{ISS}/alice")]}}]}]}),
        ),
    ]);
    // A remote JWKS holds public keys only (oct keys are refused there, as in Envoy).
    let key = RS256KeyPair::generate(2048).unwrap().with_key_id("rsa-1");
    let c = key.public_key().to_components();
    let b64 = |b: &[u8]| Base64UrlSafeNoPadding::encode_to_string(b).unwrap();
    let jwks = write(
        "jwks.json",
        &json!({"keys": [{"kty": "RSA", "alg": "RS256", "kid": "rsa-1",
            "n": b64(&c.n), "e": b64(&c.e)}]})
        .to_string(),
    );
    let bearer = format!("Bearer {}", key.sign(alice(NOW + 3600)).unwrap());
    for supplied in [s(&jwks).to_string(), format!("{uri}={}", s(&jwks))] {
        let (code, v) = check_json(&cfg, &["--jwt", &bearer, "--jwks", &supplied]);
        assert_eq!(code, 0, "{v}");
        assert_eq!(v["authn"]["result"], "verified");
        assert!(v["notes"].to_string().contains("supplied locally"), "{v}");
    }
    let other = format!("https://other.example.com/jwks={}", s(&jwks));
    assert_eq!(run(&["check", s(&cfg), "--jwks", &other]).code, 1);
}

#[test]
fn check_labels_without_namespace_are_in_the_default_namespace() {
    let cfg = write(
        "policies.yaml",
        "apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: only-web, namespace: default}
spec:
  selector: {matchLabels: {app: web}}
  rules: [{to: [{operation: {paths: [/ok]}}]}]
",
    );
    let (code, v) = check_json(&cfg, &["--label", "app=web", "--path", "/no"]);
    assert_eq!(code, 2, "{v}");
    assert_eq!(v["workload"]["namespace"], "default");
    assert_eq!(v["workload"]["labels"]["app"], "web");
    assert!(v["notes"].to_string().contains("namespace default"), "{v}");
    // Another namespace given explicitly: the policy does not apply.
    let (code, _) = check_json(
        &cfg,
        &["--label", "app=web", "--namespace", "shop", "--path", "/no"],
    );
    assert_eq!(code, 0);
}

#[test]
fn check_explains_the_deciding_rule_and_a_default_deny() {
    let cfg = bookinfo();
    let (code, v) = check_json(&cfg, &["--path", "/details/1", "--principal", PRODUCTPAGE]);
    assert_eq!(code, 0, "{v}");
    let rule = &v["explanation"]["decidingRule"];
    assert_eq!(rule["rule"], "ns[default]-policy[details-viewer]-rule[0]");
    let parts: Vec<(&str, &str)> = rule["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["part"].as_str().unwrap(), p["result"].as_str().unwrap()))
        .collect();
    assert_eq!(parts, [("from", "matched"), ("to", "matched")]);

    // POST by productpage: the source matches, the operation does not.
    let (code, v) = check_json(
        &cfg,
        &[
            "--method",
            "POST",
            "--path",
            "/details/1",
            "--principal",
            PRODUCTPAGE,
        ],
    );
    assert_eq!(code, 2, "{v}");
    let closest = &v["explanation"]["closestAllow"];
    assert_eq!(
        closest["rule"],
        "ns[default]-policy[details-viewer]-rule[0]"
    );
    assert_eq!(closest["failed"], json!(["to"]));
    assert_eq!(
        closest["parts"][1]["reasons"],
        json!([r#"to.operation.methods: method "POST" is not one of ["GET"]"#]),
        "{closest}"
    );

    let r = run(&["check", s(&cfg), "--method", "POST", "--path", "/details/1"]);
    assert!(
        r.stdout.contains(
            "why:      default deny; closest ALLOW rule \
            ns[default]-policy[details-viewer]-rule[0]: from failed, to failed\n\
            why:        from failed: from.source.principals: no peer certificate (plaintext), \
            so none of [\"cluster.local/ns/default/sa/productpage\"] can match\n\
            why:        to failed: to.operation.methods: method \"POST\" is not one of [\"GET\"]\n"
        ),
        "{}",
        r.stdout
    );
    let r = run(&["check", s(&cfg), "--path", "/admin/x"]);
    assert!(
        r.stdout.contains(
            "why:      rule ns[default]-policy[deny-admin]-rule[0]: to matched\n\
            why:        to matched: to.operation.paths: request path \"/admin/x\" is one of \
            [\"/admin*\"]\n"
        ),
        "{}",
        r.stdout
    );
}

/// The `why:` reasons of one part of the explained rule (`decidingRule` or `closestAllow`).
fn reasons(v: &Value, rule: &str, part: &str) -> Vec<String> {
    let parts = v["explanation"][rule]["parts"].as_array().unwrap();
    let found = parts.iter().find(|p| p["part"] == part);
    let found = found.unwrap_or_else(|| panic!("no part {part} in {v}"));
    serde_json::from_value(found["reasons"].clone()).unwrap()
}

#[test]
fn check_explains_each_field_in_istio_terms() {
    let cfg = config(vec![ap(
        "api",
        json!({"rules": [
            {"from": [{"source": {
                "principals": ["cluster.local/ns/default/sa/web"],
                "notNamespaces": ["test"]}}],
             "to": [{"operation": {
                "methods": ["GET", "HEAD"],
                "paths": ["/api/*", "/v1/{*}/items"],
                "notPaths": ["/api/admin"],
                "ports": ["8080"]}}],
             "when": [{"key": "request.headers[x-tenant]", "notValues": ["blocked"]}]},
            {"from": [{"source": {"ipBlocks": ["10.1.0.0/16"], "namespaces": ["ops", "infra*"]}}]}
        ]}),
    )]);
    let web = "cluster.local/ns/default/sa/web";
    let closest = "closestAllow";

    // A path outside the list, and the header `notValues` names.
    let base = ["--principal", web, "--port", "8080"];
    let (code, v) = check_json(&cfg, &[&base[..], &["--path", "/admin"]].concat());
    assert_eq!(code, 2, "{v}");
    assert_eq!(
        reasons(&v, closest, "to"),
        [r#"to.operation.paths: request path "/admin" is not one of ["/api/*", "/v1/{*}/items"]"#]
    );
    assert_eq!(
        reasons(&v, closest, "from"),
        [
            concat!(
                r#"from.source.principals: peer "spiffe://cluster.local/ns/default/sa/web" "#,
                r#"is one of ["cluster.local/ns/default/sa/web"]"#
            ),
            concat!(
                r#"from.source.notNamespaces: peer "spiffe://cluster.local/ns/default/sa/web" "#,
                r#"is not one of ["test"]"#
            ),
        ]
    );

    // notPaths and a `when` notValues that the request hits; a template path matches.
    let (_, v) = check_json(
        &cfg,
        &[
            &base[..],
            &["--path", "/api/admin", "--header", "x-tenant=blocked"],
        ]
        .concat(),
    );
    assert_eq!(
        reasons(&v, closest, "to"),
        [r#"to.operation.notPaths: request path "/api/admin" is one of ["/api/admin"]"#]
    );
    assert_eq!(
        reasons(&v, closest, "when[0]"),
        [concat!(
            r#"when request.headers[x-tenant] notValues: header x-tenant "blocked" "#,
            r#"is one of ["blocked"]"#
        )]
    );

    // Methods and ports.
    let (_, v) = check_json(
        &cfg,
        &[
            "--principal",
            web,
            "--port",
            "9090",
            "--method",
            "POST",
            "--path",
            "/v1/a/items",
        ],
    );
    assert_eq!(
        reasons(&v, closest, "to"),
        [
            r#"to.operation.ports: port 9090 is not one of ["8080"]"#,
            r#"to.operation.methods: method "POST" is not one of ["GET", "HEAD"]"#,
        ]
    );

    // The deciding rule: namespaces (a set and a wildcard) and ipBlocks, all listed.
    let (code, v) = check_json(
        &cfg,
        &[
            "--principal",
            "cluster.local/ns/infra-a/sa/x",
            "--source-ip",
            "10.1.2.3",
        ],
    );
    assert_eq!(code, 0, "{v}");
    assert_eq!(
        v["explanation"]["decidingRule"]["rule"],
        "ns[default]-policy[api]-rule[1]"
    );
    assert_eq!(
        reasons(&v, "decidingRule", "from"),
        [
            concat!(
                r#"from.source.namespaces: peer "spiffe://cluster.local/ns/infra-a/sa/x" "#,
                r#"is one of ["infra*", "ops"]"#
            ),
            r#"from.source.ipBlocks: source ip 10.1.2.3 is one of ["10.1.0.0/16"]"#,
        ]
    );
}

#[test]
fn check_explains_jwt_claims_and_request_principals() {
    let key = HS256Key::generate().with_key_id("hs-1");
    let cfg = jwt_config_with(
        &key,
        ap(
            "claims",
            json!({"rules": [{
                "from": [{"source": {"requestPrincipals": [format!("{ISS}/*")]}}],
                "when": [{"key": "request.auth.claims[sub]", "values": ["bob"]}]}]}),
        ),
    );
    let (code, v) = check_json(&cfg, &["--jwt", &token(&key, NOW + 3600)]);
    assert_eq!(code, 2, "{v}");
    assert_eq!(
        reasons(&v, "closestAllow", "from"),
        [format!(
            r#"from.source.requestPrincipals: token principal "{ISS}/alice" is one of ["{ISS}/*"]"#
        )]
    );
    assert_eq!(
        reasons(&v, "closestAllow", "when[0]"),
        [r#"when request.auth.claims[sub]: claim sub "alice" is not one of ["bob"]"#]
    );
    let (_, v) = check_json(&cfg, &[]);
    assert_eq!(
        reasons(&v, "closestAllow", "when[0]"),
        [r#"when request.auth.claims[sub]: no verified token, so none of ["bob"] can match"#]
    );
}

#[test]
fn check_errors_exit_1() {
    let bad = write("bad.json", "{\"resources\": 3}");
    let r = run(&["check", s(&bad)]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("resources: invalid type"), "{}", r.stderr);
    assert_eq!(run(&["check", s(&bookinfo()), "--port", "x"]).code, 1);
    assert_eq!(
        run(&["check", s(&bookinfo()), "--source-ip", "nope"]).code,
        1
    );
    assert_eq!(run(&["check"]).code, 1);
}

// ---------------------------------------------------------------------------------------
// convert

const KUBECTL_STREAM: &str = "apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: checkout-viewer
  namespace: shop
  uid: 0a4f
  resourceVersion: '4711'
  annotations:
    kubectl.kubernetes.io/last-applied-configuration: '{}'
spec:
  selector: {matchLabels: {app: checkout}}
  action: ALLOW
  rules:
  - from: [{source: {namespaces: [shop]}}]
status: {}
---
apiVersion: v1
kind: List
items:
- apiVersion: security.istio.io/v1
  kind: AuthorizationPolicy
  metadata: {name: deny-admin}
  spec:
    action: DENY
    rules: [{to: [{operation: {paths: [/admin*]}}]}]
";

#[test]
fn convert_to_wasmplugin_lints_and_decides() {
    let input = write("policies.yaml", KUBECTL_STREAM);
    let out = input.with_file_name("wasmplugin.yaml");
    let r = run(&[
        "convert",
        s(&input),
        "--name",
        "checkout-authz",
        "--namespace",
        "shop",
        "--selector",
        "app=checkout",
        "-o",
        s(&out),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let text = std::fs::read_to_string(&out).unwrap();
    let wp: Value = serde_saphyr::from_str(&text).unwrap();
    assert_eq!(wp["apiVersion"], "extensions.istio.io/v1alpha1");
    assert_eq!(wp["kind"], "WasmPlugin");
    assert_eq!(
        wp["metadata"],
        json!({"name": "checkout-authz", "namespace": "shop"})
    );
    let spec = &wp["spec"];
    assert_eq!(spec["phase"], "AUTHZ");
    assert_eq!(spec["failStrategy"], "FAIL_CLOSE");
    assert_eq!(spec["match"], json!([{"mode": "SERVER"}]));
    assert_eq!(
        spec["selector"],
        json!({"matchLabels": {"app": "checkout"}})
    );
    assert_eq!(
        spec["url"],
        format!(
            "oci://ghcr.io/meshguard/meshguard:{}",
            env!("CARGO_PKG_VERSION")
        )
    );
    let resources = spec["pluginConfig"]["resources"].as_array().unwrap();
    assert_eq!(resources.len(), 2, "the List is flattened");
    assert_eq!(
        resources[0]["metadata"],
        json!({"name": "checkout-viewer", "namespace": "shop"}),
        "server metadata and last-applied are dropped"
    );
    assert!(resources[0].get("status").is_none());
    assert_eq!(resources[1]["metadata"]["namespace"], "shop");

    let r = run(&["lint", s(&out)]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("ok: 2 resources"), "{}", r.stdout);

    let r = run(&[
        "check",
        s(&out),
        "--namespace",
        "shop",
        "--label",
        "app=checkout",
        "--principal",
        "spiffe://cluster.local/ns/shop/sa/web",
        "--path",
        "/cart",
    ]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains("policy:   ns[shop]-policy[checkout-viewer]-rule[0]"),
        "{}",
        r.stdout
    );
}

#[test]
fn convert_declares_the_cluster_each_remote_jwks_needs() {
    let src = write(
        "ra.yaml",
        "apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt, namespace: shop}
spec:
  jwtRules:
  - issuer: https://kc.example.com/realms/shop
    jwksUri: https://kc.example.com/realms/shop/certs
  - issuer: http://keys.iam:8080
    jwksUri: http://keys.iam:8080/jwks
",
    );
    let r = run(&[
        "convert",
        s(&src),
        "--namespace",
        "shop",
        "--selector",
        "app=web",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let docs: Vec<Value> = serde_saphyr::from_multiple(&r.stdout).unwrap();
    let find = |kind: &str, host: &str| {
        docs.iter()
            .find(|d| {
                d["kind"] == kind
                    && (d["spec"]["hosts"] == json!([host]) || d["spec"]["host"] == host)
            })
            .unwrap_or_else(|| panic!("no {kind} for {host}: {}", r.stdout))
    };
    assert_eq!(docs.len(), 4, "{}", r.stdout);
    assert_eq!(docs[0]["kind"], "WasmPlugin");
    let kc = find("ServiceEntry", "kc.example.com");
    assert_eq!(kc["spec"]["ports"][0]["number"], 443);
    assert_eq!(kc["spec"]["ports"][0]["protocol"], "HTTP");
    let tls = &find("DestinationRule", "kc.example.com")["spec"]["trafficPolicy"];
    assert_eq!(
        tls["portLevelSettings"][0]["tls"],
        json!({"mode": "SIMPLE", "sni": "kc.example.com"})
    );
    let iam = find("ServiceEntry", "keys.iam");
    assert_eq!(iam["spec"]["ports"][0]["number"], 8080);
    assert!(r
        .stdout
        .contains("through cluster outbound|443||kc.example.com"));
    let out = write("out.yaml", &r.stdout);
    let r = run(&["lint", "--skip-unknown-kinds", s(&out)]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
}

#[test]
fn convert_to_config_round_trips() {
    let input = write("policies.yaml", KUBECTL_STREAM);
    let r = run(&["convert", s(&input), "--to", "config"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let config: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(config["resources"].as_array().unwrap().len(), 2);
    let out = write("config.json", &r.stdout);
    let r = run(&["lint", s(&out)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
fn convert_refuses_invalid_resources() {
    let input = write(
        "bad.yaml",
        "apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: c}
spec: {action: CUSTOM, provider: {name: x}, rules: [{}]}
",
    );
    let r = run(&["convert", s(&input)]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("resources[0].spec"), "{}", r.stderr);
    assert!(r.stdout.is_empty());
    assert_eq!(run(&["convert", s(&input), "--to", "helm"]).code, 1);
}
