//! Istio `AuthorizationPolicy` (`security.istio.io/v1` and `v1beta1`): the resource schema,
//! istiod's validation, and the translation of each rule into a [`Predicate`].
//!
//! The translation follows istiod's `pilot/pkg/security/authz/model` (`New`, `generator.go`)
//! for an HTTP filter chain: a rule is `(any from) AND (any to) AND (every when)`, each
//! source/operation is the AND of its fields, a field is `(any value) AND NOT (any notValue)`.
//!
//! Deliberate differences from istiod, all in the fail-closed direction:
//! * a value or key istiod would skip (unknown `when` key, bad CIDR or port, malformed template)
//!   is a load error here instead of a silently dropped or widened rule;
//! * an `istio.io/dry-run` annotation that is not a Go boolean is a load error (istiod logs
//!   and enforces the policy);
//! * `CUSTOM` is rejected: meshguard never calls out of process.
//!
//! meshguard's own annotations (Istio ignores them, so the resource stays valid Istio):
//! `meshguard.io/deny-status`, `-body`, `-headers` on a DENY policy ([`DenyResponse`]) and
//! `meshguard.io/case-insensitive-paths: "true"|"false"`. Any other `meshguard.io/` annotation
//! is refused (a typo would otherwise silently change nothing).

use crate::config_json::string_map::StringMap;

use crate::authorization::deny_response::{
    DenyResponse, DENY_BODY_ANNOTATION, DENY_HEADERS_ANNOTATION, DENY_STATUS_ANNOTATION,
};
use crate::authorization::rule_explanation::RulePart;
use crate::authorization::rule_id::RuleId;
use crate::config_json::reader::{FromJson, Json};
use crate::error::ConfigError;
use crate::error::{config_err as err, ConfigPath, ConfigResult as Result};
use crate::matchers::attribute_vocabulary::{claim, claim_path, port, request_principal};
use crate::matchers::cidr::Cidr;
use crate::matchers::identity_match::{IdentityMatch, TrustBundle};
use crate::matchers::path_match::PathMatch;
use crate::matchers::predicate::{header_name, Predicate};
use crate::matchers::string_match::{Star, StringMatch, ValueMatch};
use crate::targeting::attachment::{check_attachment, TargetRef, WorkloadSelector};

/// `spec` of an AuthorizationPolicy, field for field as in `authorization_policy.proto`.
#[derive(Debug)]
pub struct AuthorizationPolicySpec {
    pub selector: Option<WorkloadSelector>,
    pub target_ref: Option<TargetRef>,
    pub target_refs: Option<Vec<TargetRef>>,
    pub action: Option<Action>,
    pub provider: Option<Provider>,
    pub rules: Option<Vec<Option<Rule>>>,
}

impl FromJson for AuthorizationPolicySpec {
    fn from_json(value: &Json<'_>) -> Result<AuthorizationPolicySpec> {
        let f = value.fields(
            "AuthorizationPolicySpec",
            &[
                "selector",
                "targetRef",
                "targetRefs",
                "action",
                "provider",
                "rules",
            ],
        )?;
        Ok(AuthorizationPolicySpec {
            selector: f.optional("selector", WorkloadSelector::from_json)?,
            target_ref: f.optional("targetRef", TargetRef::from_json)?,
            target_refs: f.optional("targetRefs", |v| v.list(TargetRef::from_json))?,
            action: f.optional("action", Action::from_json)?,
            provider: f.optional("provider", Provider::from_json)?,
            rules: f.optional("rules", |v| v.list(|r| r.nullable(Rule::from_json)))?,
        })
    }
}

#[derive(Debug)]
pub struct Provider {
    pub name: Option<String>,
}

impl FromJson for Provider {
    fn from_json(value: &Json<'_>) -> Result<Provider> {
        let f = value.fields("Provider", &["name"])?;
        Ok(Provider {
            name: f.optional("name", Json::string)?,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Allow,
    Deny,
    Audit,
    Custom,
}

impl FromJson for Action {
    fn from_json(value: &Json<'_>) -> Result<Action> {
        value.variant(&[
            ("ALLOW", Action::Allow),
            ("DENY", Action::Deny),
            ("AUDIT", Action::Audit),
            ("CUSTOM", Action::Custom),
        ])
    }
}

#[derive(Debug)]
pub struct Rule {
    pub from: Option<Vec<From>>,
    pub to: Option<Vec<To>>,
    pub when: Option<Vec<Condition>>,
}

impl FromJson for Rule {
    fn from_json(value: &Json<'_>) -> Result<Rule> {
        let f = value.fields("Rule", &["from", "to", "when"])?;
        Ok(Rule {
            from: f.optional("from", |v| v.list(From::from_json))?,
            to: f.optional("to", |v| v.list(To::from_json))?,
            when: f.optional("when", |v| v.list(Condition::from_json))?,
        })
    }
}

#[derive(Debug)]
pub struct From {
    pub source: Option<Source>,
}

impl FromJson for From {
    fn from_json(value: &Json<'_>) -> Result<From> {
        let f = value.fields("From", &["source"])?;
        Ok(From {
            source: f.optional("source", Source::from_json)?,
        })
    }
}

#[derive(Debug)]
pub struct To {
    pub operation: Option<Operation>,
}

impl FromJson for To {
    fn from_json(value: &Json<'_>) -> Result<To> {
        let f = value.fields("To", &["operation"])?;
        Ok(To {
            operation: f.optional("operation", Operation::from_json)?,
        })
    }
}

#[derive(Debug, Default)]
pub struct Source {
    pub principals: Option<Vec<String>>,
    pub not_principals: Option<Vec<String>>,
    pub request_principals: Option<Vec<String>>,
    pub not_request_principals: Option<Vec<String>>,
    pub namespaces: Option<Vec<String>>,
    pub not_namespaces: Option<Vec<String>>,
    pub service_accounts: Option<Vec<String>>,
    pub not_service_accounts: Option<Vec<String>>,
    pub ip_blocks: Option<Vec<String>>,
    pub not_ip_blocks: Option<Vec<String>>,
    pub remote_ip_blocks: Option<Vec<String>>,
    pub not_remote_ip_blocks: Option<Vec<String>>,
    pub trust_domains: Option<Vec<String>>,
    pub not_trust_domains: Option<Vec<String>>,
}

/// `Source`'s fields, in declaration order.
const SOURCE_FIELDS: [&str; 14] = [
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
];

impl FromJson for Source {
    fn from_json(value: &Json<'_>) -> Result<Source> {
        let f = value.fields("Source", &SOURCE_FIELDS)?;
        // Filled field by field in a loop: far less code than one expression per field.
        let mut s = Source::default();
        let lists = [
            &mut s.principals,
            &mut s.not_principals,
            &mut s.request_principals,
            &mut s.not_request_principals,
            &mut s.namespaces,
            &mut s.not_namespaces,
            &mut s.service_accounts,
            &mut s.not_service_accounts,
            &mut s.ip_blocks,
            &mut s.not_ip_blocks,
            &mut s.remote_ip_blocks,
            &mut s.not_remote_ip_blocks,
            &mut s.trust_domains,
            &mut s.not_trust_domains,
        ];
        for (name, list) in SOURCE_FIELDS.iter().zip(lists) {
            *list = f.optional(name, Json::strings)?;
        }
        Ok(s)
    }
}

#[derive(Debug, Default)]
pub struct Operation {
    pub hosts: Option<Vec<String>>,
    pub not_hosts: Option<Vec<String>>,
    pub ports: Option<Vec<String>>,
    pub not_ports: Option<Vec<String>>,
    pub methods: Option<Vec<String>>,
    pub not_methods: Option<Vec<String>>,
    pub paths: Option<Vec<String>>,
    pub not_paths: Option<Vec<String>>,
}

/// `Operation`'s fields, in declaration order.
const OPERATION_FIELDS: [&str; 8] = [
    "hosts",
    "notHosts",
    "ports",
    "notPorts",
    "methods",
    "notMethods",
    "paths",
    "notPaths",
];

impl FromJson for Operation {
    fn from_json(value: &Json<'_>) -> Result<Operation> {
        let f = value.fields("Operation", &OPERATION_FIELDS)?;
        let mut o = Operation::default();
        let lists = [
            &mut o.hosts,
            &mut o.not_hosts,
            &mut o.ports,
            &mut o.not_ports,
            &mut o.methods,
            &mut o.not_methods,
            &mut o.paths,
            &mut o.not_paths,
        ];
        for (name, list) in OPERATION_FIELDS.iter().zip(lists) {
            *list = f.optional(name, Json::strings)?;
        }
        Ok(o)
    }
}

#[derive(Debug)]
pub struct Condition {
    pub key: String,
    pub values: Option<Vec<String>>,
    pub not_values: Option<Vec<String>>,
}

impl FromJson for Condition {
    fn from_json(value: &Json<'_>) -> Result<Condition> {
        let f = value.fields("Condition", &["key", "values", "notValues"])?;
        Ok(Condition {
            key: f.required("key", Json::string)?,
            values: f.optional("values", Json::strings)?,
            not_values: f.optional("notValues", Json::strings)?,
        })
    }
}

/// One translated rule with its Istio policy id `ns[NS]-policy[NAME]-rule[IDX]`.
#[derive(Debug, Clone)]
pub struct CompiledRule {
    pub id: RuleId,
    pub predicate: Predicate,
    /// Which part of the rule each conjunct of `predicate` came from (see
    /// [`crate::authorization::rule_explanation`]); empty when the rule is not itemized.
    pub parts: Box<[RulePart]>,
}

/// A validated, translated AuthorizationPolicy.
#[derive(Debug, Clone)]
pub struct CompiledPolicy {
    pub action: Action,
    pub dry_run: bool,
    pub selector: Option<StringMap>,
    /// Policies attached with `targetRef(s)` never apply to a sidecar.
    pub has_target_ref: bool,
    pub rules: Vec<CompiledRule>,
    /// The reply when a rule of this (DENY) policy decides (`meshguard.io/deny-*`).
    pub deny_response: Option<DenyResponse>,
}

/// Everything the translation needs besides the spec.
pub struct Context<'a> {
    pub name: &'a str,
    pub namespace: &'a str,
    pub annotations: &'a StringMap,
    pub trust: &'a TrustBundle,
}

const DRY_RUN_ANNOTATION: &str = "istio.io/dry-run";
const CASE_INSENSITIVE_PATHS_ANNOTATION: &str = "meshguard.io/case-insensitive-paths";
const MESHGUARD_ANNOTATIONS: [&str; 4] = [
    DENY_STATUS_ANNOTATION,
    DENY_BODY_ANNOTATION,
    DENY_HEADERS_ANNOTATION,
    CASE_INSENSITIVE_PATHS_ANNOTATION,
];
const MAX_SERVICE_ACCOUNTS: usize = 16;
const MAX_SERVICE_ACCOUNT_LEN: usize = 320;

/// Appends the leaf predicates for one `when` value; errors are relative to the value.
type LeafBuilder<'a> = Box<dyn Fn(&str, &mut Vec<Predicate>) -> Result<()> + 'a>;

/// A [`LeafBuilder`] for values that translate to exactly one predicate.
fn single<'a>(leaf: impl Fn(&str) -> Result<Predicate> + 'a) -> LeafBuilder<'a> {
    push_one(Box::new(leaf))
}

/// One `when` value to exactly one predicate.
type SingleLeaf<'a> = Box<dyn Fn(&str) -> Result<Predicate> + 'a>;

/// The pushing half of [`single`], not generic: one copy for the sixteen `when` keys.
fn push_one(leaf: SingleLeaf<'_>) -> LeafBuilder<'_> {
    Box::new(move |v, out| {
        out.push(leaf(v)?);
        Ok(())
    })
}

/// Validates and translates one AuthorizationPolicy spec. Errors are relative to the resource
/// (`spec.rules[0]...`, `metadata.annotations[...]`).
// Its parts are functions of their own, never inlined here: V8 compiles the whole module at load
// with its optimizing compiler, and the memory it leaves behind grows with the largest function
// (README, "What sets the memory at rest").
pub fn compile_authorization_policy(
    spec: AuthorizationPolicySpec,
    ctx: &Context<'_>,
) -> Result<CompiledPolicy> {
    let in_spec = || ConfigPath::root().field("spec");
    let annotations = read_annotations(ctx)?;
    let has_target_ref = check_attachment(
        spec.selector.is_some(),
        spec.target_ref.as_ref(),
        spec.target_refs.as_deref(),
    )
    .map_err(|e| e.within(in_spec()))?;
    let action = spec.action.unwrap_or(Action::Allow);
    if annotations.deny_response.is_some() && action != Action::Deny {
        return Err(ctx.named(ConfigError::new(
            ConfigPath::root().field("metadata").field("annotations"),
            "meshguard.io/deny-status, -body and -headers apply only to a DENY policy",
        )));
    }
    if action == Action::Custom {
        return err(
            in_spec().field("action"),
            "CUSTOM is not supported: meshguard decides locally and makes no ext_authz call",
        );
    }
    if spec.provider.is_some() {
        return err(
            in_spec().field("provider"),
            "provider may only be used with action CUSTOM",
        );
    }
    let raw_rules = spec.rules.unwrap_or_default();
    if action == Action::Deny && raw_rules.is_empty() {
        return err(
            in_spec().field("rules"),
            "a DENY policy without rules is meaningless",
        );
    }
    Ok(CompiledPolicy {
        action,
        dry_run: annotations.dry_run,
        selector: spec.selector.map(|s| s.match_labels),
        has_target_ref,
        rules: compile_rules(raw_rules, ctx, annotations.case_insensitive_paths)?,
        deny_response: annotations.deny_response,
    })
}

/// What a policy's annotations set.
struct Annotations {
    /// `istio.io/dry-run`.
    dry_run: bool,
    /// `meshguard.io/case-insensitive-paths`.
    case_insensitive_paths: bool,
    /// `meshguard.io/deny-*`.
    deny_response: Option<DenyResponse>,
}

impl Context<'_> {
    /// `e` with the policy's name in front of its reason.
    fn named(&self, e: ConfigError) -> ConfigError {
        ConfigError::new(
            e.path,
            format!("policy {}/{}: {}", self.namespace, self.name, e.reason),
        )
    }
}

/// The path of annotation `name`.
fn annotation_path(name: &str) -> ConfigPath {
    ConfigPath::root()
        .field("metadata")
        .field("annotations")
        .key(name)
}

/// Reads the policy's annotations: `istio.io/dry-run` and the `meshguard.io/` ones (an
/// unknown `meshguard.io/` annotation is an error).
#[inline(never)]
fn read_annotations(ctx: &Context<'_>) -> Result<Annotations> {
    let dry_run = match ctx.annotations.get(DRY_RUN_ANNOTATION) {
        None => false,
        Some(v) => parse_go_bool(v).ok_or_else(|| {
            ConfigError::new(
                annotation_path(DRY_RUN_ANNOTATION),
                format!("{v:?} is not a boolean (use \"true\" or \"false\")"),
            )
        })?,
    };
    if let Some(unknown) = ctx
        .annotations
        .keys()
        .find(|k| k.starts_with("meshguard.io/") && !MESHGUARD_ANNOTATIONS.contains(k))
    {
        // `join(", ")`, without the standard library's generic join in the module.
        let mut known = String::new();
        for (i, name) in MESHGUARD_ANNOTATIONS.iter().enumerate() {
            known.push_str(if i == 0 { "" } else { ", " });
            known.push_str(name);
        }
        return err(
            annotation_path(unknown),
            format!(
                "unknown meshguard annotation on policy {}/{} (known: {known})",
                ctx.namespace, ctx.name,
            ),
        );
    }
    let case_insensitive_paths = match ctx.annotations.get(CASE_INSENSITIVE_PATHS_ANNOTATION) {
        None => false,
        Some("true") => true,
        Some("false") => false,
        Some(v) => {
            return Err(ctx.named(ConfigError::new(
                annotation_path(CASE_INSENSITIVE_PATHS_ANNOTATION),
                format!("{v:?} is not \"true\" or \"false\""),
            )))
        }
    };
    let deny_response =
        DenyResponse::from_annotations(ctx.annotations).map_err(|e| ctx.named(e))?;
    Ok(Annotations {
        dry_run,
        case_insensitive_paths,
        deny_response,
    })
}

/// Translates the policy's rules, each with its rule id; errors are relative to the resource.
#[inline(never)]
fn compile_rules(
    raw_rules: Vec<Option<Rule>>,
    ctx: &Context<'_>,
    case_insensitive_paths: bool,
) -> Result<Vec<CompiledRule>> {
    let mut rules = Vec::with_capacity(raw_rules.len());
    for (i, rule) in raw_rules.into_iter().enumerate() {
        let rule_path = || ConfigPath::root().field("spec").field("rules").index(i);
        let Some(rule) = rule else {
            return err(rule_path(), "rule must not be null");
        };
        let (predicate, parts) =
            compile_rule(rule, ctx, case_insensitive_paths).map_err(|e| e.within(rule_path()))?;
        rules.push(CompiledRule {
            id: RuleId::authorization_policy(ctx.namespace, ctx.name, i),
            predicate,
            parts,
        });
    }
    Ok(rules)
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Translates one rule: the predicate and, for each of its conjuncts, the rule part it came
/// from. Errors are relative to the rule (formatted only on failure).
// Not inlined into `compile_rules`: V8 compiles the whole module at load with its optimizing
// compiler, and the memory it leaves behind grows with the largest function (README, "What sets
// the memory at rest").
#[inline(never)]
fn compile_rule(
    rule: Rule,
    ctx: &Context<'_>,
    case_insensitive_paths: bool,
) -> Result<(Predicate, Box<[RulePart]>)> {
    let when = rule.when.unwrap_or_default();
    let mut parts = Vec::with_capacity(2 + when.len());
    let mut labels = Vec::with_capacity(2 + when.len());
    if let Some(from) = rule.from {
        if from.is_empty() {
            return err("from", "must not be an empty list");
        }
        let mut sources = Vec::with_capacity(from.len());
        for (i, f) in from.into_iter().enumerate() {
            let p = || ConfigPath::root().field("from").index(i).field("source");
            let Some(source) = f.source else {
                return err(p(), "must not be null");
            };
            sources.push(compile_source(source, ctx).map_err(|e| e.within(p()))?);
        }
        parts.push(Predicate::or(sources));
        labels.push(RulePart::From);
    }
    if let Some(to) = rule.to {
        if to.is_empty() {
            return err("to", "must not be an empty list");
        }
        let mut operations = Vec::with_capacity(to.len());
        for (i, t) in to.into_iter().enumerate() {
            let p = || ConfigPath::root().field("to").index(i).field("operation");
            let Some(operation) = t.operation else {
                return err(p(), "must not be null");
            };
            operations.push(
                compile_operation(operation, case_insensitive_paths).map_err(|e| e.within(p()))?,
            );
        }
        parts.push(Predicate::or(operations));
        labels.push(RulePart::To);
    }
    for (i, condition) in when.into_iter().enumerate() {
        parts.push(
            compile_condition(condition, ctx)
                .map_err(|e| e.within(ConfigPath::root().field("when").index(i)))?,
        );
        labels.push(RulePart::When(u32::try_from(i).unwrap_or(u32::MAX)));
    }
    // Predicate::all drops the unconstrained parts; their labels go with them.
    let labels: Box<[RulePart]> = labels
        .into_iter()
        .zip(&parts)
        .filter(|(_, p)| !matches!(p, Predicate::Any))
        .map(|(label, _)| label)
        .collect();
    Ok((Predicate::all(parts), labels))
}

/// `(any value) AND NOT (any notValue)` for one field; `None` when the field is unset. `leaf`
/// appends the predicates for one value; errors are relative to the object holding the field.
// `leaf` is a trait object: one copy of this function for the eleven fields, not one each.
fn field(
    name: &'static str,
    not_name: &'static str,
    values: Option<Vec<String>>,
    not_values: Option<Vec<String>>,
    leaf: &dyn Fn(&str, &mut Vec<Predicate>) -> Result<()>,
) -> Result<Option<Predicate>> {
    let mut out = Vec::new();
    for (label, list, negate) in [(name, values, false), (not_name, not_values, true)] {
        let Some(list) = list else { continue };
        if list.is_empty() {
            continue;
        }
        let mut alternatives = Vec::with_capacity(list.len());
        for (i, value) in list.iter().enumerate() {
            let p = || ConfigPath::root().field(label).index(i);
            if value.is_empty() {
                return err(p(), "empty value is not allowed");
            }
            leaf(value, &mut alternatives).map_err(|e| e.within(p()))?;
        }
        let any = Predicate::or(alternatives);
        out.push(if negate {
            Predicate::Not(Box::new(any))
        } else {
            any
        });
    }
    Ok(match out.len() {
        0 => None,
        _ => Some(Predicate::all(out)),
    })
}

/// One field of a source or an operation for [`fields_of`]: its names (values, negated
/// values), its lists, and the builder of one value's predicates.
type FieldRow<'a> = (
    (&'static str, &'static str),
    (Option<Vec<String>>, Option<Vec<String>>),
    &'a dyn Fn(&str, &mut Vec<Predicate>) -> Result<()>,
);

/// The predicates of the set fields of `table`, in its order (see [`field`]).
#[inline(never)]
fn fields_of<const N: usize>(table: [FieldRow<'_>; N]) -> Result<Vec<Predicate>> {
    let mut out = Vec::new();
    for ((name, not_name), (values, not_values), leaf) in table {
        out.extend(field(name, not_name, values, not_values, leaf)?);
    }
    Ok(out)
}

/// Translates one `source`; errors are relative to it.
// Not inlined into `compile_rule`: V8 compiles the whole module at load with its optimizing
// compiler, whose memory grows with the largest function (README, "Module size and memory").
#[inline(never)]
fn compile_source(s: Source, ctx: &Context<'_>) -> Result<Predicate> {
    let sa_set = s.service_accounts.is_some() || s.not_service_accounts.is_some();
    let principal_set = s.principals.is_some()
        || s.not_principals.is_some()
        || s.namespaces.is_some()
        || s.not_namespaces.is_some();
    if sa_set && principal_set {
        return err(
            "",
            "serviceAccounts/notServiceAccounts cannot be combined with principals or namespaces",
        );
    }
    for (name, list) in [
        ("serviceAccounts", &s.service_accounts),
        ("notServiceAccounts", &s.not_service_accounts),
    ] {
        if let Some(list) = list {
            check_service_accounts(list).map_err(|e| e.within(name))?;
        }
    }
    for (name, list) in [
        ("trustDomains", &s.trust_domains),
        ("notTrustDomains", &s.not_trust_domains),
    ] {
        if let Some(list) = list {
            check_trust_domains(list).map_err(|e| e.within(name))?;
        }
    }
    let principal = |v: &str, out: &mut Vec<Predicate>| {
        principal_leaves(v, ctx.trust, out);
        Ok(())
    };
    let namespace = |v: &str, out: &mut Vec<Predicate>| {
        out.push(Predicate::Identity(IdentityMatch::namespace(v)));
        Ok(())
    };
    let service_account = |v: &str, out: &mut Vec<Predicate>| {
        out.push(Predicate::Identity(IdentityMatch::service_account(
            v,
            ctx.namespace,
        )));
        Ok(())
    };
    let trust_domain = |v: &str, out: &mut Vec<Predicate>| {
        trust_domain_leaves(v, ctx.trust, out);
        Ok(())
    };
    let request_principal = |v: &str, out: &mut Vec<Predicate>| {
        out.push(request_principal(v));
        Ok(())
    };
    let ip_block = |v: &str, out: &mut Vec<Predicate>| {
        out.push(Predicate::SourceIp(cidr(v)?));
        Ok(())
    };
    let remote_ip_block = |v: &str, out: &mut Vec<Predicate>| {
        out.push(Predicate::RemoteIp(cidr(v)?));
        Ok(())
    };
    // One table and one call of `field`, not seven inlined calls.
    let table: [FieldRow<'_>; 7] = [
        (
            ("principals", "notPrincipals"),
            (s.principals, s.not_principals),
            &principal,
        ),
        (
            ("namespaces", "notNamespaces"),
            (s.namespaces, s.not_namespaces),
            &namespace,
        ),
        (
            ("serviceAccounts", "notServiceAccounts"),
            (s.service_accounts, s.not_service_accounts),
            &service_account,
        ),
        (
            ("trustDomains", "notTrustDomains"),
            (s.trust_domains, s.not_trust_domains),
            &trust_domain,
        ),
        (
            ("requestPrincipals", "notRequestPrincipals"),
            (s.request_principals, s.not_request_principals),
            &request_principal,
        ),
        (
            ("ipBlocks", "notIpBlocks"),
            (s.ip_blocks, s.not_ip_blocks),
            &ip_block,
        ),
        (
            ("remoteIpBlocks", "notRemoteIpBlocks"),
            (s.remote_ip_blocks, s.not_remote_ip_blocks),
            &remote_ip_block,
        ),
    ];
    let fields = fields_of(table)?;
    if fields.is_empty() {
        return err("", "a source must set at least one field");
    }
    Ok(Predicate::all(fields))
}

/// Translates one `operation`; errors are relative to it.
// Not inlined into `compile_rule`: V8 compiles the whole module at load with its optimizing
// compiler, whose memory grows with the largest function (README, "Module size and memory").
#[inline(never)]
fn compile_operation(o: Operation, case_insensitive_paths: bool) -> Result<Predicate> {
    let fields = [
        field("hosts", "notHosts", o.hosts, o.not_hosts, &|v, out| {
            out.push(Predicate::Header(
                ":authority".into(),
                ValueMatch::new(StringMatch::parse(v, Star::Present), true),
            ));
            Ok(())
        })?,
        field("ports", "notPorts", o.ports, o.not_ports, &|v, out| {
            out.push(Predicate::DestinationPort(port(v)?));
            Ok(())
        })?,
        field(
            "methods",
            "notMethods",
            o.methods,
            o.not_methods,
            &|v, out| {
                out.push(Predicate::Header(
                    ":method".into(),
                    ValueMatch::parse(v, Star::Present),
                ));
                Ok(())
            },
        )?,
        field("paths", "notPaths", o.paths, o.not_paths, &|v, out| {
            out.push(Predicate::Path(
                PathMatch::parse(v)
                    .map(|m| {
                        if case_insensitive_paths {
                            m.ignoring_case()
                        } else {
                            m
                        }
                    })
                    .map_err(|e| ConfigError::new("", e))?,
            ));
            Ok(())
        })?,
    ];
    let fields: Vec<Predicate> = fields.into_iter().flatten().collect();
    if fields.is_empty() {
        return err("", "an operation must set at least one field");
    }
    Ok(Predicate::all(fields))
}

fn principal_leaves(value: &str, trust: &TrustBundle, out: &mut Vec<Predicate>) {
    out.extend(
        trust
            .expand_principal(value)
            .iter()
            .map(|p| Predicate::Identity(IdentityMatch::principal(p))),
    );
}

fn trust_domain_leaves(value: &str, trust: &TrustBundle, out: &mut Vec<Predicate>) {
    out.extend(
        trust
            .expand_trust_domain(value)
            .iter()
            .map(|td| Predicate::Identity(IdentityMatch::trust_domain(td))),
    );
}

fn cidr(value: &str) -> Result<Cidr> {
    Cidr::parse(value).map_err(|e| ConfigError::new("", e))
}

/// istiod `ValidateServiceAccounts`: at most 16, no wildcards, `sa` or `ns/sa`, <= 320 chars.
/// Errors are relative to the list (`[i]` for one value).
fn check_service_accounts(list: &[String]) -> Result<()> {
    if list.len() > MAX_SERVICE_ACCOUNTS {
        return err(
            "",
            format!("at most {MAX_SERVICE_ACCOUNTS} service accounts are allowed"),
        );
    }
    for (i, v) in list.iter().enumerate() {
        let p = || ConfigPath::root().index(i);
        if v.contains('*') {
            return err(p(), "wildcards are not allowed in service accounts");
        }
        if v.len() > MAX_SERVICE_ACCOUNT_LEN {
            return err(
                p(),
                format!("longer than {MAX_SERVICE_ACCOUNT_LEN} characters"),
            );
        }
        let parts: Vec<&str> = v.split('/').collect();
        if parts.len() > 2 || parts.iter().any(|s| s.is_empty()) {
            return err(
                p(),
                "must be \"<serviceaccount>\" or \"<namespace>/<serviceaccount>\"",
            );
        }
    }
    Ok(())
}

/// istiod `CheckWildcardValues`: one `*`, only at the start or end, and no `/`. Errors are
/// relative to the list.
fn check_trust_domains(list: &[String]) -> Result<()> {
    for (i, v) in list.iter().enumerate() {
        let p = || ConfigPath::root().index(i);
        let inner = v
            .strip_prefix('*')
            .or_else(|| v.strip_suffix('*'))
            .unwrap_or(v);
        if v != "*" && inner.contains('*') {
            return err(p(), "only one '*', at the start or the end, is allowed");
        }
        if v.contains('/') {
            return err(p(), "a trust domain must not contain '/'");
        }
    }
    Ok(())
}

/// The name inside `prefix[name]`, as istiod's `validateMapKey` + `extractNameInBrackets`.
fn bracket_name<'k>(key: &'k str, prefix: &str) -> Option<&'k str> {
    key.strip_prefix(prefix)?
        .strip_prefix('[')?
        .strip_suffix(']')
        .filter(|name| !name.is_empty())
}

/// The leaf builder of a `request.headers[<name>]` condition; errors are relative to it.
#[inline(never)]
fn request_header_leaf(key: &str) -> Result<LeafBuilder<'static>> {
    let name = bracket_name(key, "request.headers")
        .ok_or_else(|| {
            ConfigError::new(
                "key",
                format!("bad key ({key}): should have format request.headers[<name>]"),
            )
        })?
        .to_ascii_lowercase();
    Ok(single(move |v| {
        Ok(Predicate::Header(
            header_name(&name),
            ValueMatch::parse(v, Star::Present),
        ))
    }))
}

/// The leaf builder of a `request.auth.claims[<name>]...` condition; errors are relative to it.
#[inline(never)]
fn claims_leaf(key: &str) -> Result<LeafBuilder<'static>> {
    let names = claim_path(key.strip_prefix("request.auth.claims").unwrap_or_default())
        .ok_or_else(|| {
            ConfigError::new(
                "key",
                format!(
                    "bad key ({key}): should have format \
                    request.auth.claims[<name>]([<name>]...)"
                ),
            )
        })?;
    Ok(single(move |v| {
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        Ok(claim(&refs, v))
    }))
}

/// The leaf builder of an `experimental.envoy.filters.<filter>[<key>]` condition (dynamic
/// metadata); errors are relative to it.
#[inline(never)]
fn metadata_leaf(key: &str) -> Result<LeafBuilder<'static>> {
    let rest = key.strip_prefix("experimental.").unwrap_or(key);
    let (filter, name) = rest
        .strip_suffix(']')
        .and_then(|r| r.split_once('['))
        .filter(|(f, n)| !f.is_empty() && !n.is_empty())
        .ok_or_else(|| {
            ConfigError::new("key", format!("bad key ({key}): should have format a[b]"))
        })?;
    let (filter, name) = (filter.to_string(), name.to_string());
    Ok(single(move |v| {
        let list = v.len() >= 2 && v.starts_with('[') && v.ends_with(']');
        let inner = if list {
            v.trim_matches(|c| c == '[' || c == ']')
        } else {
            v
        };
        Ok(Predicate::Metadata {
            filter: filter.as_str().into(),
            key: name.as_str().into(),
            value: StringMatch::parse(inner, Star::NonEmpty),
            list,
        })
    }))
}

/// Translates one `when` condition; errors are relative to it.
// Not inlined into `compile_rule`: V8 compiles the whole module at load with its optimizing
// compiler, whose memory grows with the largest function (README, "Module size and memory").
#[inline(never)]
fn compile_condition(c: Condition, ctx: &Context<'_>) -> Result<Predicate> {
    let key = c.key.as_str();
    let key_path = "key";
    if key.is_empty() {
        return err(key_path, "must not be empty");
    }
    if c.values.as_ref().is_none_or(|v| v.is_empty())
        && c.not_values.as_ref().is_none_or(|v| v.is_empty())
    {
        return err("", "at least one of values or notValues must be set");
    }
    let leaf: LeafBuilder<'_> = if key.starts_with("request.headers") {
        request_header_leaf(key)?
    } else {
        match key {
            "source.ip" => single(|v| Ok(Predicate::SourceIp(cidr(v)?))),
            "remote.ip" => single(|v| Ok(Predicate::RemoteIp(cidr(v)?))),
            "destination.ip" => single(|v| Ok(Predicate::DestinationIp(cidr(v)?))),
            "destination.port" => single(|v| Ok(Predicate::DestinationPort(port(v)?))),
            "source.namespace" => single(|v| Ok(Predicate::Identity(IdentityMatch::namespace(v)))),
            "source.principal" => Box::new(|v, out| {
                principal_leaves(v, ctx.trust, out);
                Ok(())
            }),
            "source.serviceAccount" => {
                for list in [&c.values, &c.not_values].into_iter().flatten() {
                    check_service_accounts(list)?;
                }
                single(|v| {
                    Ok(Predicate::Identity(IdentityMatch::service_account(
                        v,
                        ctx.namespace,
                    )))
                })
            }
            "source.trustDomain" => {
                for list in [&c.values, &c.not_values].into_iter().flatten() {
                    check_trust_domains(list)?;
                }
                Box::new(|v, out| {
                    trust_domain_leaves(v, ctx.trust, out);
                    Ok(())
                })
            }
            "connection.sni" => {
                single(|v| Ok(Predicate::Sni(StringMatch::parse(v, Star::NonEmpty))))
            }
            "destination.namespace" => {
                return err(
                    key_path,
                    "attribute destination.namespace is replaced by the metadata.namespace",
                )
            }
            "destination.name" | "destination.user" => {
                return err(
                    key_path,
                    format!("deprecated attribute {key}: only supported in v1alpha1"),
                )
            }
            _ if key.starts_with("destination.labels") => {
                return err(
                    key_path,
                    format!("attribute {key} is replaced by the workload selector"),
                )
            }
            "request.auth.principal" => single(|v| Ok(request_principal(v))),
            "request.auth.audiences" => single(|v| Ok(claim(&["aud"], v))),
            "request.auth.presenter" => single(|v| Ok(claim(&["azp"], v))),
            _ if key.starts_with("request.auth.claims") => claims_leaf(key)?,
            _ if key.starts_with("experimental.envoy.filters.") => metadata_leaf(key)?,
            _ => return err(key_path, format!("unknown attribute: {key}")),
        }
    };
    let predicate = field("values", "notValues", c.values, c.not_values, &*leaf)?;
    Ok(predicate.unwrap_or(Predicate::Any))
}
