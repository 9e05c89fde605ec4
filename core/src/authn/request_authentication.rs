//! Istio `RequestAuthentication` (`security.istio.io/v1`, `v1beta1`): the resource schema, its
//! validation, and the JWT provider each `jwtRules` entry becomes.
//!
//! istiod turns every rule into one Envoy `jwt_authn` provider (`policy_applier.go`
//! `convertToEnvoyJwtConfig`), sorted by issuer, with `forward: forwardOriginalToken`,
//! `forward_payload_header`, `claim_to_headers`, `payload_in_metadata` and space-delimited
//! claims `scope`, `permission` plus `spaceDelimitedClaims`. Token locations default to
//! `Authorization: Bearer <token>` and the `access_token` query parameter.
//!
//! meshguard differences: inline `jwks` or `jwksUri` is required (no OpenID discovery), both at
//! once is an error, and an inline JWKS without a usable key is a load error.

use crate::config_json::string_map::StringMap;

use crate::authn::jwt::{JwksSource, KeySet};
use crate::config_json::reader::{FromJson, Json};
use crate::error::{config_err as err, ConfigResult as Result};
use crate::error::{ConfigError, ConfigPath};
use crate::targeting::attachment::{check_attachment, TargetRef, WorkloadSelector};

#[derive(Debug)]
pub struct RequestAuthenticationSpec {
    pub selector: Option<WorkloadSelector>,
    pub target_ref: Option<TargetRef>,
    pub target_refs: Option<Vec<TargetRef>>,
    pub jwt_rules: Option<Vec<JwtRule>>,
}

impl FromJson for RequestAuthenticationSpec {
    fn from_json(value: &Json<'_>) -> Result<RequestAuthenticationSpec> {
        let f = value.fields(
            "RequestAuthenticationSpec",
            &["selector", "targetRef", "targetRefs", "jwtRules"],
        )?;
        Ok(RequestAuthenticationSpec {
            selector: f.optional("selector", WorkloadSelector::from_json)?,
            target_ref: f.optional("targetRef", TargetRef::from_json)?,
            target_refs: f.optional("targetRefs", |v| v.list(TargetRef::from_json))?,
            jwt_rules: f.optional("jwtRules", |v| v.list(JwtRule::from_json))?,
        })
    }
}

#[derive(Debug, Default)]
pub struct JwtRule {
    pub issuer: Option<String>,
    pub audiences: Option<Vec<String>>,
    pub jwks_uri: Option<String>,
    pub jwks: Option<String>,
    pub from_headers: Option<Vec<JwtHeader>>,
    pub from_params: Option<Vec<String>>,
    pub from_cookies: Option<Vec<String>>,
    pub output_payload_to_header: Option<String>,
    pub output_claim_to_headers: Option<Vec<ClaimToHeader>>,
    pub forward_original_token: Option<bool>,
    pub timeout: Option<String>,
    pub space_delimited_claims: Option<Vec<String>>,
}

impl FromJson for JwtRule {
    // Field by field on purpose (see below), which this lint would undo.
    #[allow(clippy::field_reassign_with_default)]
    fn from_json(value: &Json<'_>) -> Result<JwtRule> {
        let f = value.fields(
            "JwtRule",
            &[
                "issuer",
                "audiences",
                "jwksUri",
                "jwks",
                "fromHeaders",
                "fromParams",
                "fromCookies",
                "outputPayloadToHeader",
                "outputClaimToHeaders",
                "forwardOriginalToken",
                "timeout",
                "spaceDelimitedClaims",
            ],
        )?;
        // Filled field by field: a `?` then drops one struct, not the fields read so far (in
        // a struct literal each `?` drops its own set, and the function grows with their count;
        // README, "What sets the memory at rest").
        let mut rule = JwtRule::default();
        rule.issuer = f.optional("issuer", Json::string)?;
        rule.audiences = f.optional("audiences", Json::strings)?;
        rule.jwks_uri = f.optional("jwksUri", Json::string)?;
        rule.jwks = f.optional("jwks", Json::string)?;
        rule.from_headers = f.optional("fromHeaders", |v| v.list(JwtHeader::from_json))?;
        rule.from_params = f.optional("fromParams", Json::strings)?;
        rule.from_cookies = f.optional("fromCookies", Json::strings)?;
        rule.output_payload_to_header = f.optional("outputPayloadToHeader", Json::string)?;
        rule.output_claim_to_headers =
            f.optional("outputClaimToHeaders", |v| v.list(ClaimToHeader::from_json))?;
        rule.forward_original_token = f.optional("forwardOriginalToken", Json::boolean)?;
        rule.timeout = f.optional("timeout", Json::string)?;
        rule.space_delimited_claims = f.optional("spaceDelimitedClaims", Json::strings)?;
        Ok(rule)
    }
}

#[derive(Debug)]
pub struct JwtHeader {
    pub name: String,
    pub prefix: Option<String>,
}

impl FromJson for JwtHeader {
    fn from_json(value: &Json<'_>) -> Result<JwtHeader> {
        let f = value.fields("JwtHeader", &["name", "prefix"])?;
        Ok(JwtHeader {
            name: f.required("name", Json::string)?,
            prefix: f.optional("prefix", Json::string)?,
        })
    }
}

#[derive(Debug)]
pub struct ClaimToHeader {
    pub header: String,
    pub claim: String,
}

impl FromJson for ClaimToHeader {
    fn from_json(value: &Json<'_>) -> Result<ClaimToHeader> {
        let f = value.fields("ClaimToHeader", &["header", "claim"])?;
        Ok(ClaimToHeader {
            header: f.required("header", Json::string)?,
            claim: f.required("claim", Json::string)?,
        })
    }
}

/// Where a provider looks for its token.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Location {
    /// Header (lower-case name) and the prefix to find in its value (`Bearer `).
    Header {
        name: String,
        prefix: String,
    },
    Param(String),
    Cookie(String),
}

/// Where the provider's keys come from.
#[derive(Debug, Clone)]
pub enum Keys {
    Inline(KeySet),
    Remote(RemoteJwks),
}

/// A `jwksUri` fetched with `dispatch_http_call` through an Envoy cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteJwks {
    pub uri: String,
    pub cluster: String,
    pub authority: String,
    pub path: String,
    pub timeout_ms: u64,
}

/// One JWT provider (one `jwtRules` entry).
#[derive(Debug, Clone)]
pub struct Provider {
    pub issuer: Option<String>,
    pub audiences: Vec<String>,
    pub keys: Keys,
    pub locations: Vec<Location>,
    pub forward: bool,
    pub payload_header: Option<String>,
    /// `(header, claim path)`; nested claims are written `a.b`.
    pub claim_headers: Vec<(String, Vec<String>)>,
    pub space_delimited: Vec<String>,
}

/// A validated RequestAuthentication.
#[derive(Debug, Clone)]
pub struct CompiledRequestAuthentication {
    pub selector: Option<StringMap>,
    pub has_target_ref: bool,
    pub providers: Vec<Provider>,
}

/// Istio's default JWKS fetch timeout.
const DEFAULT_TIMEOUT_MS: u64 = 5_000;

/// Validates one RequestAuthentication spec. `clusters` overrides the Envoy cluster per URI.
/// Errors are relative to the spec.
pub fn compile_request_authentication(
    spec: RequestAuthenticationSpec,
    clusters: &StringMap,
) -> Result<CompiledRequestAuthentication> {
    let has_target_ref = check_attachment(
        spec.selector.is_some(),
        spec.target_ref.as_ref(),
        spec.target_refs.as_deref(),
    )?;
    let mut providers = Vec::new();
    for (i, rule) in spec.jwt_rules.unwrap_or_default().into_iter().enumerate() {
        providers.push(
            compile_rule(rule, clusters)
                .map_err(|e| e.within(ConfigPath::root().field("jwtRules").index(i)))?,
        );
    }
    Ok(CompiledRequestAuthentication {
        selector: spec.selector.map(|s| s.match_labels),
        has_target_ref,
        providers,
    })
}

/// Errors are relative to the list's field, named `field`.
fn non_empty_list(list: &Option<Vec<String>>, field: &'static str) -> Result<()> {
    for (i, v) in list.iter().flatten().enumerate() {
        if v.is_empty() {
            return err(
                ConfigPath::root().field(field).index(i),
                "empty value is not allowed",
            );
        }
    }
    Ok(())
}

/// Validates one `jwtRules` entry; errors are relative to it.
// Its parts are functions of their own, never inlined here: V8 compiles the whole module at load
// with its optimizing compiler, and the memory it leaves behind grows with the largest function
// (README, "What sets the memory at rest").
#[inline(never)]
fn compile_rule(rule: JwtRule, clusters: &StringMap) -> Result<Provider> {
    if rule.issuer.as_deref().is_some_and(str::is_empty) {
        return err("issuer", "must not be empty");
    }
    if rule.issuer.is_none() && rule.jwks_uri.is_none() {
        return err("", "issuer or jwksUri is required");
    }
    non_empty_list(&rule.audiences, "audiences")?;
    non_empty_list(&rule.from_params, "fromParams")?;
    non_empty_list(&rule.from_cookies, "fromCookies")?;
    let keys = rule_keys(&rule, clusters)?;
    let locations = token_locations(&rule)?;
    if let Some(h) = &rule.output_payload_to_header {
        check_header_name(h).map_err(|e| e.within("outputPayloadToHeader"))?;
    }
    let claim_headers = claim_headers(&rule)?;
    non_empty_list(&rule.space_delimited_claims, "spaceDelimitedClaims")?;
    let mut space_delimited = vec!["scope".to_string(), "permission".to_string()];
    space_delimited.extend(rule.space_delimited_claims.iter().flatten().cloned());
    Ok(Provider {
        issuer: rule.issuer,
        audiences: rule.audiences.unwrap_or_default(),
        keys,
        locations,
        forward: rule.forward_original_token.unwrap_or(false),
        payload_header: rule
            .output_payload_to_header
            .map(|h| h.to_ascii_lowercase()),
        claim_headers,
        space_delimited,
    })
}

/// The rule's keys: its inline `jwks`, or its `jwksUri` fetched within its `timeout`.
#[inline(never)]
fn rule_keys(rule: &JwtRule, clusters: &StringMap) -> Result<Keys> {
    let timeout_ms = match &rule.timeout {
        None => DEFAULT_TIMEOUT_MS,
        Some(t) => parse_duration_ms(t).ok_or_else(|| {
            ConfigError::new(
                "timeout",
                format!("{t:?} is not a duration like \"5s\" or \"1.5s\""),
            )
        })?,
    };
    Ok(match (&rule.jwks, &rule.jwks_uri) {
        (Some(_), Some(_)) => return err("", "set only one of jwks and jwksUri"),
        (Some(jwks), None) => Keys::Inline(
            KeySet::parse(jwks, JwksSource::Inline).map_err(|e| ConfigError::new("jwks", e))?,
        ),
        (None, Some(uri)) => Keys::Remote(
            remote_jwks(uri, timeout_ms, clusters).map_err(|e| ConfigError::new("jwksUri", e))?,
        ),
        (None, None) => {
            return err(
                "",
                "jwks or jwksUri is required (meshguard does not resolve keys through OpenID \
                discovery)",
            )
        }
    })
}

/// Where the rule's token is looked for: `fromHeaders`, `fromParams`, `fromCookies`, or
/// Istio's default (`Authorization: Bearer` and `access_token`).
#[inline(never)]
fn token_locations(rule: &JwtRule) -> Result<Vec<Location>> {
    let mut locations = Vec::new();
    for (i, h) in rule.from_headers.iter().flatten().enumerate() {
        if h.name.is_empty() {
            return err(
                ConfigPath::root()
                    .field("fromHeaders")
                    .index(i)
                    .field("name"),
                "must not be empty",
            );
        }
        locations.push(Location::Header {
            name: h.name.to_ascii_lowercase(),
            prefix: h.prefix.clone().unwrap_or_default(),
        });
    }
    locations.extend(
        rule.from_params
            .iter()
            .flatten()
            .cloned()
            .map(Location::Param),
    );
    locations.extend(
        rule.from_cookies
            .iter()
            .flatten()
            .cloned()
            .map(Location::Cookie),
    );
    if locations.is_empty() {
        locations.push(Location::Header {
            name: "authorization".to_string(),
            prefix: "Bearer ".to_string(),
        });
        locations.push(Location::Param("access_token".to_string()));
    }
    Ok(locations)
}

/// `outputClaimToHeaders`: each header's lower-case name and its claim path.
#[inline(never)]
fn claim_headers(rule: &JwtRule) -> Result<Vec<(String, Vec<String>)>> {
    let mut claim_headers = Vec::new();
    for (i, c) in rule.output_claim_to_headers.iter().flatten().enumerate() {
        let p = || ConfigPath::root().field("outputClaimToHeaders").index(i);
        check_header_name(&c.header).map_err(|e| e.within(p().field("header")))?;
        if c.claim.is_empty() {
            return err(p().field("claim"), "must not be empty");
        }
        claim_headers.push((
            c.header.to_ascii_lowercase(),
            c.claim.split('.').map(str::to_string).collect(),
        ));
    }
    Ok(claim_headers)
}

/// Istio's header-name pattern for output headers: `^[-_A-Za-z0-9]+$`. Errors are relative to
/// the name's field.
fn check_header_name(name: &str) -> Result<()> {
    if !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        Ok(())
    } else {
        err(
            "",
            format!("{name:?} is not a valid header name (^[-_A-Za-z0-9]+$)"),
        )
    }
}

/// Protobuf JSON duration: `"5s"`, `"1.5s"`, `"0.250s"`.
fn parse_duration_ms(text: &str) -> Option<u64> {
    let secs = text.strip_suffix('s')?;
    let (whole, frac) = secs.split_once('.').unwrap_or((secs, ""));
    if whole.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let whole: u64 = whole.parse().ok()?;
    let millis: u64 = format!("{frac:0<3}").get(..3)?.parse().ok()?;
    whole.checked_mul(1000)?.checked_add(millis)
}

/// Splits `http(s)://host[:port]/path` and names the Envoy cluster Istio would use for it:
/// `outbound|<port>||<host>`, unless `clusters` maps the URI to another cluster.
pub fn remote_jwks(
    uri: &str,
    timeout_ms: u64,
    clusters: &StringMap,
) -> std::result::Result<RemoteJwks, String> {
    let (rest, default_port) = if let Some(r) = uri.strip_prefix("https://") {
        (r, 443)
    } else if let Some(r) = uri.strip_prefix("http://") {
        (r, 80)
    } else {
        return Err(format!("{uri:?} must start with http:// or https://"));
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (rest.get(..i).unwrap_or(rest), rest.get(i..).unwrap_or("/")),
        None => (rest, "/"),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => {
            let port: u16 = p.parse().map_err(|_| format!("bad port in {uri:?}"))?;
            (h, port)
        }
        _ => (authority, default_port),
    };
    if host.is_empty() {
        return Err(format!("no host in {uri:?}"));
    }
    let cluster = clusters
        .get(uri)
        .map(str::to_string)
        .unwrap_or_else(|| format!("outbound|{port}||{host}"));
    Ok(RemoteJwks {
        uri: uri.to_string(),
        cluster,
        authority: authority.to_string(),
        path: path.to_string(),
        timeout_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwks_uri_names_istio_outbound_cluster() {
        let none = StringMap::new();
        let r = remote_jwks(
            "https://kc.example.com/realms/demo/protocol/openid-connect/certs",
            5000,
            &none,
        )
        .unwrap();
        assert_eq!(r.cluster, "outbound|443||kc.example.com");
        assert_eq!(r.path, "/realms/demo/protocol/openid-connect/certs");
        assert_eq!(r.authority, "kc.example.com");
        let r = remote_jwks("http://keycloak.iam:8080/certs", 5000, &none).unwrap();
        assert_eq!(r.cluster, "outbound|8080||keycloak.iam");
        let map: StringMap = [(
            "http://keycloak.iam:8080/certs".to_string(),
            "jwks".to_string(),
        )]
        .into_iter()
        .collect();
        assert_eq!(
            remote_jwks("http://keycloak.iam:8080/certs", 5000, &map)
                .unwrap()
                .cluster,
            "jwks"
        );
        assert!(remote_jwks("ftp://x/y", 5000, &none).is_err());
    }

    #[test]
    fn durations_follow_protobuf_json() {
        assert_eq!(parse_duration_ms("5s"), Some(5000));
        assert_eq!(parse_duration_ms("1.5s"), Some(1500));
        assert_eq!(parse_duration_ms("0.250s"), Some(250));
        assert_eq!(parse_duration_ms("5"), None);
        assert_eq!(parse_duration_ms("-1s"), None);
    }
}
