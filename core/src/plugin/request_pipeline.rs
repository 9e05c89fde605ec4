//! The request pipeline: one request through the compiled plugin, in Istio's order, as pure
//! code. The wasm filter reads the host, calls [`decide_request`] and applies the outcome;
//! `meshguard check` and the native tests call the same function.
//!
//! The order mirrors what Istio configures around a sidecar (and ztunnel's `assert_rbac`):
//!
//! 1. **Direction.** On the outbound side only the Sidecar egress list applies (Istio enforces
//!    peer and request authentication and authorization on the inbound side only).
//! 2. **PeerAuthentication STRICT.** A plaintext request to a STRICT port is refused before any
//!    HTTP processing (Istio's listener has no plaintext filter chain there).
//! 3. **RequestAuthentication.** A bad token is answered as Envoy's `jwt_authn` does (401, or
//!    403 for a disallowed audience, with `www-authenticate`); a missing token passes.
//! 4. **Header edits.** Authorization sees the request as Istio's RBAC would after `jwt_authn`:
//!    client copies of output headers removed, verified claim headers set, the token header
//!    removed.
//! 5. **Authorization** ([`Engine::decide_with_claims`]): CUSTOM is rejected at load, then
//!    DENY, ALLOW, with AUDIT and dry-run alongside; their results are reported the way
//!    Envoy's RBAC filters report them for Istio ([`RbacReport`]).
//! 6. **The reply.** An authorization denial is `403 RBAC: access denied`, as Envoy's RBAC
//!    filter answers, unless the deciding DENY policy's `meshguard.io/deny-*` annotations or
//!    the plugin's `denyResponse` say otherwise ([`Engine::deny_response`]); Envoy shapes it for
//!    gRPC. Token, mTLS and egress replies are never customized.

use std::borrow::Cow;
use std::cell::RefCell;
use std::rc::Rc;

use crate::authn::authenticator::{edited_headers, AuthnState, HeaderEdit, Outcome};
use crate::authn::jwt::JwtFailure;
use crate::authorization::rule_id::RuleId;
use crate::plugin::counters::{Counter, CounterBumps, PolicyOutcome};
use crate::plugin::engine::{Decision, DryRun, Engine, Verdict};
use crate::plugin::rbac_report::RbacReport;
use crate::plugin::settings::{Direction, JwtSource};
use crate::request::json_value::JsonObject;
use crate::request::request_view::{Connection, Headers};
use crate::request::verified_claims::Claims;

pub use crate::authorization::deny_response::DENY_BODY;
/// The body of a plaintext request to a port a STRICT PeerAuthentication covers.
pub const MTLS_REQUIRED_BODY: &str = "meshguard: mTLS is required (PeerAuthentication STRICT)";
/// The response-code details when the filter cannot decide (no configuration): fail closed.
pub const DENY_DETAILS: &str = "meshguard_access_denied";
/// The response-code details of a plaintext request to a STRICT port.
pub const MTLS_REQUIRED_DETAILS: &str = "meshguard_mtls_required";
/// The response-code details of a call the Sidecar egress list (or the registry) refuses.
pub const EGRESS_DENIED_DETAILS: &str = "meshguard_egress_denied";
/// The response header carrying the decision when `decisionHeader` is on.
pub const DECISION_HEADER: &str = "x-meshguard-decision";

/// Which side of the workload the filter runs on, once `direction: auto` is resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Inbound,
    Outbound,
}

impl Direction {
    /// The side enforced: the configured one, or for `auto` Envoy's listener direction
    /// (`xds.listener_direction`: 1 inbound, 2 outbound; inbound when unknown), asked only then.
    pub fn side(self, listener_direction: impl FnOnce() -> Option<u64>) -> Side {
        match self {
            Direction::Inbound => Side::Inbound,
            Direction::Outbound => Side::Outbound,
            Direction::Auto if listener_direction() == Some(2) => Side::Outbound,
            Direction::Auto => Side::Inbound,
        }
    }
}

/// One request as the filter sees it.
pub struct PipelineRequest<'r> {
    /// The request headers as Envoy hands them to the filter (path already normalized).
    pub headers: Headers<'r>,
    /// The connection's attributes, read lazily by the glue.
    pub connection: &'r dyn Connection,
    pub side: Side,
    /// The host's clock, seconds since the Unix epoch; asked only when a token is verified.
    pub clock: &'r dyn Fn() -> u64,
    /// The payload Envoy's `jwt_authn` verified (for `jwtSource: envoyJwtAuthn`), asked only
    /// then.
    pub jwt_authn_payload: &'r dyn Fn() -> Option<JsonObject>,
}

/// The reply meshguard sends itself instead of forwarding the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u32,
    /// Envoy's response-code details (`%RESPONSE_CODE_DETAILS%`).
    pub details: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// The step of the pipeline that decided.
#[derive(Debug, Clone, PartialEq)]
pub enum Stage<'e> {
    /// Outbound, and the Sidecar egress list allows the host (or none applies).
    EgressAllowed,
    /// Outbound, and the called host is not in the Sidecar's egress list.
    EgressDenied { host: String, sidecar: &'e str },
    /// Plaintext on a STRICT port; the PeerAuthentication that requires mTLS.
    MtlsRequired { source: &'e str },
    /// RequestAuthentication rejected the token.
    TokenRejected(JwtFailure),
    /// Authorization decided (after authentication, whose result is kept).
    Authorized {
        authn: Outcome,
        decision: Decision<'e>,
    },
}

/// Everything the filter does with one request.
#[derive(Debug, Clone)]
pub struct RequestOutcome<'e> {
    pub verdict: Verdict,
    pub stage: Stage<'e>,
    /// `Some` when meshguard answers itself (every denial).
    pub reply: Option<Reply>,
    /// Request header changes to apply when the request is allowed.
    pub header_edits: Vec<HeaderEdit>,
    /// Filter state `wasm.meshguard.decision`, when the step sets it; after authorization only
    /// with `decisionFilterState` on (the glue writes it only then).
    pub decision_state: Option<Cow<'static, str>>,
    /// The value of the decision response header to add to the upstream response.
    pub response_decision_header: Option<String>,
    /// A log line and its level, rendered only when that level is enabled.
    pub log: Option<(log::Level, String)>,
    pub counters: CounterBumps<'e>,
    /// The dry-run and AUDIT results to publish as filter state; empty unless such policies
    /// apply.
    pub rbac_report: RbacReport<'e>,
}

/// Runs one request through the compiled plugin.
pub fn decide_request<'e>(
    engine: &'e Engine,
    request: &PipelineRequest<'_>,
    token_cache: &RefCell<AuthnState>,
) -> RequestOutcome<'e> {
    let headers = request.headers;
    if request.side == Side::Outbound {
        return egress(engine, headers, request.connection);
    }
    // Istio refuses plaintext on a STRICT port before any HTTP processing: check it first.
    if let Some(source) = engine.mtls_violation(request.connection) {
        return denied(
            Stage::MtlsRequired { source },
            reply_403(
                MTLS_REQUIRED_DETAILS.to_string(),
                Vec::new(),
                MTLS_REQUIRED_BODY,
            ),
            Some(Cow::Owned(format!("deny {source}"))),
            log_line(log::Level::Info, || {
                format!("meshguard decision=deny {source} reason=mtls_required")
            }),
        );
    }
    let mut edits = Vec::new();
    let authn = if engine.settings().jwt_source == JwtSource::EnvoyJwtAuthn {
        match (request.jwt_authn_payload)() {
            Some(payload) => Outcome::Verified(Rc::new(Claims::new(Rc::new(payload), &[]))),
            None => Outcome::NoToken,
        }
    } else if engine.authenticator().is_empty() {
        Outcome::NoToken
    } else {
        match token_cache.try_borrow_mut() {
            Ok(mut state) => engine.authenticator().authenticate(
                headers,
                (request.clock)(),
                &mut state,
                &mut edits,
            ),
            Err(_) => Outcome::Rejected(JwtFailure::VerificationFails),
        }
    };
    let claims = match &authn {
        Outcome::Rejected(failure) => return token_rejected(*failure, headers),
        Outcome::Verified(claims) => Some(claims.clone()),
        Outcome::NoToken => None,
    };
    let edited;
    let view = if edits.is_empty() {
        headers
    } else {
        edited = edited_headers(headers, &edits);
        Headers::from_wire(&edited)
    };
    let decision = engine.decide_with_claims(view, request.connection, claims.as_deref());
    authorized(
        engine,
        decision,
        authn,
        &edits,
        view,
        request.connection,
        headers,
    )
}

fn egress<'e>(
    engine: &'e Engine,
    headers: Headers<'_>,
    connection: &dyn Connection,
) -> RequestOutcome<'e> {
    let violation = if engine.has_egress_rules() {
        engine.egress_violation(headers, connection)
    } else {
        None
    };
    let Some((host, sidecar)) = violation else {
        return RequestOutcome {
            verdict: Verdict::Allow,
            stage: Stage::EgressAllowed,
            reply: None,
            header_edits: Vec::new(),
            decision_state: Some(Cow::Borrowed("allow egress")),
            response_decision_header: None,
            log: None,
            counters: CounterBumps::default(),
            rbac_report: RbacReport::default(),
        };
    };
    let body = format!(
        "meshguard: egress to {host} is not allowed by Sidecar {sidecar} \
         (outboundTrafficPolicy REGISTRY_ONLY)"
    );
    let log = log_line(log::Level::Info, || {
        format!("meshguard decision=deny egress host={host} sidecar={sidecar}")
    });
    let state = format!("deny egress[{host}]");
    denied(
        Stage::EgressDenied { host, sidecar },
        reply_403(EGRESS_DENIED_DETAILS.to_string(), Vec::new(), &body),
        Some(Cow::Owned(state)),
        log,
    )
}

fn denied<'e>(
    stage: Stage<'e>,
    reply: Reply,
    decision_state: Option<Cow<'static, str>>,
    log: Option<(log::Level, String)>,
) -> RequestOutcome<'e> {
    RequestOutcome {
        verdict: Verdict::Deny,
        stage,
        reply: Some(reply),
        header_edits: Vec::new(),
        decision_state,
        response_decision_header: None,
        log,
        counters: CounterBumps::default().counter(Counter::Denied),
        rbac_report: RbacReport::default(),
    }
}

fn reply_403(details: String, headers: Vec<(String, String)>, body: &str) -> Reply {
    Reply {
        status: 403,
        details,
        headers,
        body: body.to_string(),
    }
}

/// Envoy's RBAC filter's response-code details for a denial
/// (`Filters::Common::RBAC::responseDetail`): the matched DENY policy, else `none` (no ALLOW
/// policy matched).
fn rbac_denied_details(deny_rule: Option<&RuleId>) -> String {
    const PREFIX: &str = "rbac_access_denied_matched_policy[";
    let rule = deny_rule.map_or("none", RuleId::as_str);
    // Concatenated, not `format!`: built for every denial.
    let mut details = String::with_capacity(PREFIX.len() + rule.len() + 1);
    details.push_str(PREFIX);
    details.push_str(rule);
    details.push(']');
    details
}

/// `Some((level, line))` when `level` is enabled; the line is built only then.
fn log_line(level: log::Level, line: impl FnOnce() -> String) -> Option<(log::Level, String)> {
    log::log_enabled!(level).then(|| (level, line()))
}

fn text(headers: Headers<'_>, name: &str) -> String {
    headers
        .first(name)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_default()
}

/// `:path` for logs: the query string may carry the token, so it is never logged.
fn path_without_query(headers: Headers<'_>) -> String {
    let path = text(headers, ":path");
    match path.split_once('?') {
        Some((p, _)) => p.to_string(),
        None => path,
    }
}

/// Answers a bad token like Envoy's `jwt_authn`: 401 (403 for a disallowed audience),
/// the status text as body, and `www-authenticate: Bearer realm="<uri>", error="invalid_token"`.
fn token_rejected<'e>(failure: JwtFailure, headers: Headers<'_>) -> RequestOutcome<'e> {
    let mut path = headers.first("x-envoy-original-path").map_or_else(
        || text(headers, ":path"),
        |p| String::from_utf8_lossy(p).into_owned(),
    );
    // Envoy `buildOriginalUri(headers, 256)`: only the path is cut to 256 characters.
    if let Some((cut, _)) = path.char_indices().nth(256) {
        path.truncate(cut);
    }
    let uri = format!(
        "{}://{}{path}",
        text(headers, ":scheme"),
        text(headers, ":authority")
    );
    let challenge = format!("Bearer realm=\"{uri}\", error=\"invalid_token\"");
    let log = log_line(log::Level::Info, || {
        format!(
            "meshguard jwt_rejected reason={} status={} method={} path={}",
            failure.reason(),
            failure.http_status(),
            text(headers, ":method"),
            path_without_query(headers),
        )
    });
    RequestOutcome {
        verdict: Verdict::Deny,
        stage: Stage::TokenRejected(failure),
        reply: Some(Reply {
            status: failure.http_status(),
            details: format!(
                "jwt_authn_access_denied{{{}}}",
                failure.message().replace(' ', "_")
            ),
            headers: vec![("www-authenticate".to_string(), challenge)],
            body: failure.message().to_string(),
        }),
        header_edits: Vec::new(),
        decision_state: None,
        response_decision_header: None,
        log,
        counters: CounterBumps::default().counter(Counter::jwt_rejected(failure)),
        rbac_report: RbacReport::default(),
    }
}

fn authorized<'e>(
    engine: &'e Engine,
    decision: Decision<'e>,
    authn: Outcome,
    edits: &[HeaderEdit],
    view: Headers<'_>,
    connection: &dyn Connection,
    received: Headers<'_>,
) -> RequestOutcome<'e> {
    let allowed = decision.is_allowed();
    let mut counters = CounterBumps::default();
    if matches!(authn, Outcome::Verified(_)) {
        counters = counters.counter(Counter::JwtAccepted);
    }
    counters = counters.counter(if allowed {
        Counter::Allowed
    } else {
        Counter::Denied
    });
    if let Some(rule) = decision.matched.decided {
        let outcome = if allowed {
            PolicyOutcome::Allowed
        } else {
            PolicyOutcome::Denied
        };
        counters = counters.policy(rule, outcome);
    }
    let dry_run_denied = match (decision.dry_run, decision.matched.dry_run_deny) {
        (DryRun::WouldDeny(text), Some(rule)) => {
            counters = counters
                .counter(Counter::DryRunDenied)
                .policy(rule, PolicyOutcome::DryRunDenied);
            Some(text)
        }
        (DryRun::WouldDeny(text), None) => {
            counters = counters.counter(Counter::DryRunDenied);
            Some(text)
        }
        (DryRun::WouldDenyNoAllowMatched, _) => {
            counters = counters.counter(Counter::DryRunDenied);
            Some("none")
        }
        (DryRun::None | DryRun::WouldAllow(_), _) => None,
    };
    if let Some(rule) = decision.matched.audit {
        counters = counters
            .counter(Counter::Audited)
            .policy(rule, PolicyOutcome::Audited);
    }
    let rbac_report = RbacReport::of(&decision);
    for (filter, shadow) in rbac_report.results() {
        counters = counters.counter(filter.counter(shadow.allowed));
    }
    // Info for denies, dry-run denies and audits; debug for allows.
    let level = if !allowed || dry_run_denied.is_some() || decision.audit.is_some() {
        log::Level::Info
    } else {
        log::Level::Debug
    };
    let log = log_line(level, || {
        let summary = decision.summary();
        let principal = connection
            .peer()
            .and_then(|p| p.uri_san.as_deref())
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_else(|| "none".to_string());
        format!(
            "meshguard decision={summary} dry_run_deny={} audit={} method={} path={} \
             authority={} principal={principal}",
            dry_run_denied.unwrap_or("-"),
            decision.audit.unwrap_or("-"),
            text(view, ":method"),
            path_without_query(view),
            text(view, ":authority"),
        )
    });
    let settings = engine.settings();
    let decision_header = settings.decision_header;
    // The summary is text built per request: only when the response header or the filter state
    // carries it.
    let summary = (decision_header || settings.decision_filter_state).then(|| decision.summary());
    let (reply, header_edits, response_decision_header) = if allowed {
        // Removals only touch headers the request carries.
        let edits = edits
            .iter()
            .filter(|e| match e {
                HeaderEdit::Remove(name) => received.first(name).is_some(),
                HeaderEdit::Append(..) | HeaderEdit::SetPath(_) => true,
            })
            .cloned()
            .collect();
        (None, edits, summary.clone().filter(|_| decision_header))
    } else {
        let custom = engine.deny_response(&decision);
        let mut headers = custom.headers.clone();
        if let (true, Some(summary)) = (decision_header, &summary) {
            headers.push((DECISION_HEADER.to_string(), summary.clone()));
        }
        let reply = Reply {
            status: custom.status,
            details: rbac_denied_details(decision.matched.decided),
            headers,
            body: custom.body.clone(),
        };
        (Some(reply), Vec::new(), None)
    };
    RequestOutcome {
        verdict: decision.verdict,
        stage: Stage::Authorized { authn, decision },
        reply,
        header_edits,
        decision_state: summary
            .filter(|_| settings.decision_filter_state)
            .map(Cow::Owned),
        response_decision_header,
        log,
        counters,
        rbac_report,
    }
}
