//! Legacy Istio RBAC (`rbac.istio.io/v1alpha1`, removed in Istio 1.6): `ClusterRbacConfig`
//! (and its older name `RbacConfig`), `ServiceRole` and `ServiceRoleBinding`.
//!
//! Semantics of Istio 1.4 (`pilot/pkg/security/authz/model` at 1.4, golden files
//! `legacy-istio-1.4`): when RBAC is on for the workload's service (mode `ON`, or
//! `ON_WITH_INCLUSION` / `ON_WITH_EXCLUSION` by service FQDN or namespace), a request is allowed
//! only if some binding in the workload's namespace has a subject that matches and refers to a
//! role in that namespace with an access rule that matches; otherwise 403. Enforcement mode
//! `PERMISSIVE` evaluates and logs only (the dry-run ancestor). If any `AuthorizationPolicy`
//! applies to the workload, all v1alpha1 configuration is ignored for it, as in Istio 1.4/1.5.
//!
//! Translation: each (binding, role) pair becomes one ALLOW rule `(any subject) AND (any access
//! rule)`, with id `ns[NS]-servicerolebinding[B]-role[R]`. Access-rule `paths` match the raw
//! `:path` header (query included), as the 1.4 translation did; `methods: ["*"]` is any method;
//! subject `user: "*"` is anyone, including unauthenticated peers (unlike v1beta1 `principals`).
//! Unknown constraint and property keys, which Istio silently ignored, are load errors here.

use crate::config_json::string_map::StringMap;

use crate::authorization::authorization_policy::{Action, CompiledPolicy, CompiledRule};
use crate::authorization::rule_id::RuleId;
use crate::config_json::reader::{FromJson, Json};
use crate::error::{config_err as err, ConfigResult as Result};
use crate::error::{ConfigError, ConfigPath, ResourcePath};
use crate::matchers::attribute_vocabulary::{claim, claim_path, port, request_principal};
use crate::matchers::cidr::Cidr;
use crate::matchers::identity_match::{IdentityMatch, TrustBundle};
use crate::matchers::predicate::{header_name, Predicate};
use crate::matchers::string_match::{Star, StringMatch, ValueMatch};
use crate::targeting::workload::Workload;

#[derive(Debug)]
pub struct RbacConfigSpec {
    pub mode: Option<RbacMode>,
    pub inclusion: Option<RbacTarget>,
    pub exclusion: Option<RbacTarget>,
    pub enforcement_mode: Option<EnforcementMode>,
}

impl FromJson for RbacConfigSpec {
    fn from_json(value: &Json<'_>) -> Result<RbacConfigSpec> {
        let f = value.fields(
            "RbacConfigSpec",
            &["mode", "inclusion", "exclusion", "enforcementMode"],
        )?;
        Ok(RbacConfigSpec {
            mode: f.optional("mode", |v| {
                v.variant(&[
                    ("OFF", RbacMode::Off),
                    ("ON", RbacMode::On),
                    ("ON_WITH_INCLUSION", RbacMode::OnWithInclusion),
                    ("ON_WITH_EXCLUSION", RbacMode::OnWithExclusion),
                ])
            })?,
            inclusion: f.optional("inclusion", RbacTarget::from_json)?,
            exclusion: f.optional("exclusion", RbacTarget::from_json)?,
            enforcement_mode: f.optional("enforcementMode", |v| {
                v.variant(&[
                    ("ENFORCED", EnforcementMode::Enforced),
                    ("PERMISSIVE", EnforcementMode::Permissive),
                ])
            })?,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RbacMode {
    Off,
    On,
    OnWithInclusion,
    OnWithExclusion,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnforcementMode {
    Enforced,
    Permissive,
}

#[derive(Debug, Default)]
pub struct RbacTarget {
    pub services: Vec<String>,
    pub namespaces: Vec<String>,
}

impl FromJson for RbacTarget {
    fn from_json(value: &Json<'_>) -> Result<RbacTarget> {
        let f = value.fields("RbacTarget", &["services", "namespaces"])?;
        Ok(RbacTarget {
            services: f.or_default("services", Json::strings)?,
            namespaces: f.or_default("namespaces", Json::strings)?,
        })
    }
}

#[derive(Debug)]
pub struct ServiceRoleSpec {
    pub rules: Vec<AccessRule>,
}

impl FromJson for ServiceRoleSpec {
    fn from_json(value: &Json<'_>) -> Result<ServiceRoleSpec> {
        let f = value.fields("ServiceRoleSpec", &["rules"])?;
        Ok(ServiceRoleSpec {
            rules: f.or_default("rules", |v| v.list(AccessRule::from_json))?,
        })
    }
}

#[derive(Debug)]
pub struct AccessRule {
    pub services: Vec<String>,
    pub paths: Option<Vec<String>>,
    pub not_paths: Option<Vec<String>>,
    pub methods: Option<Vec<String>>,
    pub not_methods: Option<Vec<String>>,
    pub hosts: Option<Vec<String>>,
    pub not_hosts: Option<Vec<String>>,
    pub ports: Option<Vec<i64>>,
    pub not_ports: Option<Vec<i64>>,
    pub constraints: Option<Vec<Constraint>>,
}

impl FromJson for AccessRule {
    fn from_json(value: &Json<'_>) -> Result<AccessRule> {
        let f = value.fields(
            "AccessRule",
            &[
                "services",
                "paths",
                "notPaths",
                "methods",
                "notMethods",
                "hosts",
                "notHosts",
                "ports",
                "notPorts",
                "constraints",
            ],
        )?;
        let list = |name| f.optional(name, Json::strings);
        let ports = |name| f.optional(name, |v: &Json<'_>| v.list(Json::i64));
        Ok(AccessRule {
            services: f.or_default("services", Json::strings)?,
            paths: list("paths")?,
            not_paths: list("notPaths")?,
            methods: list("methods")?,
            not_methods: list("notMethods")?,
            hosts: list("hosts")?,
            not_hosts: list("notHosts")?,
            ports: ports("ports")?,
            not_ports: ports("notPorts")?,
            constraints: f.optional("constraints", |v| {
                v.list(|c| {
                    let f = c.fields("Constraint", &["key", "values"])?;
                    Ok(Constraint {
                        key: f.required("key", Json::string)?,
                        values: f.or_default("values", Json::strings)?,
                    })
                })
            })?,
        })
    }
}

#[derive(Debug)]
pub struct Constraint {
    pub key: String,
    pub values: Vec<String>,
}

#[derive(Debug)]
pub struct ServiceRoleBindingSpec {
    pub subjects: Vec<Subject>,
    pub role_ref: Option<RoleRef>,
}

impl FromJson for ServiceRoleBindingSpec {
    fn from_json(value: &Json<'_>) -> Result<ServiceRoleBindingSpec> {
        let f = value.fields("ServiceRoleBindingSpec", &["subjects", "roleRef"])?;
        Ok(ServiceRoleBindingSpec {
            subjects: f.or_default("subjects", |v| v.list(Subject::from_json))?,
            role_ref: f.optional("roleRef", |v| {
                let f = v.fields("RoleRef", &["kind", "name"])?;
                Ok(RoleRef {
                    kind: f.required("kind", Json::string)?,
                    name: f.required("name", Json::string)?,
                })
            })?,
        })
    }
}

#[derive(Debug)]
pub struct Subject {
    pub user: Option<String>,
    pub group: Option<String>,
    pub properties: Option<StringMap>,
    /// Istio 1.4's subject lists (and `not_` forms), present and not `null`: read so they can
    /// be refused by name.
    pub names: Option<()>,
    pub not_names: Option<()>,
    pub groups: Option<()>,
    pub not_groups: Option<()>,
    pub namespaces: Option<()>,
    pub not_namespaces: Option<()>,
    pub ips: Option<()>,
    pub not_ips: Option<()>,
}

impl FromJson for Subject {
    fn from_json(value: &Json<'_>) -> Result<Subject> {
        let f = value.fields(
            "Subject",
            &[
                "user",
                "group",
                "properties",
                "names",
                "not_names",
                "groups",
                "not_groups",
                "namespaces",
                "not_namespaces",
                "ips",
                "not_ips",
            ],
        )?;
        let list = |name| f.optional(name, Json::any);
        Ok(Subject {
            user: f.optional("user", Json::string)?,
            group: f.optional("group", Json::string)?,
            properties: f.optional("properties", Json::string_map)?,
            names: list("names")?,
            not_names: list("not_names")?,
            groups: list("groups")?,
            not_groups: list("not_groups")?,
            namespaces: list("namespaces")?,
            not_namespaces: list("not_namespaces")?,
            ips: list("ips")?,
            not_ips: list("not_ips")?,
        })
    }
}

/// Why Istio 1.4's subject lists are refused (README, "Legacy RBAC").
const SUBJECT_LISTS_REFUSED: &str = "Istio 1.4's subject lists (names, groups, namespaces, ips \
    and their not_ forms) are not supported: meshguard refuses them rather than skip them; \
    use user, group and properties (source.principal, source.namespace, source.ip)";

#[derive(Debug)]
pub struct RoleRef {
    pub kind: String,
    pub name: String,
}

/// The validated v1alpha1 resources of one configuration.
#[derive(Debug, Default)]
pub struct LegacyRbac {
    config: Option<RbacConfigSpec>,
    /// Namespace, name, spec and where the resource is (for errors).
    roles: Vec<(String, String, ServiceRoleSpec, ResourcePath)>,
    bindings: Vec<(String, String, ServiceRoleBindingSpec, ResourcePath)>,
}

impl LegacyRbac {
    /// `path` is the resource's place in the configuration, for errors.
    pub fn add_config(
        &mut self,
        name: &str,
        spec: RbacConfigSpec,
        path: &ResourcePath,
    ) -> Result<()> {
        if name != "default" {
            return err(
                path.path().field("metadata").field("name"),
                "Istio only honours the ClusterRbacConfig named \"default\"",
            );
        }
        if self.config.is_some() {
            return err(path.path(), "only one ClusterRbacConfig may be given");
        }
        self.config = Some(spec);
        Ok(())
    }

    pub fn add_role(
        &mut self,
        namespace: &str,
        name: &str,
        spec: ServiceRoleSpec,
        path: &ResourcePath,
    ) -> Result<()> {
        let probe = Workload::new(namespace.to_string(), StringMap::new());
        for (i, rule) in spec.rules.iter().enumerate() {
            let rule_path = || path.path().field("spec").field("rules").index(i);
            if rule.services.is_empty() {
                return err(
                    rule_path().field("services"),
                    "at least one service is required",
                );
            }
            // Every key and value is checked now, whether or not the rule applies here.
            access_rule(rule, &probe, true).map_err(|e| e.within(rule_path()))?;
        }
        self.roles
            .push((namespace.to_string(), name.to_string(), spec, path.clone()));
        Ok(())
    }

    pub fn add_binding(
        &mut self,
        namespace: &str,
        name: &str,
        spec: ServiceRoleBindingSpec,
        path: &ResourcePath,
    ) -> Result<()> {
        let in_spec = || path.path().field("spec");
        match &spec.role_ref {
            Some(r) if r.kind == "ServiceRole" && !r.name.is_empty() => {}
            _ => {
                return err(
                    in_spec().field("roleRef"),
                    "a roleRef of kind ServiceRole with a name is required",
                )
            }
        }
        if spec.subjects.is_empty() {
            return err(
                in_spec().field("subjects"),
                "at least one subject is required",
            );
        }
        let trust = TrustBundle::new("cluster.local", &[]);
        for (i, subject) in spec.subjects.iter().enumerate() {
            subject_predicate(subject, &trust)
                .map_err(|e| e.within(in_spec().field("subjects").index(i)))?;
        }
        self.bindings
            .push((namespace.to_string(), name.to_string(), spec, path.clone()));
        Ok(())
    }

    /// True when any v1alpha1 resource was given.
    pub fn is_empty(&self) -> bool {
        self.config.is_none() && self.roles.is_empty() && self.bindings.is_empty()
    }

    /// The ALLOW policy RBAC imposes on this workload, or `None` when RBAC is off for it.
    /// `forced_on` is true when SuperGloo SecurityRules switched RBAC on mesh-wide.
    pub fn compile(
        &self,
        workload: &Workload,
        trust: &TrustBundle,
        security_rules: Vec<CompiledRule>,
        forced_on: bool,
    ) -> Result<Option<CompiledPolicy>> {
        let default_config = RbacConfigSpec {
            mode: Some(RbacMode::On),
            inclusion: None,
            exclusion: None,
            enforcement_mode: None,
        };
        let config = match &self.config {
            Some(config) => config,
            None if forced_on => &default_config,
            None => return Ok(None),
        };
        let on = forced_on
            || match config.mode.unwrap_or(RbacMode::Off) {
                RbacMode::Off => false,
                RbacMode::On => true,
                RbacMode::OnWithInclusion => config
                    .inclusion
                    .as_ref()
                    .is_some_and(|t| targets(t, workload)),
                RbacMode::OnWithExclusion => !config
                    .exclusion
                    .as_ref()
                    .is_some_and(|t| targets(t, workload)),
            };
        if !on {
            return Ok(None);
        }
        let mut rules = security_rules;
        for (ns, name, binding, path) in &self.bindings {
            if ns != workload.namespace() {
                continue;
            }
            let Some(role_ref) = &binding.role_ref else {
                continue;
            };
            let Some((_, _, role, role_path)) = self
                .roles
                .iter()
                .find(|(rns, rname, _, _)| rns == ns && *rname == role_ref.name)
            else {
                continue;
            };
            let mut access = Vec::new();
            for (i, rule) in role.rules.iter().enumerate() {
                let rule_path = || role_path.path().field("spec").field("rules").index(i);
                if let Some(p) =
                    access_rule(rule, workload, false).map_err(|e| e.within(rule_path()))?
                {
                    access.push(p);
                }
            }
            if access.is_empty() {
                continue;
            }
            let mut subjects = Vec::new();
            for (i, subject) in binding.subjects.iter().enumerate() {
                let subject_path = || path.path().field("spec").field("subjects").index(i);
                subjects
                    .push(subject_predicate(subject, trust).map_err(|e| e.within(subject_path()))?);
            }
            rules.push(CompiledRule {
                id: RuleId::role_binding(ns, name, &role_ref.name),
                predicate: Predicate::all(vec![Predicate::or(subjects), Predicate::or(access)]),
                parts: Box::default(),
            });
        }
        Ok(Some(CompiledPolicy {
            action: Action::Allow,
            dry_run: config.enforcement_mode == Some(EnforcementMode::Permissive),
            selector: None,
            has_target_ref: false,
            rules,
            deny_response: None,
        }))
    }
}

fn targets(t: &RbacTarget, workload: &Workload) -> bool {
    t.namespaces.iter().any(|n| n == workload.namespace())
        || t.services.iter().any(|s| workload.services().contains(s))
}

fn string_forms(values: &[String], star: Star) -> Vec<StringMatch> {
    values.iter().map(|v| StringMatch::parse(v, star)).collect()
}

/// An access rule, or `None` when it cannot apply to this workload (services, static
/// constraints on destination labels or namespace). Errors are relative to the rule.
fn access_rule(
    rule: &AccessRule,
    workload: &Workload,
    validate_only: bool,
) -> Result<Option<Predicate>> {
    let services = string_forms(&rule.services, Star::Present);
    if !validate_only
        && !workload
            .services()
            .iter()
            .any(|s| services.iter().any(|m| m.matches(s.as_bytes())))
    {
        return Ok(None);
    }
    let mut parts = Vec::new();
    let header = |name: &str, values: &[String], ignore_case: bool| {
        Predicate::or(
            values
                .iter()
                .map(|v| {
                    Predicate::Header(
                        header_name(name),
                        ValueMatch::new(StringMatch::parse(v, Star::Present), ignore_case),
                    )
                })
                .collect(),
        )
    };
    for (values, negate, name, ignore_case) in [
        (&rule.paths, false, ":path", false),
        (&rule.not_paths, true, ":path", false),
        (&rule.methods, false, ":method", false),
        (&rule.not_methods, true, ":method", false),
        (&rule.hosts, false, ":authority", true),
        (&rule.not_hosts, true, ":authority", true),
    ] {
        let Some(values) = values.as_ref().filter(|v| !v.is_empty()) else {
            continue;
        };
        if !negate && values.iter().any(|v| v == "*") {
            continue;
        }
        let p = header(name, values, ignore_case);
        parts.push(if negate {
            Predicate::Not(Box::new(p))
        } else {
            p
        });
    }
    for (values, negate, label) in [
        (&rule.ports, false, "ports"),
        (&rule.not_ports, true, "notPorts"),
    ] {
        let Some(values) = values.as_ref().filter(|v| !v.is_empty()) else {
            continue;
        };
        let mut ports = Vec::new();
        for (i, v) in values.iter().enumerate() {
            let port = u16::try_from(*v).map_err(|_| {
                ConfigError::new(ConfigPath::root().field(label).index(i), "not a port")
            })?;
            ports.push(Predicate::DestinationPort(port));
        }
        let p = Predicate::or(ports);
        parts.push(if negate {
            Predicate::Not(Box::new(p))
        } else {
            p
        });
    }
    for (i, c) in rule.constraints.iter().flatten().enumerate() {
        let cpath = || ConfigPath::root().field("constraints").index(i);
        if c.values.is_empty() {
            return err(cpath().field("values"), "at least one value is required");
        }
        let key = c.key.as_str();
        let static_match = |have: &str| {
            string_forms(&c.values, Star::NonEmpty)
                .iter()
                .any(|m| m.matches(have.as_bytes()))
        };
        let leaf = if let Some(name) = key
            .strip_prefix("request.headers[")
            .and_then(|k| k.strip_suffix(']'))
        {
            header(&name.to_ascii_lowercase(), &c.values, false)
        } else if let Some(label) = key
            .strip_prefix("destination.labels[")
            .and_then(|k| k.strip_suffix(']'))
        {
            match workload.labels().get(label) {
                _ if validate_only => continue,
                Some(v) if static_match(v) => continue,
                _ => return Ok(None),
            }
        } else {
            match key {
                "destination.namespace" if validate_only || static_match(workload.namespace()) => {
                    continue
                }
                "destination.namespace" => return Ok(None),
                "destination.ip" => Predicate::or(
                    c.values
                        .iter()
                        .map(|v| {
                            Cidr::parse(v)
                                .map(Predicate::DestinationIp)
                                .map_err(|e| ConfigError::new(cpath(), e))
                        })
                        .collect::<Result<Vec<_>>>()?,
                ),
                "destination.port" => Predicate::or(
                    c.values
                        .iter()
                        .map(|v| {
                            port(v)
                                .map(Predicate::DestinationPort)
                                .map_err(|e| e.within(cpath()))
                        })
                        .collect::<Result<Vec<_>>>()?,
                ),
                "destination.user" => {
                    return err(
                        cpath().field("key"),
                        "destination.user (the workload's service account) is not supported: \
                        meshguard refuses it rather than skip it",
                    )
                }
                k if k.starts_with("experimental.envoy.filters.") => {
                    return err(
                        cpath().field("key"),
                        format!(
                            "{k} (Envoy filter metadata) is not supported: meshguard refuses it \
                            rather than skip it"
                        ),
                    )
                }
                _ => {
                    return err(
                        cpath().field("key"),
                        format!(
                            "unsupported constraint {key} (supported: request.headers[..], \
                            destination.labels[..], destination.namespace, destination.ip, \
                            destination.port)"
                        ),
                    )
                }
            }
        };
        parts.push(leaf);
    }
    Ok(Some(Predicate::all(parts)))
}

/// Errors are relative to the subject.
fn subject_predicate(subject: &Subject, trust: &TrustBundle) -> Result<Predicate> {
    let lists = [
        ("names", &subject.names),
        ("not_names", &subject.not_names),
        ("groups", &subject.groups),
        ("not_groups", &subject.not_groups),
        ("namespaces", &subject.namespaces),
        ("not_namespaces", &subject.not_namespaces),
        ("ips", &subject.ips),
        ("not_ips", &subject.not_ips),
    ];
    if let Some((field, _)) = lists.iter().find(|(_, v)| v.is_some()) {
        return err(*field, SUBJECT_LISTS_REFUSED);
    }
    let mut parts = Vec::new();
    if let Some(user) = &subject.user {
        if user.is_empty() {
            return err("user", "must not be empty");
        }
        if user != "*" {
            let leaves = trust
                .expand_principal(user)
                .iter()
                .map(|p| Predicate::Identity(IdentityMatch::principal(p)))
                .collect();
            parts.push(Predicate::or(leaves));
        }
    }
    if let Some(group) = &subject.group {
        parts.push(Predicate::Claim(
            vec!["groups".into()].into(),
            StringMatch::parse(group, Star::NonEmpty),
        ));
    }
    for (key, value) in subject.properties.iter().flat_map(StringMap::iter) {
        let p = || ConfigPath::root().field("properties").key(key);
        if value.is_empty() {
            return err(p(), "must not be empty");
        }
        let leaf = if let Some(name) = key
            .strip_prefix("request.headers[")
            .and_then(|k| k.strip_suffix(']'))
        {
            Predicate::Header(
                header_name(&name.to_ascii_lowercase()),
                ValueMatch::parse(value, Star::Present),
            )
        } else if let Some(names) = key
            .strip_prefix("request.auth.claims")
            .filter(|k| k.starts_with('['))
            .and_then(claim_path)
        {
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            claim(&names, value)
        } else {
            match key {
                "source.ip" => {
                    Predicate::SourceIp(Cidr::parse(value).map_err(|e| ConfigError::new(p(), e))?)
                }
                "source.namespace" => Predicate::Identity(IdentityMatch::namespace(value)),
                "source.principal" => Predicate::or(
                    trust
                        .expand_principal(value)
                        .iter()
                        .map(|v| Predicate::Identity(IdentityMatch::principal(v)))
                        .collect(),
                ),
                "request.auth.principal" => request_principal(value),
                "request.auth.audiences" => claim(&["aud"], value),
                "request.auth.presenter" => claim(&["azp"], value),
                _ => return err(p(), format!("unsupported property {key}")),
            }
        };
        parts.push(leaf);
    }
    if subject.user.is_none()
        && subject.group.is_none()
        && subject.properties.as_ref().is_none_or(StringMap::is_empty)
    {
        return err("", "a subject needs a user, a group or properties");
    }
    Ok(Predicate::all(parts))
}
