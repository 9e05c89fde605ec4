//! `meshguard check`: one request through the filter's own request pipeline
//! (`meshguard_core::plugin::request_pipeline::decide_request`), after Envoy's path normalization,
//! on the side the configuration's `direction` (or `--direction`) says. Prints the reply Envoy
//! would send and what decided it.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use meshguard_core::authn::authenticator::{AuthnState, Outcome};
use meshguard_core::authn::jwt::{JwksSource, KeySet};
use meshguard_core::authn::request_authentication::Keys;
use meshguard_core::authorization::deny_response::grpc_status;
use meshguard_core::matchers::predicate::Tri;
use meshguard_core::plugin::engine::{DryRun, Engine, Explanation, RuleExplanation, Verdict};
use meshguard_core::plugin::plugin_config::JwtSource;
use meshguard_core::plugin::rbac_report::RbacReport;
use meshguard_core::plugin::request_pipeline::{decide_request, PipelineRequest, Side, Stage};
use meshguard_core::request::json_value::{JsonObject, JsonValue};
use meshguard_core::request::path_normalization::{PathNormalization, PathRejected};
use meshguard_core::request::peer::Peer;
use meshguard_core::request::request_view::{Headers, StaticConnection};

use crate::documents::{describe_workload, load_value, remote_jwks, units};
use crate::{CheckArgs, DirectionArg, Fail, NormalizationArg};

pub fn check(args: &CheckArgs) -> Result<u8, Fail> {
    let file = &args.config;
    let node = args.node.node();
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
    let method = args.method.to_ascii_uppercase();
    let raw_path = args.path.clone();
    let (normalization, normalization_name) = match args.normalization {
        NormalizationArg::None => ("NONE", "NONE"),
        NormalizationArg::Base => ("BASE", "Istio's default BASE"),
        NormalizationArg::MergeSlashes => ("MERGE_SLASHES", "MERGE_SLASHES"),
        NormalizationArg::DecodeAndMergeSlashes => {
            ("DECODE_AND_MERGE_SLASHES", "DECODE_AND_MERGE_SLASHES")
        }
    };
    let normalization =
        PathNormalization::istio(normalization).unwrap_or(PathNormalization::ISTIO_DEFAULT);
    let side = match args.direction {
        None => engine.settings().direction.side(|| None),
        Some(DirectionArg::Inbound) => Side::Inbound,
        Some(DirectionArg::Outbound) => Side::Outbound,
    };
    // The HCM normalizes the path before any filter; a path it refuses never reaches one.
    let path = match normalization.apply(&raw_path) {
        Ok(p) => p,
        Err(PathRejected) => return Ok(path_rejected(&raw_path, args.json)),
    };
    let host = args.host.clone();
    let principal = args.principal.as_deref().map(|p| {
        if p.contains("://") {
            p.to_string()
        } else {
            format!("spiffe://{p}")
        }
    });
    let sni = args.sni.clone();
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
    for h in &args.headers {
        let (k, v) = split_header(h).ok_or_else(|| {
            Fail(format!(
                "meshguard check: --header expects name=value or name:value, got `{h}`"
            ))
        })?;
        headers.push((k.to_ascii_lowercase(), v.as_bytes().to_vec()));
    }
    if let Some(token) = &args.jwt {
        let token = token.trim();
        let token = match token.get(..7) {
            Some(prefix) if prefix.eq_ignore_ascii_case("bearer ") => token.get(7..).unwrap_or(""),
            _ => token,
        };
        headers.push((
            "authorization".into(),
            format!("Bearer {}", token.trim_start()).into_bytes(),
        ));
    }
    let source_ip = args.source_ip;
    let connection = StaticConnection {
        peer: principal
            .as_ref()
            .map(|p| Peer::new(Some(p.clone().into_bytes()), None, None)),
        source_ip,
        // Without X-Forwarded-For handling Envoy's remote address is the peer's.
        remote_ip: args.remote_ip.or(source_ip),
        destination_port: args.port,
        sni: sni.map(String::into_bytes),
        ..StaticConnection::default()
    };
    let now = args.now.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    });

    // The notes on what the CLI cannot see.
    let mut notes = Vec::new();
    if let Some(note) = args.node.defaulted_namespace() {
        notes.push(note.to_string());
    }
    let cache = RefCell::new(AuthnState::new(0));
    let supplied = supply_jwks(&engine, &args.jwks, &mut cache.borrow_mut())?;
    let remote: Vec<String> = remote_jwks(&engine)
        .into_iter()
        .filter(|uri| !supplied.contains(uri))
        .collect();
    if !supplied.is_empty() {
        notes.push(format!(
            "remote JWKS supplied locally (--jwks): {}",
            supplied.join(", ")
        ));
    }
    if !remote.is_empty() {
        notes.push(format!(
            "remote JWKS are not fetched by the CLI ({}): tokens of those issuers get 401 `Jwks \
            remote fetch is failed`; pass the keys with --jwks URI=FILE",
            remote.join(", ")
        ));
    }
    let claims = match &args.claims {
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(payload)) => Some(claims_object(&payload)),
            _ => {
                return Err(Fail(
                    "meshguard check: --claims must be a JSON object".into(),
                ))
            }
        },
        None => None,
    };
    if engine.settings().jwt_source == JwtSource::EnvoyJwtAuthn {
        if claims.is_none() && args.jwt.is_some() {
            notes.push(
                "jwtSource is envoyJwtAuthn: Envoy's jwt_authn verifies tokens, not \
                meshguard; pass the verified payload with --claims"
                    .to_string(),
            );
        }
    } else {
        if claims.is_some() {
            notes.push(
                "--claims is ignored: jwtSource is filter, meshguard verifies --jwt itself"
                    .to_string(),
            );
        }
        if engine.authenticator().is_empty() && args.jwt.is_some() {
            notes.push(
                "no RequestAuthentication applies to the workload: the token is not \
                checked and carries no identity"
                    .to_string(),
            );
        }
    }
    if path != raw_path {
        notes.push(format!(
            "path normalized as Envoy's HCM does ({}): {raw_path} -> {path}",
            normalization_name
        ));
    }
    if side == Side::Outbound {
        notes.push(
            "outbound side: only the Sidecar egress list applies (Istio enforces authentication \
            and authorization inbound)"
                .to_string(),
        );
    }

    // The same pipeline the filter runs.
    let jwt_authn_payload = || claims.clone();
    let request = PipelineRequest {
        headers: Headers::new(&headers),
        connection: &connection,
        side,
        clock: &|| now,
        jwt_authn_payload: &jwt_authn_payload,
    };
    let outcome = decide_request(&engine, &request, &cache);
    let allowed = outcome.verdict == Verdict::Allow;
    // Envoy answers a gRPC request's local reply trailers-only: HTTP 200, `grpc-status` mapped
    // from the status, `grpc-message` the body.
    let grpc = Headers::new(&headers).is_grpc();
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
        _ => outcome
            .decision_state
            .as_deref()
            .unwrap_or_default()
            .to_string(),
    };
    let explanation = match &outcome.stage {
        Stage::Authorized { authn, decision } => {
            let claims = match authn {
                Outcome::Verified(c) => Some(&**c),
                _ => None,
            };
            Some(engine.explain(decision, Headers::new(&headers), &connection, claims))
        }
        _ => None,
    };
    let policy = match &outcome.stage {
        Stage::Authorized { decision, .. } => decision.policy,
        Stage::EgressDenied { sidecar, .. } => Some(*sidecar),
        Stage::MtlsRequired { source } => Some(*source),
        _ => None,
    };

    if args.json {
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
            "explanation".into(),
            explanation.as_ref().map_or(Value::Null, explanation_json),
        );
        out.insert(
            "dryRun".into(),
            decision.map_or(Value::Null, |d| dry_run_json(d.dry_run)),
        );
        out.insert("audit".into(), json!(decision.and_then(|d| d.audit)));
        out.insert(
            "filterState".into(),
            filter_state_json(&outcome.rbac_report),
        );
        out.insert(
            "reply".into(),
            match &outcome.reply {
                Some(r) => json!({
                    "status": r.status,
                    "details": r.details,
                    "headers": r.headers,
                    "body": r.body,
                    "grpcStatus": grpc.then(|| grpc_status(r.status)),
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
        if let Some(r) = &outcome.reply {
            if grpc {
                println!(
                    "reply:    gRPC grpc-status {} grpc-message {:?} (HTTP {} mapped by Envoy)",
                    grpc_status(r.status),
                    r.body,
                    r.status
                );
            }
            for (name, value) in &r.headers {
                println!("header:   {name}: {value}");
            }
        }
        println!("policy:   {}", policy.unwrap_or("none"));
        println!("reason:   {}", reason(&engine, &outcome.stage));
        if let Some(e) = &explanation {
            for line in explanation_text(e) {
                println!("why:      {line}");
            }
        }
        if let Some(d) = decision {
            println!("dry-run:  {}", dry_run_text(d.dry_run));
            println!("audit:    {}", d.audit.unwrap_or("none"));
        }
        for (name, value) in outcome.rbac_report.properties() {
            println!("state:    wasm.{name} = {value}");
        }
        println!("summary:  {summary}");
        for note in &notes {
            println!("note:     {note}");
        }
    }
    Ok(if allowed { 0 } else { 2 })
}

/// A path Envoy's HCM refuses before any filter runs: 400 with an empty body (a `%00`, a
/// fragment, or an escaped slash under `REJECT_REQUEST`).
fn path_rejected(raw_path: &str, as_json: bool) -> u8 {
    if as_json {
        let out = json!({
            "request": {"rawPath": raw_path},
            "decision": "deny",
            "status": 400,
            "body": "",
            "stage": "pathRejected",
            "reason": "Envoy's HCM refuses the path before any filter \
                (NUL, fragment or escaped slash)",
        });
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    } else {
        println!("decision: DENY (400): Envoy's HCM refuses the path {raw_path} before any filter");
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

/// `--claims` as the core holds a payload: members in key order, numbers as `serde_json` read
/// them (an integer literal stays an integer).
fn claims_object(map: &Map<String, Value>) -> JsonObject {
    JsonObject::with_last_of_repeated_keys(
        map.iter()
            .map(|(k, v)| (k.clone(), claims_value(v)))
            .collect(),
    )
}

fn claims_value(value: &Value) -> JsonValue {
    match value {
        Value::Null => JsonValue::Null,
        Value::Bool(b) => JsonValue::Bool(*b),
        Value::Number(n) => match n.as_f64().filter(|_| n.is_f64()) {
            Some(d) => JsonValue::Number(d),
            None => JsonValue::Integer(n.to_string()),
        },
        Value::String(s) => JsonValue::String(s.clone()),
        Value::Array(items) => JsonValue::Array(items.iter().map(claims_value).collect()),
        Value::Object(map) => JsonValue::Object(claims_object(map)),
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
            return format!("outbound: {host} is not in the Sidecar's egress hosts (REGISTRY_ONLY)")
        }
        Stage::MtlsRequired { .. } => {
            return "a STRICT PeerAuthentication requires mTLS and the request is plaintext".into()
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
        DryRun::WouldDenyNoAllowMatched => "would deny: no dry-run ALLOW rule matched".to_string(),
        DryRun::WouldAllow(Some(id)) => format!("would allow: {id}"),
        DryRun::WouldAllow(None) => "would allow".to_string(),
    }
}

/// The dry-run and AUDIT filter state the filter would set, keyed as Envoy stores it
/// (`wasm.<property>`).
fn filter_state_json(report: &RbacReport<'_>) -> Value {
    Value::Object(
        report
            .properties()
            .map(|(name, value)| (format!("wasm.{name}"), json!(value)))
            .collect(),
    )
}

fn dry_run_json(d: DryRun<'_>) -> Value {
    match d {
        DryRun::None => json!({"result": "none"}),
        DryRun::WouldDeny(id) => json!({"result": "wouldDeny", "policy": id}),
        DryRun::WouldDenyNoAllowMatched => json!({"result": "wouldDeny", "policy": null}),
        DryRun::WouldAllow(id) => json!({"result": "wouldAllow", "policy": id}),
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

/// `--jwks [URI=]FILE`: the keys a remote provider would fetch, read from a file; returns the
/// URIs supplied.
fn supply_jwks(
    engine: &Engine,
    specs: &[String],
    state: &mut AuthnState,
) -> Result<Vec<String>, Fail> {
    let mut supplied = Vec::new();
    for spec in specs {
        let (uri, file) = match spec.rsplit_once('=') {
            Some((uri, file)) if uri.contains("://") => (Some(uri), file),
            _ => (None, spec.as_str()),
        };
        let text = std::fs::read_to_string(file)
            .map_err(|e| Fail(format!("meshguard check: --jwks {file}: cannot read: {e}")))?;
        let keys = KeySet::parse(&text, JwksSource::Remote)
            .map_err(|e| Fail(format!("meshguard check: --jwks {file}: {e}")))?;
        let mut used = false;
        for (i, provider) in engine.authenticator().providers().iter().enumerate() {
            if let Keys::Remote(r) = &provider.keys {
                if uri.is_none_or(|u| u == r.uri) {
                    state.set_remote_keys(i, keys.clone());
                    supplied.push(r.uri.clone());
                    used = true;
                }
            }
        }
        if !used {
            return Err(Fail(format!(
                "meshguard check: --jwks {spec}: no applicable RequestAuthentication has that \
                remote jwksUri"
            )));
        }
    }
    supplied.sort();
    supplied.dedup();
    Ok(supplied)
}

fn tri_name(t: Tri) -> &'static str {
    match t {
        Tri::True => "matched",
        Tri::False => "failed",
        Tri::Unknown => "unknown",
    }
}

/// `from matched, to failed`, then one indented line per reason (`to failed: to.operation.paths:
/// request path "/admin" is not one of ["/api/*"]`).
fn rule_text(heading: &str, r: &RuleExplanation<'_>) -> Vec<String> {
    let summary = r
        .parts
        .iter()
        .map(|p| format!("{} {}", p.part, tri_name(p.result)))
        .collect::<Vec<_>>()
        .join(", ");
    let mut lines = vec![format!("{heading} {}: {summary}", r.rule)];
    for p in &r.parts {
        for reason in &p.reasons {
            lines.push(format!("  {} {}: {reason}", p.part, tri_name(p.result)));
        }
    }
    lines
}

fn explanation_text(e: &Explanation<'_>) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(d) = &e.decided {
        lines.extend(rule_text("rule", d));
    }
    if let Some(c) = &e.closest_allow {
        lines.extend(rule_text("default deny; closest ALLOW rule", c));
    }
    lines
}

fn rule_json(r: &RuleExplanation<'_>) -> Value {
    json!({
        "rule": r.rule,
        "parts": r.parts.iter().map(|p| json!({
            "part": p.part.to_string(),
            "result": tri_name(p.result),
            "condition": p.reasons.join("; "),
            "reasons": p.reasons,
        })).collect::<Vec<_>>(),
        "failed": r.parts.iter()
            .filter(|p| p.result != Tri::True)
            .map(|p| p.part.to_string())
            .collect::<Vec<_>>(),
    })
}

fn explanation_json(e: &Explanation<'_>) -> Value {
    json!({
        "decidingRule": e.decided.as_ref().map(rule_json),
        "closestAllow": e.closest_allow.as_ref().map(rule_json),
    })
}
