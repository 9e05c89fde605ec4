//! `config_load`: the plugin configuration loader must reject, never panic.
//!
//! Every input is used twice:
//! 1. as raw bytes for `meshguard_core::plugin::plugin_config::load` (the JSON parser, serde, the envelope checks);
//! 2. as the entropy for a semi-valid configuration (AuthorizationPolicy, RequestAuthentication,
//!    PeerAuthentication, Sidecar resources with values drawn from vocabularies of edge cases:
//!    path templates with braces and stars, CIDRs, ports, `when` keys, JWKS, JWT locations),
//!    so the per-field compilers are reached. A configuration that loads is then asked to
//!    decide a few requests (compiled-but-odd predicates must evaluate without panicking).
#![no_main]

#[path = "common.rs"]
mod common;

use arbitrary::{Result, Unstructured};
use common::*;
use libfuzzer_sys::fuzz_target;
use meshguard_core::plugin::plugin_config::{load, NodeInfo};
use meshguard_core::plugin::engine::Engine;
use meshguard_core::request::peer::Peer;
use meshguard_core::request::request_view::{Headers, StaticConnection};
use serde_json::{json, Map, Value};

fuzz_target!(|data: &[u8]| {
    if let Ok((engine, _)) = load(data, &NodeInfo::default()) {
        exercise(&engine);
    }
    let mut u = Unstructured::new(data);
    if let Ok(config) = structured_config(&mut u) {
        debug("config", &config.to_string());
        let bytes = config.to_string().into_bytes();
        let node = NodeInfo {
            namespace: Some("foo".into()),
            labels: Some([("app".to_string(), "b".to_string())].into_iter().collect()),
        };
        if let Ok((engine, _)) = load(&bytes, &node) {
            exercise(&engine);
        }
    }
});

/// Decides a few fixed requests; only panics matter here.
fn exercise(engine: &Engine) {
    let headers: Vec<(String, Vec<u8>)> = vec![
        (":method".into(), b"GET".to_vec()),
        (":path".into(), b"/api/v1/x?q=1#f".to_vec()),
        (
            ":authority".into(),
            b"b.foo.svc.cluster.local:8080".to_vec(),
        ),
        ("x-role".into(), b"admin".to_vec()),
        ("x-role".into(), b"".to_vec()),
    ];
    let peer = Peer::new(
        Some(b"spiffe://cluster.local/ns/foo/sa/bar".to_vec()),
        Some(b"bar.foo.svc".to_vec()),
        Some(b"CN=bar".to_vec()),
    );
    let connections = [
        StaticConnection::default(),
        StaticConnection {
            peer: Some(peer),
            source_ip: "10.1.2.3".parse().ok(),
            remote_ip: "2001:db8::1".parse().ok(),
            destination_ip: "10.0.0.9".parse().ok(),
            destination_port: Some(8080),
            sni: Some(b"outbound_.8080_._.b.foo.svc.cluster.local".to_vec()),
            ..StaticConnection::default()
        },
        StaticConnection {
            source_ip_unknown: true,
            destination_port: Some(9090),
            ..StaticConnection::default()
        },
    ];
    for c in &connections {
        let _ = engine.decide(Headers::new(&headers), c);
        let _ = engine.egress_violation(Headers::new(&headers), c);
    }
    let _ = engine.policy_names();
}

fn structured_config(u: &mut Unstructured<'_>) -> Result<Value> {
    let mut config = Map::new();
    if u.ratio(3, 4)? {
        config.insert(
            "workload".into(),
            json!({"namespace": pick(u, &["foo", "istio-system", "bar", ""])?,
                   "labels": {"app": pick(u, &["b", "c"])?}}),
        );
    }
    if u.ratio(1, 4)? {
        config.insert(
            "trustDomain".into(),
            json!(pick(u, &["td", "cluster.local", ""])?),
        );
    }
    if u.ratio(1, 4)? {
        config.insert(
            "trustDomainAliases".into(),
            json!(list(u, 3, |u| pick(
                u,
                &["alias.td", "*.td", "cluster.local", "", "*"]
            ))?),
        );
    }
    if u.ratio(1, 8)? {
        config.insert(
            "rootNamespace".into(),
            json!(pick(u, &["istio-system", "foo", ""])?),
        );
    }
    if u.ratio(1, 8)? {
        config.insert(
            "outboundTrafficPolicy".into(),
            json!(pick(u, &["REGISTRY_ONLY", "ALLOW_ANY", "bogus"])?),
        );
    }
    if u.ratio(1, 8)? {
        config.insert(
            "direction".into(),
            json!(pick(u, &["inbound", "outbound", "auto"])?),
        );
    }
    if u.ratio(1, 8)? {
        config.insert(
            "jwtSource".into(),
            json!(pick(u, &["filter", "envoyJwtAuthn"])?),
        );
    }
    let resources = list(u, 4, resource)?;
    config.insert("resources".into(), Value::Array(resources));
    Ok(Value::Object(config))
}

fn metadata(u: &mut Unstructured<'_>) -> Result<Value> {
    let mut m = json!({"name": pick(u, &["p", "q", ""])?});
    if u.ratio(1, 2)? {
        m["namespace"] = json!(pick(u, &["foo", "istio-system", "bar", ""])?);
    }
    if u.ratio(1, 6)? {
        m["annotations"] =
            json!({"istio.io/dry-run": pick(u, &["true", "false", "1", "T", "maybe", ""])?});
    }
    if u.ratio(1, 8)? {
        m["creationTimestamp"] = json!(pick(u, &["2024-01-01T00:00:00Z", "x"])?);
    }
    Ok(m)
}

fn resource(u: &mut Unstructured<'_>) -> Result<Value> {
    let api = pick(
        u,
        &[
            "security.istio.io/v1",
            "security.istio.io/v1beta1",
            "networking.istio.io/v1",
        ],
    )?;
    let (kind, spec) = match u.int_in_range(0..=9)? {
        0..=5 => ("AuthorizationPolicy", authorization_policy(u)?),
        6..=7 => ("RequestAuthentication", request_authentication(u)?),
        8 => ("PeerAuthentication", peer_authentication(u)?),
        _ => ("Sidecar", sidecar(u)?),
    };
    let api = if kind == "Sidecar" && u.ratio(3, 4)? {
        "networking.istio.io/v1".to_string()
    } else {
        api
    };
    Ok(json!({"apiVersion": api, "kind": kind, "metadata": metadata(u)?, "spec": spec}))
}

fn selector(u: &mut Unstructured<'_>, key: &str) -> Result<Option<Value>> {
    if u.ratio(1, 3)? {
        let labels = if u.ratio(3, 4)? {
            json!({"app": pick(u, &["b", "c", ""])?})
        } else {
            json!({})
        };
        Ok(Some(json!({ key: labels })))
    } else {
        Ok(None)
    }
}

fn values(u: &mut Unstructured<'_>, vocab: &[&str]) -> Result<Value> {
    Ok(json!(list(u, 3, |u| pick(u, vocab))?))
}

fn authorization_policy(u: &mut Unstructured<'_>) -> Result<Value> {
    let mut spec = Map::new();
    if let Some(s) = selector(u, "matchLabels")? {
        spec.insert("selector".into(), s);
    }
    if u.ratio(1, 16)? {
        spec.insert("targetRef".into(), json!({"kind": "Gateway", "name": "g"}));
    }
    if u.ratio(7, 8)? {
        spec.insert(
            "action".into(),
            json!(pick(u, &["ALLOW", "DENY", "AUDIT", "CUSTOM", "allow"])?),
        );
    }
    if u.ratio(1, 16)? {
        spec.insert("provider".into(), json!({"name": "ext"}));
    }
    if u.ratio(7, 8)? {
        let rules = list(u, 4, |u| {
            if u.ratio(1, 10)? {
                return Ok(Value::Null);
            }
            rule(u)
        })?;
        spec.insert("rules".into(), Value::Array(rules));
    }
    Ok(Value::Object(spec))
}

fn rule(u: &mut Unstructured<'_>) -> Result<Value> {
    let mut r = Map::new();
    if u.ratio(1, 2)? {
        r.insert(
            "from".into(),
            json!(list(u, 2, |u| Ok(json!({"source": source(u)?})))?),
        );
    }
    if u.ratio(1, 2)? {
        r.insert(
            "to".into(),
            json!(list(u, 2, |u| Ok(json!({"operation": operation(u)?})))?),
        );
    }
    if u.ratio(1, 2)? {
        r.insert("when".into(), json!(list(u, 3, condition)?));
    }
    Ok(Value::Object(r))
}

fn source(u: &mut Unstructured<'_>) -> Result<Value> {
    const FIELDS: &[&str] = &[
        "principals",
        "notPrincipals",
        "requestPrincipals",
        "notRequestPrincipals",
        "namespaces",
        "notNamespaces",
        "serviceAccounts",
        "notServiceAccounts",
        "ipBlocks",
        "notIpBlocks",
        "remoteIpBlocks",
        "notRemoteIpBlocks",
        "trustDomains",
        "notTrustDomains",
        "notAField",
    ];
    let mut s = Map::new();
    for _ in 0..u.int_in_range(0..=3)? {
        let f = pick_strict(u, FIELDS)?;
        let vocab = if f.contains("Ip") { CIDRS } else { IDENTITIES };
        s.insert(f.into(), values(u, vocab)?);
    }
    Ok(Value::Object(s))
}

fn operation(u: &mut Unstructured<'_>) -> Result<Value> {
    const FIELDS: &[&str] = &[
        "hosts",
        "notHosts",
        "ports",
        "notPorts",
        "methods",
        "notMethods",
        "paths",
        "notPaths",
    ];
    let mut o = Map::new();
    for _ in 0..u.int_in_range(0..=3)? {
        let f = pick_strict(u, FIELDS)?;
        let v = match f {
            "paths" | "notPaths" => json!(list(u, 3, |u| pieces(u, PATH_PIECES))?),
            "ports" | "notPorts" => values(u, PORTS)?,
            "hosts" | "notHosts" => values(
                u,
                &["*", "example.com", "*.example.com", "EXAMPLE.com:80", "b*"],
            )?,
            _ => values(u, HEADER_VALUES)?,
        };
        o.insert(f.into(), v);
    }
    Ok(Value::Object(o))
}

fn condition(u: &mut Unstructured<'_>) -> Result<Value> {
    let key = pick(u, WHEN_KEYS)?;
    let vocab: &[&str] = if key.ends_with(".ip") {
        CIDRS
    } else if key == "destination.port" {
        PORTS
    } else if key.starts_with("experimental") {
        &["[a]", "[", "]", "[]", "[a,b]", "x", "*", "x*"]
    } else {
        IDENTITIES
    };
    let mut c = json!({ "key": key });
    if u.ratio(3, 4)? {
        c["values"] = values(u, vocab)?;
    }
    if u.ratio(1, 3)? {
        c["notValues"] = values(u, vocab)?;
    }
    Ok(c)
}

/// An inline JWKS: a usable HS256 key, an unusable one, or garbage.
fn jwks(u: &mut Unstructured<'_>) -> Result<String> {
    Ok(match u.int_in_range(0..=5)? {
        0 | 1 => r#"{"keys":[{"kty":"oct","alg":"HS256","kid":"hs-1","k":"c2VjcmV0LWtleS1mb3ItZnV6emluZy0zMi1ieXRlcyEh"}]}"#.into(),
        2 => r#"{"keys":[{"kty":"oct","k":""}]}"#.into(),
        3 => r#"{"keys":[{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}]}"#.into(),
        4 => r#"{"keys":"x"}"#.into(),
        _ => short_string(u)?,
    })
}

fn request_authentication(u: &mut Unstructured<'_>) -> Result<Value> {
    let mut spec = Map::new();
    if let Some(s) = selector(u, "matchLabels")? {
        spec.insert("selector".into(), s);
    }
    let rules = list(u, 3, |u| {
        let mut r = Map::new();
        if u.ratio(3, 4)? {
            r.insert(
                "issuer".into(),
                json!(pick(u, &["https://issuer.example.com", "iss", ""])?),
            );
        }
        match u.int_in_range(0..=3)? {
            0 | 1 => {
                r.insert("jwks".into(), json!(jwks(u)?));
            }
            2 => {
                r.insert(
                    "jwksUri".into(),
                    json!(pick(
                        u,
                        &[
                            "https://issuer.example.com/jwks",
                            "http://issuer.example.com:8080/.well-known/jwks.json",
                            "https://[::1]:8443/k",
                            "https://h:99999/k",
                            "https://",
                            "ftp://x/y",
                            "https://user@h/k?q#f",
                            "",
                        ]
                    )?),
                );
            }
            _ => {
                r.insert("jwks".into(), json!(jwks(u)?));
                r.insert("jwksUri".into(), json!("https://issuer.example.com/jwks"));
            }
        }
        if u.ratio(1, 3)? {
            r.insert("audiences".into(), values(u, &["a", "https://a/", ""])?);
        }
        if u.ratio(1, 3)? {
            r.insert(
                "fromHeaders".into(),
                json!(list(u, 2, |u| Ok(json!({
                    "name": pick(u, &["authorization", "X-Jwt", "", ":path"])?,
                    "prefix": pick(u, &["Bearer ", "", "x"])?,
                })))?),
            );
        }
        if u.ratio(1, 4)? {
            r.insert("fromParams".into(), values(u, &["access_token", "", "t"])?);
        }
        if u.ratio(1, 4)? {
            r.insert("fromCookies".into(), values(u, &["session", "", "a=b"])?);
        }
        if u.ratio(1, 4)? {
            r.insert(
                "outputPayloadToHeader".into(),
                json!(pick(u, &["x-jwt-payload", "", "X-Upper", "bad header"])?),
            );
        }
        if u.ratio(1, 4)? {
            r.insert(
                "outputClaimToHeaders".into(),
                json!(list(u, 2, |u| Ok(json!({
                    "header": pick(u, &["x-sub", "", "x y"])?,
                    "claim": pick(u, &["sub", "a.b", "", ".", "a..b"])?,
                })))?),
            );
        }
        if u.ratio(1, 4)? {
            r.insert("forwardOriginalToken".into(), json!(u.arbitrary::<bool>()?));
        }
        if u.ratio(1, 4)? {
            r.insert(
                "timeout".into(),
                json!(pick(
                    u,
                    &[
                        "5s",
                        "1.5s",
                        "0s",
                        "-1s",
                        "1h",
                        "100ms",
                        "s",
                        "99999999999999999999s"
                    ]
                )?),
            );
        }
        if u.ratio(1, 4)? {
            r.insert(
                "spaceDelimitedClaims".into(),
                values(u, &["scope", "roles", ""])?,
            );
        }
        Ok(Value::Object(r))
    })?;
    spec.insert("jwtRules".into(), Value::Array(rules));
    Ok(Value::Object(spec))
}

fn peer_authentication(u: &mut Unstructured<'_>) -> Result<Value> {
    const MODES: &[&str] = &["UNSET", "DISABLE", "PERMISSIVE", "STRICT", "strict"];
    let mut spec = Map::new();
    if let Some(s) = selector(u, "matchLabels")? {
        spec.insert("selector".into(), s);
    }
    if u.ratio(3, 4)? {
        spec.insert("mtls".into(), json!({"mode": pick(u, MODES)?}));
    }
    if u.ratio(1, 2)? {
        let mut ports = Map::new();
        for _ in 0..u.int_in_range(0..=2)? {
            ports.insert(pick(u, PORTS)?, json!({"mode": pick(u, MODES)?}));
        }
        spec.insert("portLevelMtls".into(), Value::Object(ports));
    }
    Ok(Value::Object(spec))
}

fn sidecar(u: &mut Unstructured<'_>) -> Result<Value> {
    let mut spec = Map::new();
    if u.ratio(1, 3)? {
        spec.insert("workloadSelector".into(), json!({"labels": {"app": "b"}}));
    }
    let hosts = list(u, 3, |u| {
        pick(
            u,
            &[
                "./*",
                "*/*",
                "istio-system/*",
                "foo/ratings",
                "~/*",
                "*/*.example.com",
                "./ratings.foo.svc.cluster.local",
                "bad",
                "/",
                "a/b/c",
            ],
        )
    })?;
    spec.insert("egress".into(), json!([{ "hosts": hosts }]));
    if u.ratio(1, 2)? {
        spec.insert(
            "outboundTrafficPolicy".into(),
            json!({"mode": pick(u, &["REGISTRY_ONLY", "ALLOW_ANY"])?}),
        );
    }
    Ok(Value::Object(spec))
}
