//! Shared helpers for the native engine tests: build a plugin configuration as JSON, load it
//! through the public `meshguard_core::plugin::plugin_config::load`, and decide requests built
//! from headers and a `StaticConnection`.
//!
//! Defaults: the workload is namespace `foo` with labels `app=b, version=v1`; the root
//! namespace is Istio's default `istio-system`; the trust domain is `cluster.local`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    dead_code
)]

use std::cell::RefCell;
use std::net::IpAddr;

use meshguard_core::authn::authenticator::AuthnState;
use meshguard_core::error::ConfigError;
use meshguard_core::plugin::engine::{Decision, Engine};
use meshguard_core::plugin::plugin_config::{load, LoadReport, NodeInfo};
use meshguard_core::plugin::request_pipeline::{
    decide_request, PipelineRequest, RequestOutcome, Side,
};
use meshguard_core::request::peer::Peer;
use meshguard_core::request::request_view::{Headers, StaticConnection};
use serde_json::{json, Value};

/// The workload namespace used by [`cfg`].
pub const NS: &str = "foo";

/// A plugin configuration for workload `foo` (`app=b, version=v1`) holding `resources`.
pub fn cfg(resources: Vec<Value>) -> Value {
    json!({
        "workload": {"namespace": NS, "labels": {"app": "b", "version": "v1"}},
        "resources": resources,
    })
}

/// A `security.istio.io/v1` AuthorizationPolicy.
pub fn ap(namespace: &str, name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    })
}

/// Like [`ap`], with `istio.io/dry-run` set to `dry_run`.
pub fn ap_dry_run(namespace: &str, name: &str, dry_run: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": name, "namespace": namespace,
                     "annotations": {"istio.io/dry-run": dry_run}},
        "spec": spec,
    })
}

fn bytes(config: &Value) -> Vec<u8> {
    serde_json::to_vec(config).unwrap()
}

/// Loads a configuration that must be valid.
pub fn load_ok(config: &Value) -> Engine {
    load_with(config, &NodeInfo::default()).0
}

/// Loads a configuration that must be valid, with explicit node metadata.
pub fn load_with(config: &Value, node: &NodeInfo) -> (Engine, LoadReport) {
    match load(&bytes(config), node) {
        Ok(loaded) => loaded,
        Err(e) => panic!("expected the configuration to load, got error {e}\nconfig: {config}"),
    }
}

/// Loads a configuration that must be rejected and returns the error.
pub fn load_err(config: &Value) -> ConfigError {
    match load(&bytes(config), &NodeInfo::default()) {
        Ok(_) => panic!("expected a configuration error, but it loaded\nconfig: {config}"),
        Err(e) => e,
    }
}

/// One policy `p` in the workload namespace with `spec`.
pub fn engine(spec: Value) -> Engine {
    load_ok(&cfg(vec![ap(NS, "p", spec)]))
}

/// One ALLOW policy `p` in the workload namespace with a single rule.
pub fn allow_rule(rule: Value) -> Engine {
    engine(json!({"action": "ALLOW", "rules": [rule]}))
}

/// One DENY policy `p` in the workload namespace with a single rule.
pub fn deny_rule(rule: Value) -> Engine {
    engine(json!({"action": "DENY", "rules": [rule]}))
}

/// The error for a single policy `p` in the workload namespace with `spec`.
pub fn spec_err(spec: Value) -> ConfigError {
    load_err(&cfg(vec![ap(NS, "p", spec)]))
}

/// The error for a single ALLOW policy with one rule.
pub fn rule_err(rule: Value) -> ConfigError {
    spec_err(json!({"action": "ALLOW", "rules": [rule]}))
}

/// A rule with one source.
pub fn from(source: Value) -> Value {
    json!({"from": [{"source": source}]})
}

/// A rule with one operation.
pub fn to(operation: Value) -> Value {
    json!({"to": [{"operation": operation}]})
}

/// A rule with one condition.
pub fn when(key: &str, values: &[&str]) -> Value {
    json!({"when": [{"key": key, "values": values}]})
}

/// A rule with one negative condition.
pub fn when_not(key: &str, not_values: &[&str]) -> Value {
    json!({"when": [{"key": key, "notValues": not_values}]})
}

/// The policy id Istio gives rule `rule` of policy `name` in `ns` (authz-semantics §11).
pub fn id(ns: &str, name: &str, rule: usize) -> String {
    format!("ns[{ns}]-policy[{name}]-rule[{rule}]")
}

/// The header list a filter sees: pseudo-headers first, then `extra` (lower-case names).
pub fn request_headers(
    method: &str,
    path: &str,
    authority: &str,
    extra: &[(&str, &str)],
) -> Vec<(String, Vec<u8>)> {
    let mut headers = vec![
        (":method".to_string(), method.as_bytes().to_vec()),
        (":path".to_string(), path.as_bytes().to_vec()),
        (":authority".to_string(), authority.as_bytes().to_vec()),
        (":scheme".to_string(), b"http".to_vec()),
    ];
    headers.extend(
        extra
            .iter()
            .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec())),
    );
    headers
}

/// Decides a request given as method, path, authority, extra headers and a connection.
pub fn decide<'e>(
    engine: &'e Engine,
    method: &str,
    path: &str,
    authority: &str,
    extra: &[(&str, &str)],
    connection: &StaticConnection,
) -> Decision<'e> {
    let headers = request_headers(method, path, authority, extra);
    engine.decide(Headers::new(&headers), connection)
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A peer certificate with only a URI SAN.
pub fn uri_peer(uri: &str) -> Peer {
    Peer::new(Some(uri.as_bytes().to_vec()), None, None)
}

/// A request under construction. Defaults: `GET / ` with `:authority: example.com`, a
/// plaintext connection from 10.0.0.1 (both source and remote) to 10.0.0.2:8080, no SNI.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: String,
    pub path: String,
    pub authority: String,
    pub headers: Vec<(String, String)>,
    pub conn: StaticConnection,
}

impl Req {
    pub fn new(method: &str, path: &str, authority: &str) -> Req {
        Req {
            method: method.to_string(),
            path: path.to_string(),
            authority: authority.to_string(),
            headers: Vec::new(),
            conn: StaticConnection {
                peer: None,
                source_ip: Some(ip("10.0.0.1")),
                remote_ip: Some(ip("10.0.0.1")),
                destination_ip: Some(ip("10.0.0.2")),
                destination_port: Some(8080),
                ..StaticConnection::default()
            },
        }
    }

    pub fn get(path: &str) -> Req {
        Req::new("GET", path, "example.com")
    }

    pub fn method(mut self, method: &str) -> Req {
        self.method = method.to_string();
        self
    }

    pub fn authority(mut self, authority: &str) -> Req {
        self.authority = authority.to_string();
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Req {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// mTLS peer whose certificate has only this URI SAN.
    pub fn uri(mut self, uri: &str) -> Req {
        self.conn.peer = Some(uri_peer(uri));
        self
    }

    /// mTLS peer whose certificate has only this DNS SAN.
    pub fn dns(mut self, dns: &str) -> Req {
        self.conn.peer = Some(Peer::new(None, Some(dns.as_bytes().to_vec()), None));
        self
    }

    /// mTLS peer whose certificate has only this subject.
    pub fn subject(mut self, subject: &str) -> Req {
        self.conn.peer = Some(Peer::new(None, None, Some(subject.as_bytes().to_vec())));
        self
    }

    pub fn peer(mut self, peer: Option<Peer>) -> Req {
        self.conn.peer = peer;
        self
    }

    /// Plaintext: no peer certificate.
    pub fn plaintext(mut self) -> Req {
        self.conn.peer = None;
        self
    }

    pub fn source_ip(mut self, s: &str) -> Req {
        self.conn.source_ip = Some(ip(s));
        self
    }

    pub fn remote_ip(mut self, s: &str) -> Req {
        self.conn.remote_ip = Some(ip(s));
        self
    }

    pub fn destination_ip(mut self, s: &str) -> Req {
        self.conn.destination_ip = Some(ip(s));
        self
    }

    pub fn port(mut self, port: u16) -> Req {
        self.conn.destination_port = Some(port);
        self
    }

    pub fn sni(mut self, sni: &str) -> Req {
        self.conn.sni = Some(sni.as_bytes().to_vec());
        self
    }

    pub fn decide<'e>(&self, engine: &'e Engine) -> Decision<'e> {
        let extra: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        decide(
            engine,
            &self.method,
            &self.path,
            &self.authority,
            &extra,
            &self.conn,
        )
    }

    pub fn allowed(&self, engine: &Engine) -> bool {
        self.decide(engine).is_allowed()
    }
}

/// The pipeline's clock in [`run_pipeline`]: 2027-01-15.
pub const NOW: u64 = 1_800_000_000;

/// Runs `req` through the whole request pipeline (`decide_request`, as the filter and
/// `meshguard check` do) on `side`, at [`NOW`], with a fresh token cache.
pub fn run_pipeline<'e>(engine: &'e Engine, req: &Req, side: Side) -> RequestOutcome<'e> {
    let mut headers: Vec<(String, Vec<u8>)> = vec![
        (":method".into(), req.method.clone().into_bytes()),
        (":path".into(), req.path.clone().into_bytes()),
        (":authority".into(), req.authority.clone().into_bytes()),
        (":scheme".into(), b"http".to_vec()),
    ];
    for (n, v) in &req.headers {
        headers.push((n.clone(), v.clone().into_bytes()));
    }
    let no_payload = || None;
    let request = PipelineRequest {
        headers: Headers::new(&headers),
        connection: &req.conn,
        side,
        clock: &|| NOW,
        jwt_authn_payload: &no_payload,
    };
    let cache = RefCell::new(AuthnState::new(10));
    decide_request(engine, &request, &cache)
}

/// Asserts that an ALLOW policy with `rule` allows exactly the requests in `yes` and a DENY
/// policy with the same rule denies exactly those: the rule matches `yes` and not `no`.
pub fn assert_rule_matches(rule: Value, yes: &[Req], no: &[Req]) {
    let allow = allow_rule(rule.clone());
    let deny = deny_rule(rule.clone());
    for r in yes {
        assert!(r.allowed(&allow), "ALLOW rule {rule} should match {r:?}");
        assert!(!r.allowed(&deny), "DENY rule {rule} should match {r:?}");
    }
    for r in no {
        assert!(
            !r.allowed(&allow),
            "ALLOW rule {rule} should not match {r:?}"
        );
        assert!(r.allowed(&deny), "DENY rule {rule} should not match {r:?}");
    }
}

/// Asserts an error whose path starts with `prefix`.
pub fn assert_err_at(err: &ConfigError, prefix: &str) {
    assert!(
        err.path.to_string().starts_with(prefix),
        "expected an error at `{prefix}...`, got `{}`: {}",
        err.path,
        err.reason
    );
}
