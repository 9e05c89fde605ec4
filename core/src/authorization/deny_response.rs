//! The reply to an authorization denial: Envoy RBAC's `403 RBAC: access denied` unless a DENY
//! policy's `meshguard.io/deny-*` annotations or the plugin's `denyResponse` say otherwise.
//!
//! Neither Istio nor Envoy's RBAC filter can customize this reply; the annotations are
//! meshguard's own (Istio ignores annotations it does not know, so the YAML stays valid Istio).
//! Everything is validated at load, as Envoy would accept it in a local reply:
//! * the status is 400-599;
//! * header names are RFC 7230 tokens, lower-cased (HTTP/2 and Envoy's header map carry them
//!   lower-case), values have no NUL, CR or LF; pseudo-headers, hop-by-hop headers,
//!   `content-length` and the `grpc-status`/`grpc-message` a gRPC denial is shaped with are
//!   refused, and so is `x-meshguard-decision` (`decisionHeader` sets it);
//! * the body is at most [`MAX_BODY_BYTES`], at most [`MAX_HEADERS`] headers.
//!
//! For a gRPC request Envoy shapes the local reply itself (`sendLocalReply`): a trailers-only
//! response whose `grpc-status` is `Grpc::Utility::httpToGrpcStatus(status)` ([`grpc_status`])
//! and whose `grpc-message` is the body.

use crate::config_json::string_map::StringMap;

use crate::config_json::raw::string_object;
use crate::config_json::reader::{FromJson, Json};
use crate::error::{config_err as err, ConfigError, ConfigPath, ConfigResult as Result};

/// The body of an authorization denial (Envoy's RBAC filter's).
pub const DENY_BODY: &str = "RBAC: access denied";
/// The status of an authorization denial (Envoy's RBAC filter's).
pub const DENY_STATUS: u32 = 403;
/// Upper bound on a configured body: the reply is built per denial in every sidecar.
pub const MAX_BODY_BYTES: usize = 4096;
/// Upper bound on the configured headers.
pub const MAX_HEADERS: usize = 16;

pub const DENY_STATUS_ANNOTATION: &str = "meshguard.io/deny-status";
pub const DENY_BODY_ANNOTATION: &str = "meshguard.io/deny-body";
pub const DENY_HEADERS_ANNOTATION: &str = "meshguard.io/deny-headers";

/// Headers a local reply may not set: connection-specific (Envoy strips or refuses them on
/// HTTP/2 and HTTP/3), framing, and the gRPC status Envoy derives from the HTTP status.
const REFUSED_HEADERS: [&str; 11] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "te",
    "trailer",
    "content-length",
    "grpc-status",
    "grpc-message",
    "x-meshguard-decision",
];

/// A validated denial reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DenyResponse {
    pub status: u32,
    pub body: String,
    /// Lower-cased names, in configuration order.
    pub headers: Vec<(String, String)>,
}

impl Default for DenyResponse {
    fn default() -> DenyResponse {
        DenyResponse {
            status: DENY_STATUS,
            body: DENY_BODY.to_string(),
            headers: Vec::new(),
        }
    }
}

/// The plugin configuration's `denyResponse`; unset parts keep Envoy RBAC's.
#[derive(Debug, Default)]
pub struct RawDenyResponse {
    pub status: Option<u32>,
    pub body: Option<String>,
    pub headers: StringMap,
}

impl FromJson for RawDenyResponse {
    fn from_json(value: &Json<'_>) -> Result<RawDenyResponse> {
        let f = value.fields("RawDenyResponse", &["status", "body", "headers"])?;
        Ok(RawDenyResponse {
            status: f.optional("status", Json::u32)?,
            body: f.optional("body", Json::string)?,
            headers: f.or_default("headers", Json::string_map)?,
        })
    }
}

impl DenyResponse {
    /// Compiles the plugin's `denyResponse`; errors are relative to it.
    pub fn from_config(raw: RawDenyResponse) -> Result<DenyResponse> {
        let status = match raw.status {
            Some(s) => check_status(s).map_err(|e| e.within("status"))?,
            None => DENY_STATUS,
        };
        let body = match raw.body {
            Some(b) => check_body(b).map_err(|e| e.within("body"))?,
            None => DENY_BODY.to_string(),
        };
        let headers = check_headers(raw.headers).map_err(|e| e.within("headers"))?;
        Ok(DenyResponse {
            status,
            body,
            headers,
        })
    }

    /// The reply a DENY policy's annotations describe, `None` when it has none. Errors name
    /// the annotation (`metadata.annotations[meshguard.io/deny-status]`).
    pub fn from_annotations(annotations: &StringMap) -> Result<Option<DenyResponse>> {
        let status = annotations.get(DENY_STATUS_ANNOTATION);
        let body = annotations.get(DENY_BODY_ANNOTATION);
        let headers = annotations.get(DENY_HEADERS_ANNOTATION);
        if status.is_none() && body.is_none() && headers.is_none() {
            return Ok(None);
        }
        let at = |name: &str| {
            ConfigPath::root()
                .field("metadata")
                .field("annotations")
                .key(name)
        };
        let status = match status {
            Some(s) => Some(s)
                .filter(|s| s.len() == 3 && s.bytes().all(|c| c.is_ascii_digit()))
                .and_then(|s| s.parse::<u32>().ok())
                .filter(|s| (400..=599).contains(s))
                .ok_or_else(|| {
                    ConfigError::new(
                        at(DENY_STATUS_ANNOTATION),
                        format!("{s:?} is not an HTTP status code 400-599"),
                    )
                })?,
            None => DENY_STATUS,
        };
        let body = match body {
            Some(b) => check_body(b.to_string()).map_err(|e| e.within(at(DENY_BODY_ANNOTATION)))?,
            None => DENY_BODY.to_string(),
        };
        let headers = match headers {
            Some(text) => {
                let map = string_object(text).map_err(|e| {
                    ConfigError::new(
                        at(DENY_HEADERS_ANNOTATION),
                        format!("must be a JSON object of header names to string values: {e}"),
                    )
                })?;
                check_headers(map).map_err(|e| e.within(at(DENY_HEADERS_ANNOTATION)))?
            }
            None => Vec::new(),
        };
        Ok(Some(DenyResponse {
            status,
            body,
            headers,
        }))
    }
}

fn check_status(status: u32) -> Result<u32> {
    if (400..=599).contains(&status) {
        Ok(status)
    } else {
        err("", format!("{status} is not an HTTP status code 400-599"))
    }
}

fn check_body(body: String) -> Result<String> {
    if body.len() > MAX_BODY_BYTES {
        return err(
            "",
            format!(
                "the body is {} bytes, more than {MAX_BODY_BYTES}",
                body.len()
            ),
        );
    }
    Ok(body)
}

/// RFC 7230 `tchar`.
fn is_token_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

fn check_headers(headers: StringMap) -> Result<Vec<(String, String)>> {
    if headers.len() > MAX_HEADERS {
        return err("", format!("at most {MAX_HEADERS} headers are allowed"));
    }
    let mut out: Vec<(String, String)> = Vec::with_capacity(headers.len());
    for (name, value) in headers {
        let at = || ConfigPath::root().key(name.as_str());
        if name.starts_with(':') {
            return err(at(), "pseudo-headers cannot be set");
        }
        if name.is_empty() || !name.bytes().all(is_token_char) {
            return err(at(), "not a valid HTTP header name");
        }
        let lower = name.to_ascii_lowercase();
        if REFUSED_HEADERS.contains(&lower.as_str()) {
            return err(
                at(),
                "hop-by-hop, framing and gRPC status headers cannot be set",
            );
        }
        if value.bytes().any(|c| matches!(c, 0 | b'\r' | b'\n')) {
            return err(at(), "the value may not contain NUL, CR or LF");
        }
        if out.iter().any(|(n, _)| *n == lower) {
            return err(at(), "set twice (header names are case-insensitive)");
        }
        out.push((lower, value));
    }
    Ok(out)
}

/// Envoy's `Grpc::Utility::httpToGrpcStatus`: the `grpc-status` of a local reply to a gRPC
/// request (grpc's http-grpc-status-mapping).
pub fn grpc_status(http_status: u32) -> u32 {
    match http_status {
        400 => 13,
        401 => 16,
        403 => 7,
        404 => 12,
        429 | 502 | 503 | 504 => 14,
        _ => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annotations(pairs: &[(&str, &str)]) -> StringMap {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn no_annotations_means_no_custom_reply() {
        assert_eq!(DenyResponse::from_annotations(&StringMap::new()), Ok(None));
    }

    #[test]
    fn annotations_compile_with_lower_cased_header_names() {
        let r = DenyResponse::from_annotations(&annotations(&[
            (DENY_STATUS_ANNOTATION, "404"),
            (DENY_BODY_ANNOTATION, "{\"title\": \"not found\"}\n"),
            (
                DENY_HEADERS_ANNOTATION,
                r#"{"Content-Type": "application/json", "x-why": "a b"}"#,
            ),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(r.status, 404);
        assert_eq!(r.body, "{\"title\": \"not found\"}\n");
        assert_eq!(
            r.headers,
            vec![
                ("content-type".to_string(), "application/json".to_string()),
                ("x-why".to_string(), "a b".to_string())
            ]
        );
    }

    #[test]
    fn missing_parts_keep_the_rbac_reply() {
        let r = DenyResponse::from_annotations(&annotations(&[(DENY_STATUS_ANNOTATION, "451")]))
            .unwrap()
            .unwrap();
        assert_eq!((r.status, r.body.as_str()), (451, DENY_BODY));
    }

    #[test]
    fn bad_statuses_are_refused_naming_the_annotation() {
        for bad in ["200", "399", "600", "4o4", "", " 404", "+404"] {
            let e = DenyResponse::from_annotations(&annotations(&[(DENY_STATUS_ANNOTATION, bad)]))
                .unwrap_err();
            assert_eq!(
                e.path.to_string(),
                "metadata.annotations[meshguard.io/deny-status]",
                "{bad}"
            );
        }
    }

    #[test]
    fn forbidden_and_malformed_headers_are_refused() {
        for bad in [
            r#"{":status": "200"}"#,
            r#"{"Connection": "close"}"#,
            r#"{"transfer-encoding": "chunked"}"#,
            r#"{"content-length": "3"}"#,
            r#"{"grpc-status": "0"}"#,
            r#"{"bad name": "x"}"#,
            r#"{"": "x"}"#,
            r#"{"x": "a\r\nb"}"#,
            r#"{"X-A": "1", "x-a": "2"}"#,
            r#"{"x": 1}"#,
            r#"["x"]"#,
        ] {
            let e = DenyResponse::from_annotations(&annotations(&[(DENY_HEADERS_ANNOTATION, bad)]));
            assert!(e.is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn bodies_are_bounded() {
        let big = "x".repeat(MAX_BODY_BYTES + 1);
        assert!(
            DenyResponse::from_annotations(&annotations(&[(DENY_BODY_ANNOTATION, &big)])).is_err()
        );
        let raw = RawDenyResponse {
            body: Some(big),
            ..RawDenyResponse::default()
        };
        let e = DenyResponse::from_config(raw).unwrap_err();
        assert_eq!(e.path.to_string(), "body");
    }

    #[test]
    fn grpc_codes_follow_envoys_http_mapping() {
        let pairs = [
            (400, 13),
            (401, 16),
            (403, 7),
            (404, 12),
            (429, 14),
            (503, 14),
            (451, 2),
        ];
        for (http, grpc) in pairs {
            assert_eq!(grpc_status(http), grpc, "{http}");
        }
    }
}
