//! Istio's WasmPlugin CRD applied to a manifest as the Kubernetes API server applies it with
//! strict field validation (`kubectl apply --validate=strict`, the default since 1.27): the
//! structural OpenAPI v3 schema (types, enums, lengths, patterns, bounds, required fields, list
//! map keys; an unknown field is an error unless the schema preserves unknown fields) and the
//! CEL rules (`x-kubernetes-validations`) the vendored CRD carries, evaluated here in Rust.
//!
//! The schema is the one in `wasmplugin/crd/wasmplugin-crd.gen.yaml`, vendored verbatim from
//! istio/istio (its header names the commit). A CEL rule this module does not know is reported
//! as an error, so a newer CRD with new rules fails the tests instead of passing unchecked.

use regex::Regex;
use serde_json::{Map, Value};

/// The vendored CRD document (header comment + the upstream YAML).
pub const CRD_YAML: &str = include_str!("../../wasmplugin/crd/wasmplugin-crd.gen.yaml");

/// `metadata` fields of a Kubernetes ObjectMeta (the API server validates them itself).
const OBJECT_META_FIELDS: &[&str] = &[
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
];

/// The CEL rules of the vendored CRD, by their whitespace-normalized text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CelRule {
    NoWildcardInValue,
    NoWildcardInKeys,
    NoEmptyKey,
    EmptyNamespace,
    UrlScheme,
    ValueOnlyWhenInline,
    OneTargeting,
}

/// Every rule text meshguard evaluates, and which rule it is.
pub const KNOWN_RULES: &[(&str, CelRule)] = &[
    ("!self.contains(\"*\")", CelRule::NoWildcardInValue),
    (
        "self.all(key, !key.contains(\"*\"))",
        CelRule::NoWildcardInKeys,
    ),
    ("self.all(key, key.size() != 0)", CelRule::NoEmptyKey),
    ("self.size() == 0", CelRule::EmptyNamespace),
    (
        "isURL(self) ? (url(self).getScheme() in [\"\", \"http\", \"https\", \"oci\", \"file\"]) \
        : (isURL(\"http://\" + self) && url(\"http://\" + self).getScheme() in [\"\", \"http\", \
        \"https\", \"oci\", \"file\"])",
        CelRule::UrlScheme,
    ),
    (
        "(has(self.valueFrom) ? self.valueFrom : \"\") != \"HOST\" || !has(self.value)",
        CelRule::ValueOnlyWhenInline,
    ),
    (
        "(has(self.selector) ? 1 : 0) + (has(self.targetRef) ? 1 : 0) + (has(self.targetRefs) \
        ? 1 : 0) <= 1",
        CelRule::OneTargeting,
    ),
];

/// The CRD's `openAPIV3Schema` for WasmPlugin v1alpha1.
pub fn wasmplugin_schema() -> Result<Value, String> {
    let crd: Value = serde_saphyr::from_str(CRD_YAML)
        .map_err(|e| format!("vendored WasmPlugin CRD: not valid YAML: {e}"))?;
    crd.pointer("/spec/versions")
        .and_then(Value::as_array)
        .and_then(|versions| {
            versions
                .iter()
                .find(|v| v.get("name").and_then(Value::as_str) == Some("v1alpha1"))
        })
        .and_then(|v| v.pointer("/schema/openAPIV3Schema"))
        .cloned()
        .ok_or_else(|| "vendored WasmPlugin CRD: no v1alpha1 openAPIV3Schema".to_string())
}

/// Every CEL rule text in a schema, whitespace-normalized.
#[cfg(test)]
fn rules_in(schema: &Value, out: &mut Vec<String>) {
    match schema {
        Value::Object(map) => {
            for (key, value) in map {
                if key == "x-kubernetes-validations" {
                    for rule in value.as_array().into_iter().flatten() {
                        if let Some(text) = rule.get("rule").and_then(Value::as_str) {
                            out.push(normalize(text));
                        }
                    }
                } else {
                    rules_in(value, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| rules_in(v, out)),
        _ => {}
    }
}

fn normalize(rule: &str) -> String {
    rule.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn known_rule(text: &str) -> Option<CelRule> {
    let text = normalize(text);
    KNOWN_RULES
        .iter()
        .find(|(known, _)| normalize(known) == text)
        .map(|(_, rule)| *rule)
}

/// All errors of one WasmPlugin document against the schema, as `path: message`.
pub fn validate_wasmplugin(doc: &Value, schema: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    let Some(object) = doc.as_object() else {
        errors.push("<root>: must be of type object".to_string());
        return errors;
    };
    if let Some(api) = object.get("apiVersion") {
        if api.as_str() != Some("extensions.istio.io/v1alpha1") {
            errors.push(format!(
                "apiVersion: Unsupported value: {api}: the CRD serves \
                \"extensions.istio.io/v1alpha1\""
            ));
        }
    }
    if let Some(meta) = object.get("metadata") {
        metadata(meta, &mut errors);
    }
    if !object.contains_key("metadata") {
        errors.push("metadata.name: Required value".to_string());
    }
    let mut body = object.clone();
    for key in ["apiVersion", "kind", "metadata"] {
        body.remove(key);
    }
    walk(&Value::Object(body), schema, "", &mut errors);
    errors
}

fn metadata(value: &Value, errors: &mut Vec<String>) {
    let Some(meta) = value.as_object() else {
        errors.push("metadata: Invalid value: must be of type object".to_string());
        return;
    };
    for key in meta.keys() {
        if !OBJECT_META_FIELDS.contains(&key.as_str()) {
            errors.push(format!("unknown field \"metadata.{key}\""));
        }
    }
    match meta.get("name").and_then(Value::as_str) {
        Some(name) if is_dns_subdomain(name) => {}
        Some(name) => errors.push(format!(
            "metadata.name: Invalid value: \"{name}\": a lowercase RFC 1123 subdomain must \
            consist of lower case alphanumeric characters, '-' or '.', and must start and end \
            with an alphanumeric character"
        )),
        None if meta.contains_key("generateName") => {}
        None => errors.push("metadata.name: Required value".to_string()),
    }
    for field in ["labels", "annotations"] {
        if let Some(map) = meta.get(field) {
            let all_strings = map
                .as_object()
                .is_some_and(|m| m.values().all(Value::is_string));
            if !all_strings {
                errors.push(format!(
                    "metadata.{field}: Invalid value: must be a map of strings"
                ));
            }
        }
    }
}

fn is_dns_subdomain(name: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    !name.is_empty()
        && name.len() <= 253
        && name.chars().all(|c| alnum(c) || c == '-' || c == '.')
        && name.starts_with(alnum)
        && name.ends_with(alnum)
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn shown(path: &str) -> &str {
    if path.is_empty() {
        "<root>"
    } else {
        path
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_matches(want: &str, value: &Value) -> bool {
    match want {
        "number" => value.is_number(),
        other => type_name(value) == other,
    }
}

fn flag(schema: &Value, key: &str) -> bool {
    schema.get(key).and_then(Value::as_bool) == Some(true)
}

fn walk(value: &Value, schema: &Value, path: &str, errors: &mut Vec<String>) {
    let at = shown(path);
    if value.is_null() {
        if !flag(schema, "nullable") {
            let want = schema
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("a value");
            errors.push(format!("{at}: Invalid value: null: must be of type {want}"));
        }
        return;
    }
    if flag(schema, "x-kubernetes-int-or-string") {
        if !(value.is_string() || type_name(value) == "integer") {
            errors.push(format!(
                "{at}: Invalid value: must be an integer or a string, got {}",
                type_name(value)
            ));
        }
        return;
    }
    if let Some(want) = schema.get("type").and_then(Value::as_str) {
        if !type_matches(want, value) {
            errors.push(format!(
                "{at}: Invalid value: \"{}\": must be of type {want}",
                type_name(value)
            ));
            return;
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
        if !allowed.contains(value) {
            let list: Vec<String> = allowed.iter().map(Value::to_string).collect();
            errors.push(format!(
                "{at}: Unsupported value: {value}: supported values: {}",
                list.join(", ")
            ));
        }
    }
    match value {
        Value::String(s) => string(s, schema, at, errors),
        Value::Number(n) => number(n.as_f64().unwrap_or(f64::NAN), schema, at, errors),
        Value::Array(items) => array(items, schema, path, errors),
        Value::Object(map) => object(map, schema, path, errors),
        Value::Null | Value::Bool(_) => {}
    }
    for rule in schema
        .get("x-kubernetes-validations")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let text = rule.get("rule").and_then(Value::as_str).unwrap_or("");
        let message = rule
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("failed rule");
        match known_rule(text) {
            Some(known) => {
                if !cel_holds(known, value) {
                    errors.push(format!("{at}: Invalid value: {message}"));
                }
            }
            None => errors.push(format!(
                "{at}: the CRD's CEL rule `{}` is not evaluated by meshguard lint",
                normalize(text)
            )),
        }
    }
}

fn string(s: &str, schema: &Value, at: &str, errors: &mut Vec<String>) {
    let chars = s.chars().count() as u64;
    if let Some(min) = schema.get("minLength").and_then(Value::as_u64) {
        if chars < min {
            errors.push(format!(
                "{at}: Invalid value: \"{s}\": should be at least {min} chars long"
            ));
        }
    }
    if let Some(max) = schema.get("maxLength").and_then(Value::as_u64) {
        if chars > max {
            errors.push(format!("{at}: Too long: may not be more than {max} bytes"));
        }
    }
    if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
        match Regex::new(pattern) {
            Ok(re) if re.is_match(s) => {}
            Ok(_) => errors.push(format!(
                "{at}: Invalid value: \"{s}\": should match '{pattern}'"
            )),
            Err(e) => errors.push(format!("{at}: the CRD's pattern does not compile: {e}")),
        }
    }
}

fn number(n: f64, schema: &Value, at: &str, errors: &mut Vec<String>) {
    if let Some(min) = schema.get("minimum").and_then(Value::as_f64) {
        if n < min {
            errors.push(format!(
                "{at}: Invalid value: {n}: should be greater than or equal to {min}"
            ));
        }
    }
    if let Some(max) = schema.get("maximum").and_then(Value::as_f64) {
        if n > max {
            errors.push(format!(
                "{at}: Invalid value: {n}: should be less than or equal to {max}"
            ));
        }
    }
    if schema.get("format").and_then(Value::as_str) == Some("int32")
        && (n < f64::from(i32::MIN) || n > f64::from(i32::MAX))
    {
        errors.push(format!("{at}: Invalid value: {n}: must fit in int32"));
    }
}

fn array(items: &[Value], schema: &Value, path: &str, errors: &mut Vec<String>) {
    let at = shown(path);
    if let Some(max) = schema.get("maxItems").and_then(Value::as_u64) {
        if items.len() as u64 > max {
            errors.push(format!(
                "{at}: Too many: {}: must have at most {max} items",
                items.len()
            ));
        }
    }
    if let Some(item_schema) = schema.get("items") {
        for (i, item) in items.iter().enumerate() {
            walk(item, item_schema, &format!("{path}[{i}]"), errors);
        }
    }
    if schema.get("x-kubernetes-list-type").and_then(Value::as_str) == Some("map") {
        let keys: Vec<&str> = schema
            .get("x-kubernetes-list-map-keys")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let mut seen: Vec<Vec<Option<&Value>>> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let key: Vec<Option<&Value>> = keys.iter().map(|k| item.get(*k)).collect();
            if seen.contains(&key) {
                errors.push(format!(
                    "{path}[{i}]: Duplicate value: {}",
                    key.iter()
                        .map(|v| v.map_or("null".to_string(), Value::to_string))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            } else {
                seen.push(key);
            }
        }
    }
}

fn object(map: &Map<String, Value>, schema: &Value, path: &str, errors: &mut Vec<String>) {
    let at = shown(path);
    if let Some(max) = schema.get("maxProperties").and_then(Value::as_u64) {
        if map.len() as u64 > max {
            errors.push(format!(
                "{at}: Too many: {}: must have at most {max} items",
                map.len()
            ));
        }
    }
    for required in schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if !map.contains_key(required) {
            errors.push(format!("{}: Required value", join(path, required)));
        }
    }
    let properties = schema.get("properties").and_then(Value::as_object);
    let additional = schema.get("additionalProperties");
    let preserve = flag(schema, "x-kubernetes-preserve-unknown-fields");
    for (key, value) in map {
        let child = join(path, key);
        if let Some(s) = properties.and_then(|p| p.get(key)) {
            walk(value, s, &child, errors);
        } else if let Some(s) = additional.filter(|a| a.is_object()) {
            walk(value, s, &child, errors);
        } else if !preserve {
            errors.push(format!("unknown field \"{child}\""));
        }
    }
}

fn cel_holds(rule: CelRule, value: &Value) -> bool {
    match rule {
        CelRule::NoWildcardInValue => value.as_str().is_none_or(|s| !s.contains('*')),
        CelRule::NoWildcardInKeys => value
            .as_object()
            .is_none_or(|m| m.keys().all(|k| !k.contains('*'))),
        CelRule::NoEmptyKey => value
            .as_object()
            .is_none_or(|m| m.keys().all(|k| !k.is_empty())),
        CelRule::EmptyNamespace => value.as_str().is_none_or(str::is_empty),
        CelRule::UrlScheme => value.as_str().is_none_or(url_scheme_allowed),
        CelRule::ValueOnlyWhenInline => {
            value.get("valueFrom").and_then(Value::as_str) != Some("HOST")
                || value.get("value").is_none()
        }
        CelRule::OneTargeting => {
            ["selector", "targetRef", "targetRefs"]
                .iter()
                .filter(|k| value.get(**k).is_some())
                .count()
                <= 1
        }
    }
}

/// `isURL(self) ? scheme in [...] : isURL("http://" + self) && ...`: a string with an RFC 3986
/// scheme (`letter *(letter / digit / + - .) ":"`) is a URL with that scheme; anything else is
/// read as `http://` + the string.
fn url_scheme_allowed(url: &str) -> bool {
    let scheme = url.split_once(':').map(|(s, _)| s).filter(|s| {
        s.starts_with(|c: char| c.is_ascii_alphabetic())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    });
    match scheme {
        // `host:port/path` has no `//` after the colon: Go's url parser reads it as
        // `http://host:port/path` once the CEL rule prefixes it.
        Some(s) if url[s.len()..].starts_with("://") || !looks_like_port(url, s) => {
            matches!(
                s.to_ascii_lowercase().as_str(),
                "http" | "https" | "oci" | "file"
            )
        }
        _ => true,
    }
}

fn looks_like_port(url: &str, scheme: &str) -> bool {
    url[scheme.len() + 1..]
        .split(['/', '?', '#'])
        .next()
        .is_some_and(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    fn base() -> Value {
        json!({
            "apiVersion": "extensions.istio.io/v1alpha1",
            "kind": "WasmPlugin",
            "metadata": {"name": "m", "namespace": "default"},
            "spec": {
                "selector": {"matchLabels": {"app": "x"}},
                "url": "oci://ghcr.io/meshguard/meshguard:0.1.0",
                "sha256": "a".repeat(64),
                "phase": "AUTHZ",
                "priority": 100,
                "failStrategy": "FAIL_CLOSE",
                "match": [{"mode": "SERVER", "ports": [{"number": 8080}]}],
                "vmConfig": {"env": [
                    {"name": "POD", "valueFrom": "HOST"},
                    {"name": "A", "value": "b"},
                ]},
                "type": "HTTP",
                "imagePullPolicy": "IfNotPresent",
                "pluginConfig": {"anything": {"goes": [1, 2]}},
            }
        })
    }

    fn errors_with(field: &str, value: Value) -> Vec<String> {
        let mut doc = base();
        if let Some(spec) = doc.get_mut("spec").and_then(Value::as_object_mut) {
            if value.is_null() {
                spec.remove(field);
            } else {
                spec.insert(field.to_string(), value);
            }
        }
        validate_wasmplugin(&doc, &wasmplugin_schema().unwrap())
    }

    fn rejects(field: &str, value: Value, want: &str) {
        let errors = errors_with(field, value.clone());
        assert!(
            errors.iter().any(|e| e.contains(want)),
            "{field}={value}: {errors:?}"
        );
    }

    #[test]
    fn vendored_crd_names_its_source_commit_and_is_the_wasmplugin_crd() {
        assert!(CRD_YAML.contains("istio/istio"));
        assert!(CRD_YAML.contains("manifests/charts/base/files/crd-all.gen.yaml"));
        assert!(CRD_YAML.lines().take(6).any(|l| l
            .split_whitespace()
            .any(|w| w.len() == 40 && w.chars().all(|c| c.is_ascii_hexdigit()))));
        let crd: Value = serde_saphyr::from_str(CRD_YAML).unwrap();
        assert_eq!(crd["metadata"]["name"], "wasmplugins.extensions.istio.io");
        assert_eq!(crd["spec"]["names"]["kind"], "WasmPlugin");
    }

    #[test]
    fn every_cel_rule_of_the_vendored_crd_is_evaluated() {
        let mut rules = Vec::new();
        rules_in(&wasmplugin_schema().unwrap(), &mut rules);
        assert!(rules.len() >= 7, "{rules:?}");
        for rule in &rules {
            assert!(known_rule(rule).is_some(), "unknown CEL rule {rule}");
        }
        for (text, _) in KNOWN_RULES {
            assert!(rules.contains(&normalize(text)), "stale rule {text}");
        }
    }

    #[test]
    fn a_full_manifest_is_accepted() {
        assert_eq!(errors_with("priority", Value::Null), Vec::<String>::new());
        let mut doc = base();
        doc["spec"]["priority"] = Value::Null;
        assert_eq!(
            validate_wasmplugin(&doc, &wasmplugin_schema().unwrap()),
            Vec::<String>::new(),
            "priority is nullable"
        );
        assert!(errors_with("url", json!("file:///opt/meshguard.wasm")).is_empty());
        assert!(errors_with("url", json!("ghcr.io/meshguard/meshguard:0.1.0")).is_empty());
        assert!(errors_with("url", json!("localhost:5000/meshguard")).is_empty());
    }

    #[test]
    fn the_issue_examples_are_rejected_as_the_api_server_does() {
        rejects(
            "failStratgy",
            json!("FAIL_CLOSE"),
            "unknown field \"spec.failStratgy\"",
        );
        rejects("phase", json!("authz"), "spec.phase: Unsupported value");
        rejects(
            "match",
            json!([{"ports": [9080]}]),
            "spec.match[0].ports[0]: Invalid value: \"integer\": must be of type object",
        );
        rejects(
            "selector",
            json!({"app": "details"}),
            "unknown field \"spec.selector.app\"",
        );
    }

    #[test]
    fn every_schema_keyword_is_enforced() {
        rejects("url", Value::Null, "spec.url: Required value");
        rejects("url", json!(""), "should be at least 1 chars");
        rejects("sha256", json!("A".repeat(64)), "should match");
        rejects("failStrategy", json!("FAIL_CLOSED"), "Unsupported value");
        rejects(
            "match",
            json!([{"ports": [{"number": 0}]}]),
            "greater than or equal to 1",
        );
        rejects(
            "match",
            json!([{"ports": [{"number": 65536}]}]),
            "less than or equal to 65535",
        );
        rejects(
            "match",
            json!([{"ports": [{"number": 80}, {"number": 80}]}]),
            "spec.match[0].ports[1]: Duplicate value: 80",
        );
        rejects("priority", json!("high"), "must be of type integer");
        rejects("priority", json!(4_294_967_296_u64), "int32");
        rejects("pluginConfig", json!([1]), "must be of type object");
        rejects(
            "vmConfig",
            json!({"env": [{"value": "x"}]}),
            "spec.vmConfig.env[0].name: Required value",
        );
        rejects(
            "targetRefs",
            json!([{"kind": "Service", "name": "s"}]),
            "only one of targetRefs or selector",
        );
        rejects(
            "url",
            json!("ftp://example.com/x.wasm"),
            "url must have schema",
        );
        rejects(
            "vmConfig",
            json!({"env": [{"name": "x", "valueFrom": "HOST", "value": "y"}]}),
            "valueFrom is INLINE",
        );
        rejects(
            "selector",
            json!({"matchLabels": {"app": "*"}}),
            "wildcard not allowed in label value",
        );
        rejects(
            "targetRef",
            json!({"kind": "Service", "name": "s", "namespace": "other"}),
            "cross namespace",
        );
        rejects(
            "targetRefs",
            json!((0..17)
                .map(|i| json!({"kind": "Service", "name": format!("s{i}")}))
                .collect::<Vec<_>>()),
            "at most 16 items",
        );
    }

    #[test]
    fn every_error_is_reported_not_only_the_first() {
        let mut doc = base();
        doc["spec"]["failStratgy"] = json!("FAIL_CLOSE");
        doc["spec"]["phase"] = json!("authz");
        doc["spec"]["match"] = json!([{"ports": [9080]}]);
        doc["metadata"]["nam"] = json!("x");
        let errors = validate_wasmplugin(&doc, &wasmplugin_schema().unwrap());
        assert_eq!(errors.len(), 4, "{errors:?}");
    }
}
