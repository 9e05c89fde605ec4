//! meshguard's own AuthorizationPolicy annotations through the request pipeline: per-policy
//! deny replies (`meshguard.io/deny-*`), the plugin's `denyResponse`, and case-insensitive
//! paths (`meshguard.io/case-insensitive-paths`), with the index and the linear scan agreeing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;
use meshguard_core::plugin::engine::{Engine, Verdict};
use meshguard_core::plugin::request_pipeline::{Reply, Side, DENY_BODY};
use meshguard_core::request::request_view::Headers;
use serde_json::{json, Value};

/// The reply the pipeline sends for `req` (inbound), `None` when it lets it through.
fn reply(engine: &Engine, req: &Req) -> Option<Reply> {
    run_pipeline(engine, req, Side::Inbound).reply
}

fn annotated(name: &str, annotations: Value, spec: Value) -> Value {
    json!({
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": name, "namespace": NS, "annotations": annotations},
        "spec": spec,
    })
}

fn deny_path(path: &str) -> Value {
    json!({"action": "DENY", "rules": [{"to": [{"operation": {"paths": [path]}}]}]})
}

fn hide_internal() -> Value {
    annotated(
        "hide-internal",
        json!({
            "meshguard.io/deny-status": "404",
            "meshguard.io/deny-body": "not found\n",
            "meshguard.io/deny-headers": r#"{"Content-Type": "text/plain", "x-why": "hidden"}"#,
        }),
        deny_path("/internal*"),
    )
}

#[test]
fn a_deciding_annotated_deny_policy_shapes_the_reply() {
    let e = load_ok(&cfg(vec![hide_internal()]));
    let r = reply(&e, &Req::get("/internal/x")).unwrap();
    assert_eq!(r.status, 404);
    assert_eq!(r.body, "not found\n");
    assert_eq!(
        r.headers,
        vec![
            ("content-type".to_string(), "text/plain".to_string()),
            ("x-why".to_string(), "hidden".to_string())
        ]
    );
    assert!(reply(&e, &Req::get("/public")).is_none());
}

#[test]
fn the_first_deny_rule_in_evaluation_order_picks_the_reply() {
    let other = annotated(
        "teapot",
        json!({"meshguard.io/deny-status": "418"}),
        deny_path("/internal/x"),
    );
    // Both match; rules are evaluated in configuration order, so the first policy decided.
    let e = load_ok(&cfg(vec![hide_internal(), other.clone()]));
    assert_eq!(reply(&e, &Req::get("/internal/x")).unwrap().status, 404);
    let e = load_ok(&cfg(vec![other, hide_internal()]));
    assert_eq!(reply(&e, &Req::get("/internal/x")).unwrap().status, 418);
}

#[test]
fn other_denials_use_the_plugin_deny_response_or_rbacs_403() {
    let allow = ap(
        NS,
        "allow-get",
        json!({"rules": [{"to": [{"operation": {"methods": ["GET"]}}]}]}),
    );
    let plain_deny = ap(NS, "plain", deny_path("/plain"));
    let resources = vec![hide_internal(), allow, plain_deny];
    let e = load_ok(&cfg(resources.clone()));
    let no_allow = reply(&e, &Req::get("/x").method("POST")).unwrap();
    assert_eq!((no_allow.status, no_allow.body.as_str()), (403, DENY_BODY));

    let mut config = cfg(resources);
    config["denyResponse"] = json!({"status": 401, "body": "{\"error\": \"denied\"}",
        "headers": {"Content-Type": "application/json"}});
    let e = load_ok(&config);
    for req in [Req::get("/x").method("POST"), Req::get("/plain")] {
        let r = reply(&e, &req).unwrap();
        assert_eq!(r.status, 401);
        assert_eq!(r.body, "{\"error\": \"denied\"}");
        assert_eq!(
            r.headers,
            vec![("content-type".to_string(), "application/json".to_string())]
        );
    }
    // The annotated policy still answers with its own reply.
    assert_eq!(reply(&e, &Req::get("/internal/a")).unwrap().status, 404);
}

#[test]
fn the_decision_header_comes_after_the_configured_headers() {
    let mut config = cfg(vec![hide_internal()]);
    config["decisionHeader"] = json!(true);
    let e = load_ok(&config);
    let r = reply(&e, &Req::get("/internal")).unwrap();
    assert_eq!(
        r.headers.last().unwrap(),
        &(
            "x-meshguard-decision".to_string(),
            "deny ns[foo]-policy[hide-internal]-rule[0]".to_string()
        )
    );
}

#[test]
fn annotation_errors_name_the_policy_and_the_annotation() {
    let cases = [
        (
            json!({"meshguard.io/deny-status": "200"}),
            "meshguard.io/deny-status",
        ),
        (
            json!({"meshguard.io/deny-status": "abc"}),
            "meshguard.io/deny-status",
        ),
        (
            json!({"meshguard.io/deny-headers": "{\":status\": \"200\"}"}),
            "meshguard.io/deny-headers",
        ),
        (
            json!({"meshguard.io/deny-headers": "{\"Connection\": \"close\"}"}),
            "meshguard.io/deny-headers",
        ),
        (
            json!({"meshguard.io/deny-headers": "{\"content-length\": \"1\"}"}),
            "meshguard.io/deny-headers",
        ),
        (
            json!({"meshguard.io/deny-headers": "not json"}),
            "meshguard.io/deny-headers",
        ),
        (
            json!({"meshguard.io/case-insensitive-paths": "yes"}),
            "meshguard.io/case-insensitive-paths",
        ),
        (
            json!({"meshguard.io/deny-stauts": "404"}),
            "meshguard.io/deny-stauts",
        ),
    ];
    for (annotations, name) in cases {
        let e = load_err(&cfg(vec![annotated(
            "bad",
            annotations.clone(),
            deny_path("/a"),
        )]));
        let text = e.to_string();
        assert!(text.contains(name), "{annotations}: {text}");
        assert!(text.contains("bad"), "{annotations}: {text}");
    }
}

#[test]
fn an_unknown_annotation_error_lists_the_known_ones() {
    let e = load_err(&cfg(vec![annotated(
        "typo",
        json!({"meshguard.io/deny-stauts": "404"}),
        deny_path("/a"),
    )]));
    let known = [
        "meshguard.io/deny-status",
        "meshguard.io/deny-body",
        "meshguard.io/deny-headers",
        "meshguard.io/case-insensitive-paths",
    ];
    let text = e.to_string();
    assert!(
        text.contains(&format!("typo (known: {})", known.join(", "))),
        "{text}"
    );
}

#[test]
fn deny_reply_annotations_on_an_allow_policy_are_refused() {
    let e = load_err(&cfg(vec![annotated(
        "allow",
        json!({"meshguard.io/deny-status": "404"}),
        json!({"rules": [{}]}),
    )]));
    assert!(e.to_string().contains("only to a DENY policy"), "{e}");
}

#[test]
fn plugin_deny_response_is_validated() {
    for (bad, path) in [
        (json!({"status": 302}), "denyResponse.status"),
        (json!({"headers": {"te": "x"}}), "denyResponse.headers[te]"),
        (json!({"statuss": 404}), "denyResponse"),
    ] {
        let mut config = cfg(vec![]);
        config["denyResponse"] = bad.clone();
        let e = load_err(&config);
        assert!(e.path.to_string().starts_with(path), "{bad}: {e}");
    }
}

fn ci_deny(paths: &[&str], value: &str) -> Value {
    annotated(
        "ci",
        json!({"meshguard.io/case-insensitive-paths": value}),
        json!({"action": "DENY", "rules": [{"to": [{"operation": {"paths": paths}}]}]}),
    )
}

#[test]
fn case_insensitive_paths_deny_every_spelling() {
    let e = load_ok(&cfg(vec![ci_deny(
        &["/admin", "/api/{*}/secret", "/files/*"],
        "true",
    )]));
    for p in [
        "/ADMIN",
        "/Admin",
        "/api/v1/SECRET",
        "/API/x/Secret",
        "/FILES/a",
        "/admin?x=1",
    ] {
        assert!(reply(&e, &Req::get(p)).is_some(), "{p} should be denied");
    }
    for p in ["/admin/", "/api/v1/secrets", "/file"] {
        assert!(reply(&e, &Req::get(p)).is_none(), "{p} should pass");
    }
    let sensitive = load_ok(&cfg(vec![ci_deny(&["/admin"], "false")]));
    assert!(reply(&sensitive, &Req::get("/ADMIN")).is_none());
    assert!(reply(&sensitive, &Req::get("/admin")).is_some());
}

#[test]
fn case_insensitive_not_paths_fold_too() {
    let policy = annotated(
        "ci",
        json!({"meshguard.io/case-insensitive-paths": "true"}),
        json!({"action": "DENY", "rules": [{"to": [{"operation": {"notPaths": ["/public*"]}}]}]}),
    );
    let e = load_ok(&cfg(vec![policy]));
    assert!(reply(&e, &Req::get("/PUBLIC/x")).is_none());
    assert!(reply(&e, &Req::get("/private")).is_some());
}

/// Enough rules to build the index (indexed sets start at 16 rules), mixing case-sensitive
/// and case-insensitive policies: the decision equals a linear scan's (the same rules under
/// the threshold) for every request.
#[test]
fn indexed_and_linear_decisions_agree_with_case_insensitive_policies() {
    let words = ["admin", "Api", "files", "x", "Y", "zz", "data", "Other"];
    let mut policies = Vec::new();
    for (i, w) in words.iter().enumerate() {
        let ci = if i % 2 == 0 { "true" } else { "false" };
        policies.push(annotated(
            &format!("p{i}"),
            json!({"meshguard.io/case-insensitive-paths": ci}),
            json!({"rules": [
                {"to": [{"operation": {"paths": [format!("/{w}")]}}]},
                {"to": [{"operation": {"paths": [format!("/{w}/*")]}}]},
                {"to": [{"operation": {"paths": [format!("/{w}/{{*}}/item")]}}]},
            ]}),
        ));
    }
    let indexed = load_ok(&cfg(policies.clone()));
    let requests = [
        "/admin",
        "/ADMIN",
        "/Admin/x",
        "/api",
        "/API",
        "/Api/1/item",
        "/api/1/ITEM",
        "/files/a",
        "/FILES/a",
        "/x",
        "/X",
        "/y",
        "/Y/q",
        "/zz/1/item",
        "/ZZ/1/ITEM",
        "/data/",
        "/DATA/x",
        "/other",
        "/Other",
        "/none",
    ];
    for p in requests {
        let whole = indexed.decide(
            Headers::new(&[(":path".to_string(), p.as_bytes().to_vec())]),
            &Req::get(p).conn,
        );
        // The same policies one at a time (each well under the index threshold).
        let linear = policies.iter().find_map(|policy| {
            let single = load_ok(&cfg(vec![policy.clone()]));
            let d = single.decide(
                Headers::new(&[(":path".to_string(), p.as_bytes().to_vec())]),
                &Req::get(p).conn,
            );
            (d.verdict == Verdict::Allow).then(|| d.policy.unwrap().to_string())
        });
        assert_eq!(whole.policy.map(str::to_string), linear, "{p}");
    }
}
