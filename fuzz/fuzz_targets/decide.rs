//! `decide`: fixed compiled policies, fuzzed requests.
//!
//! The policies (loaded once) use every Source and Operation field and every `when` key, in
//! ALLOW, DENY, AUDIT and dry-run policies, with a PeerAuthentication that has STRICT and DISABLE
//! ports and a trust-domain alias. Each fuzzed request (headers with arbitrary names and values,
//! repeated; `:path` built from dots, percent escapes, query and fragment; peer identities; IPs;
//! ports; SNI; metadata; JWT claims) is decided and checked against two invariants:
//!
//! * determinism: the same request decides the same way twice;
//! * index soundness: the policy sets here are below the index threshold (16 rules), so they are
//!   scanned linearly; a second engine holds the same policies followed by 16 never-matching
//!   rules per set (a path or principal that must both match and not match), which switches on
//!   the rule index. Both must reach the same decision and report the same rule.
#![no_main]

#[path = "common.rs"]
mod common;

use std::net::IpAddr;
use std::rc::Rc;
use std::sync::OnceLock;

use arbitrary::{Result, Unstructured};
use common::*;
use libfuzzer_sys::fuzz_target;
use meshguard_core::authn::jwt_json::parse_object;
use meshguard_core::request::verified_claims::Claims;
use meshguard_core::plugin::plugin_config::{load, NodeInfo};
use meshguard_core::plugin::engine::Engine;
use meshguard_core::request::peer::Peer;
use meshguard_core::request::request_view::{Headers, MetadataValue, StaticConnection};
use serde_json::{json, Map, Value};

fn ap(name: &str, action: &str, dry_run: bool, rules: Value) -> Value {
    let mut metadata = json!({"name": name, "namespace": "foo"});
    if dry_run {
        metadata["annotations"] = json!({"istio.io/dry-run": "true"});
    }
    json!({"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
           "metadata": metadata,
           "spec": {"selector": {"matchLabels": {"app": "b"}}, "action": action, "rules": rules}})
}

/// The policies under test: every action set below the index threshold.
fn policies() -> Vec<Value> {
    let allow = json!([
        {"from": [{"source": {"principals": ["cluster.local/ns/foo/sa/bar"]}}],
         "to": [{"operation": {"paths": ["/api/{*}/items"], "methods": ["GET"]}}]},
        {"from": [{"source": {"namespaces": ["foo*", "bar"]}}],
         "to": [{"operation": {"paths": ["/public*"], "notPaths": ["/public/secret"]}}]},
        {"from": [{"source": {"serviceAccounts": ["bar", "other/sa"]}}],
         "to": [{"operation": {"hosts": ["*.example.com", "example.com"], "ports": ["8080"]}}]},
        {"from": [{"source": {"ipBlocks": ["10.0.0.0/8"], "notIpBlocks": ["10.9.0.0/16"]}}],
         "to": [{"operation": {"paths": ["*.html"]}}]},
        {"from": [{"source": {"remoteIpBlocks": ["2001:db8::/32"], "notRemoteIpBlocks": ["2001:db8::bad"]}}],
         "to": [{"operation": {"notMethods": ["DELETE"], "paths": ["/remote/{**}"]}}]},
        {"from": [{"source": {"trustDomains": ["cluster.local"], "notTrustDomains": ["evil*"]}}],
         "when": [{"key": "request.headers[x-role]", "values": ["admin", "ops*"]}]},
        {"from": [{"source": {"requestPrincipals": ["https://issuer.example.com/*"]}}],
         "when": [{"key": "request.auth.claims[groups]", "values": ["admins"]}]},
        {"to": [{"operation": {"paths": ["/claims"]}}],
         "when": [{"key": "request.auth.audiences", "values": ["aud1"]},
                  {"key": "request.auth.presenter", "values": ["*"]}]},
        {"when": [{"key": "source.ip", "values": ["192.168.0.0/16"]},
                  {"key": "remote.ip", "values": ["203.0.113.7"]},
                  {"key": "destination.ip", "values": ["10.0.0.9"]},
                  {"key": "destination.port", "values": ["8080"]}]},
        {"when": [{"key": "connection.sni", "values": ["*.svc.cluster.local"]},
                  {"key": "source.namespace", "values": ["foo"]},
                  {"key": "source.principal", "values": ["cluster.local/ns/foo/sa/bar"]}]},
        {"to": [{"operation": {"paths": ["/sa"]}}],
         "when": [{"key": "source.serviceAccount", "values": ["foo/bar"]},
                  {"key": "source.trustDomain", "values": ["cluster.local"]}]},
        {"to": [{"operation": {"paths": ["/meta"]}}],
         "when": [{"key": "experimental.envoy.filters.network.mysql_proxy[db.table]",
                   "values": ["[update]"]},
                  {"key": "experimental.envoy.filters.http.x[k]", "notValues": ["deny*"]}]},
        {"when": [{"key": "request.auth.principal", "values": ["*"]},
                  {"key": "request.auth.claims[a][b]", "values": ["x*"]}]},
        {"from": [{"source": {"notPrincipals": ["*"]}}],
         "to": [{"operation": {"paths": ["/anon/{**}/end"], "notHosts": ["*.internal"]}}]},
        {"from": [{"source": {"principals": ["*/sa/admin"], "notNamespaces": ["bad"]}}],
         "to": [{"operation": {"notPorts": ["9999"]}}],
         "when": [{"key": "request.headers[:path]", "values": ["/raw?*", "*#frag"]}]}
    ]);
    let deny = json!([
        {"from": [{"source": {"notNamespaces": ["foo"]}}],
         "to": [{"operation": {"paths": ["/admin*"]}}]},
        {"to": [{"operation": {"paths": ["/api/{*}/secret"], "methods": ["*"]}}]},
        {"when": [{"key": "request.headers[x-block]", "values": ["*"]}]},
        {"from": [{"source": {"ipBlocks": ["10.66.0.0/16"]}}]},
        {"from": [{"source": {"notRequestPrincipals": ["*"]}}],
         "to": [{"operation": {"paths": ["/private*"]}}]},
        {"to": [{"operation": {"hosts": ["EVIL.com"]}}]},
        {"when": [{"key": "request.headers[x-role]", "notValues": ["*"]}],
         "to": [{"operation": {"paths": ["/needs-role"]}}]}
    ]);
    vec![
        json!({"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
               "metadata": {"name": "pa", "namespace": "foo"},
               "spec": {"selector": {"matchLabels": {"app": "b"}}, "mtls": {"mode": "PERMISSIVE"},
                        "portLevelMtls": {"9090": {"mode": "STRICT"}, "8081": {"mode": "DISABLE"}}}}),
        ap("allow-a", "ALLOW", false, allow),
        case_insensitive(ap("deny-a", "DENY", false, deny)),
        ap(
            "audit-a",
            "AUDIT",
            false,
            json!([{"to": [{"operation": {"paths": ["/audit*"]}}]}]),
        ),
        ap(
            "dry-deny",
            "DENY",
            true,
            json!([{"to": [{"operation": {"methods": ["POST"], "paths": ["/dry*"]}}]}]),
        ),
        ap(
            "dry-allow",
            "ALLOW",
            true,
            json!([{"from": [{"source": {"principals": ["*"]}}]}]),
        ),
    ]
}

/// The policy with `meshguard.io/case-insensitive-paths: "true"` (its folded paths are not
/// path-anchored in the index, which must still decide as the scan does).
fn case_insensitive(mut policy: Value) -> Value {
    policy["metadata"]["annotations"] = json!({"meshguard.io/case-insensitive-paths": "true"});
    policy
}

/// 16 rules that can never match (so the padded set is indexed and decides as the original).
fn padding() -> Value {
    let rules: Vec<Value> = (0..16)
        .map(|i| match i % 3 {
            0 => json!({"from": [{"source": {"principals": [format!("pad/ns/pad/sa/{i}")],
                                              "notPrincipals": [format!("pad/ns/pad/sa/{i}")]}}]}),
            1 => json!({"to": [{"operation": {"paths": [format!("/pad/{i}")],
                                              "notPaths": [format!("/pad/{i}")]}}]}),
            _ => json!({"to": [{"operation": {"paths": [format!("/padp/{i}*")],
                                              "notPaths": [format!("/padp/{i}*")]}}]}),
        })
        .collect();
    Value::Array(rules)
}

fn config(padded: bool) -> Vec<u8> {
    let mut resources = policies();
    if padded {
        for (name, action, dry) in [
            ("zz-pad-allow", "ALLOW", false),
            ("zz-pad-deny", "DENY", false),
            ("zz-pad-audit", "AUDIT", false),
            ("zz-pad-dry-deny", "DENY", true),
            ("zz-pad-dry-allow", "ALLOW", true),
        ] {
            resources.push(ap(name, action, dry, padding()));
        }
    }
    json!({"workload": {"namespace": "foo", "labels": {"app": "b"}},
           "trustDomainAliases": ["alias.td"],
           "resources": resources})
    .to_string()
    .into_bytes()
}

fn engines() -> &'static (Engine, Engine) {
    static ENGINES: OnceLock<(Engine, Engine)> = OnceLock::new();
    ENGINES.get_or_init(|| {
        let linear = load(&config(false), &NodeInfo::default())
            .expect("the fixed policies load")
            .0;
        let indexed = load(&config(true), &NodeInfo::default())
            .expect("the padded policies load")
            .0;
        // 15 ALLOW + 7 DENY + 1 AUDIT + 1 dry-run DENY + 1 dry-run ALLOW: every set below
        // MIN_RULES_TO_INDEX (16), so `linear` really scans; keep it so when adding rules.
        assert_eq!(linear.rule_count(), 15 + 7 + 1 + 1 + 1);
        assert_eq!(linear.rule_count() + 5 * 16, indexed.rule_count());
        (linear, indexed)
    })
}

fuzz_target!(|data: &[u8]| {
    let (linear, indexed) = engines();
    let mut u = Unstructured::new(data);
    let Ok((headers, connection, claims)) = request(&mut u) else {
        return;
    };
    debug("headers", &headers);
    debug("connection", &connection);
    debug("claims", &claims);
    // The claims as a token carries them: the JSON text read as the filter reads a payload.
    let claims = claims.map(|c| {
        let payload = parse_object(Value::Object(c).to_string().as_bytes()).unwrap_or_default();
        Claims::new(Rc::new(payload), &["scope".to_string()])
    });
    let h = Headers::new(&headers);
    let first = linear.decide_with_claims(h, &connection, claims.as_ref());
    let again = linear.decide_with_claims(h, &connection, claims.as_ref());
    assert_eq!(first, again, "the same request decided differently twice");
    let via_index = indexed.decide_with_claims(h, &connection, claims.as_ref());
    assert_eq!(
        first, via_index,
        "the rule index changed the decision\nheaders: {headers:?}\nconnection: {connection:?}"
    );
    debug("decision", &(first.summary(), first.audit, first.dry_run));
    let _ = linear.decide(h, &connection);
    let _ = linear.mtls_violation(&connection);
    let _ = linear.egress_violation(h, &connection);
});

const HEADER_NAMES: &[&str] = &[
    ":method",
    ":path",
    ":authority",
    "x-role",
    "X-Role",
    "x-block",
    "content-type",
    "cookie",
    "authorization",
    "host",
    "",
    ":path\0",
];

const PATHS: &[&str] = &[
    "/",
    "/api",
    "/api/",
    "v1",
    "/items",
    "/secret",
    "/public",
    "/admin",
    "/Admin",
    "/pad/1",
    "/padp/2",
    "/pad/0",
    ".html",
    "?",
    "#",
    "%2F",
    "%2e",
    "..",
    ".",
    "/remote/",
    "/end",
    "/anon",
    "/claims",
    "/sa",
    "/meta",
    "/audit",
    "/dry",
    "/private",
    "/needs-role",
    "/raw",
    "frag",
    "//",
    "x",
    "=",
    "&",
    "\n",
];

const METHODS: &[&str] = &["GET", "POST", "DELETE", "OPTIONS", "get", "", "*"];

const HOSTS: &[&str] = &[
    "example.com",
    "a.example.com",
    "EVIL.com",
    "evil.com:80",
    "b.internal",
    "",
    "*",
];

const URI_SANS: &[&str] = &[
    "spiffe://cluster.local/ns/foo/sa/bar",
    "spiffe://alias.td/ns/foo/sa/bar",
    "spiffe://cluster.local/ns/foo/sa/bar/x",
    "spiffe://cluster.local/ns/other/sa/sa",
    "spiffe://cluster.local/ns/bad/sa/admin",
    "spiffe://evil.td/ns/foo/sa/bar",
    "spiffe://pad/ns/pad/sa/0",
    "spiffe://pad/ns/pad/sa/3",
    "spiffe://cluster.local/ns/foo",
    "spiffe://",
    "spiffe:///ns//sa/",
    "cluster.local/ns/foo/sa/bar",
    "spiffe://cluster.local/ns/foo/sa/bar\n",
];

const IPS: &[&str] = &[
    "10.1.2.3",
    "10.9.1.1",
    "10.66.0.1",
    "192.168.4.4",
    "203.0.113.7",
    "10.0.0.9",
    "2001:db8::1",
    "2001:db8::bad",
    "::ffff:10.1.2.3",
    "127.0.0.1",
    "::",
];

fn ip(u: &mut Unstructured<'_>) -> Result<Option<IpAddr>> {
    Ok(match u.int_in_range(0..=3)? {
        0 => None,
        1 => Some(u.arbitrary()?),
        _ => pick_strict(u, IPS)?.parse().ok(),
    })
}

fn bytes_from(u: &mut Unstructured<'_>, vocab: &[&str]) -> Result<Vec<u8>> {
    if u.ratio(1, 8)? {
        short_bytes(u, 48)
    } else {
        Ok(pieces(u, vocab)?.into_bytes())
    }
}

type Request = (
    Vec<(String, Vec<u8>)>,
    StaticConnection,
    Option<Map<String, Value>>,
);

fn request(u: &mut Unstructured<'_>) -> Result<Request> {
    let mut headers: Vec<(String, Vec<u8>)> = Vec::new();
    if u.ratio(7, 8)? {
        headers.push((":method".into(), pick(u, METHODS)?.into_bytes()));
    }
    if u.ratio(7, 8)? {
        let path = if u.ratio(1, 8)? {
            short_bytes(u, 64)?
        } else {
            pieces(u, PATHS)?.into_bytes()
        };
        headers.push((":path".into(), path));
    }
    if u.ratio(3, 4)? {
        headers.push((":authority".into(), pick(u, HOSTS)?.into_bytes()));
    }
    for _ in 0..u.int_in_range(0..=6)? {
        let name = pick(u, HEADER_NAMES)?;
        let value = bytes_from(u, &["admin", "ops", "opsx", "", ",", "admin,ops", "*", " "])?;
        headers.push((name, value));
    }
    // Any position for the pseudo-headers (Envoy puts them first, a hostile host may not).
    if u.ratio(1, 4)? && headers.len() > 1 {
        let i = u.choose_index(headers.len())?;
        let j = u.choose_index(headers.len())?;
        headers.swap(i, j);
    }
    let peer = if u.ratio(2, 3)? {
        Some(Peer::new(
            if u.ratio(3, 4)? {
                Some(bytes_from(u, URI_SANS)?)
            } else {
                None
            },
            // Certificates as a CA issues them: a DNS SAN is a host name (no `:`), a subject
            // an RFC 2253 `type=value` string; the rule index relies on neither looking like
            // a `spiffe://` principal.
            if u.ratio(1, 4)? {
                let mut dns = short_bytes(u, 32)?;
                dns.retain(|b| *b != b':');
                Some(dns)
            } else {
                None
            },
            if u.ratio(1, 4)? {
                Some([b"CN=".as_slice(), &bytes_from(u, URI_SANS)?].concat())
            } else {
                None
            },
        ))
    } else {
        None
    };
    let connection = StaticConnection {
        peer,
        source_ip: ip(u)?,
        source_ip_unknown: u.ratio(1, 6)?,
        remote_ip: ip(u)?,
        destination_ip: ip(u)?,
        destination_port: match u.int_in_range(0..=5)? {
            0 => None,
            1 => Some(u.arbitrary()?),
            _ => Some(*u.choose(&[8080u16, 9090, 8081, 9999, 80])?),
        },
        sni: if u.ratio(1, 2)? {
            Some(bytes_from(
                u,
                &["outbound_.8080_._.b.foo", ".svc.cluster.local", ""],
            )?)
        } else {
            None
        },
        metadata: list(u, 2, |u| {
            let (filter, key) = *u.choose(&[
                ("envoy.filters.network.mysql_proxy", "db.table"),
                ("envoy.filters.http.x", "k"),
            ])?;
            let value = match u.int_in_range(0..=2)? {
                0 => MetadataValue::String(bytes_from(u, &["update", "deny", "x"])?),
                1 => MetadataValue::List(list(u, 3, |u| bytes_from(u, &["update", "deny"]))?),
                _ => MetadataValue::Raw(short_bytes(u, 48)?),
            };
            Ok((filter.to_string(), key.to_string(), value))
        })?,
    };
    let claims = if u.ratio(1, 2)? {
        let mut m = Map::new();
        for _ in 0..u.int_in_range(0..=5)? {
            let name = pick(u, &["iss", "sub", "aud", "azp", "groups", "scope", "a"])?;
            let value = claim_value(u, 2)?;
            m.insert(name, value);
        }
        Some(m)
    } else {
        None
    };
    Ok((headers, connection, claims))
}

fn claim_value(u: &mut Unstructured<'_>, depth: u8) -> Result<Value> {
    let strings = &[
        "https://issuer.example.com",
        "alice",
        "aud1",
        "admins",
        "x1",
        "read write",
        "",
        "*",
    ];
    Ok(match u.int_in_range(0..=5)? {
        0 | 1 => json!(pick(u, strings)?),
        2 if depth > 0 => Value::Array(list(u, 3, |u| claim_value(u, depth - 1))?),
        3 if depth > 0 => {
            let mut m = Map::new();
            m.insert(pick(u, &["b", "c"])?, claim_value(u, depth - 1)?);
            Value::Object(m)
        }
        4 => json!(u.arbitrary::<i64>()?),
        _ => json!(u.arbitrary::<bool>()?),
    })
}
