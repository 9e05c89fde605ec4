//! SuperGloo `SecurityRule` (`supergloo.solo.io/v1`): whitelisting between workloads.
//!
//! SuperGloo translated SecurityRules into Istio v1alpha1 RBAC
//! (`pkg/translator/istio/translator_security.go`): with no SecurityRule everything is allowed;
//! once one exists RBAC is `ON` mesh-wide and each rule adds an allow from its source pods'
//! service accounts to its destination services, for `allowedPaths` (any if empty) and
//! `allowedMethods` (any if empty or `*`). meshguard does the same for the workload it protects.
//!
//! How selectors map, since meshguard sees no pods:
//! * destination `upstreamSelector`: SuperGloo names a Kubernetes upstream
//!   `<namespace>-<service>-<port>`; it selects this workload when one of the workload's
//!   service FQDNs `<service>.<namespace>.svc.cluster.local` gives that name with some port.
//!   `serviceSelector` compares the FQDN directly, `namespaceSelector` the namespace,
//!   `labelSelector` the workload labels. No selector selects everything.
//! * source selectors become peer principals `cluster.local/ns/<ns>/sa/<sa>` (trust-domain
//!   aliases apply). The service account of an upstream or service comes from the top-level
//!   `serviceAccounts` map (`"<namespace>/<service>": ["<sa>", ...]`), defaulting to the service
//!   name; `namespaceSelector` admits any identity in those namespaces; `labelSelector` sources
//!   need the top-level `inventory` (`[{namespace, labels, serviceAccount}]`) to find the pods.
//!   No source selector admits anyone.
//!
//! Paths match the raw `:path` header, as the v1alpha1 RBAC SuperGloo generated did.

use crate::config_json::string_map::StringMap;

use crate::authorization::authorization_policy::CompiledRule;
use crate::authorization::rule_id::RuleId;
use crate::config_json::reader::{FromJson, Json};
use crate::error::ConfigResult as Result;
use crate::error::{ConfigError, ConfigPath};
use crate::matchers::identity_match::{IdentityMatch, TrustBundle};
use crate::matchers::predicate::Predicate;
use crate::matchers::sort_order::map_order;
use crate::matchers::string_match::{Star, ValueMatch};
use crate::targeting::workload::Workload;

#[derive(Debug)]
pub struct SecurityRuleSpec {
    pub target_mesh: Option<ResourceRef>,
    pub source_selector: Option<PodSelector>,
    pub destination_selector: Option<PodSelector>,
    pub allowed_paths: Vec<String>,
    pub allowed_methods: Vec<String>,
}

impl FromJson for SecurityRuleSpec {
    fn from_json(value: &Json<'_>) -> Result<SecurityRuleSpec> {
        let f = value.fields(
            "SecurityRuleSpec",
            &[
                "targetMesh",
                "sourceSelector",
                "destinationSelector",
                "allowedPaths",
                "allowedMethods",
            ],
        )?;
        Ok(SecurityRuleSpec {
            target_mesh: f.optional("targetMesh", ResourceRef::from_json)?,
            source_selector: f.optional("sourceSelector", PodSelector::from_json)?,
            destination_selector: f.optional("destinationSelector", PodSelector::from_json)?,
            allowed_paths: f.or_default("allowedPaths", Json::strings)?,
            allowed_methods: f.or_default("allowedMethods", Json::strings)?,
        })
    }
}

#[derive(Debug, Clone)]
pub struct ResourceRef {
    pub name: String,
    pub namespace: Option<String>,
}

impl FromJson for ResourceRef {
    fn from_json(value: &Json<'_>) -> Result<ResourceRef> {
        let f = value.fields("ResourceRef", &["name", "namespace"])?;
        Ok(ResourceRef {
            name: f.required("name", Json::string)?,
            namespace: f.optional("namespace", Json::string)?,
        })
    }
}

#[derive(Debug, Default)]
pub struct PodSelector {
    pub label_selector: Option<LabelSelector>,
    pub upstream_selector: Option<UpstreamSelector>,
    pub service_selector: Option<ServiceSelector>,
    pub namespace_selector: Option<NamespaceSelector>,
}

impl FromJson for PodSelector {
    fn from_json(value: &Json<'_>) -> Result<PodSelector> {
        let f = value.fields(
            "PodSelector",
            &[
                "labelSelector",
                "upstreamSelector",
                "serviceSelector",
                "namespaceSelector",
            ],
        )?;
        Ok(PodSelector {
            label_selector: f.optional("labelSelector", |v| {
                let f = v.fields("LabelSelector", &["labelsToMatch"])?;
                Ok(LabelSelector {
                    labels_to_match: f.or_default("labelsToMatch", Json::string_map)?,
                })
            })?,
            upstream_selector: f.optional("upstreamSelector", |v| {
                let f = v.fields("UpstreamSelector", &["upstreams"])?;
                Ok(UpstreamSelector {
                    upstreams: f.or_default("upstreams", |v| v.list(ResourceRef::from_json))?,
                })
            })?,
            service_selector: f.optional("serviceSelector", |v| {
                let f = v.fields("ServiceSelector", &["services"])?;
                Ok(ServiceSelector {
                    services: f.or_default("services", |v| v.list(ResourceRef::from_json))?,
                })
            })?,
            namespace_selector: f.optional("namespaceSelector", |v| {
                let f = v.fields("NamespaceSelector", &["namespaces"])?;
                Ok(NamespaceSelector {
                    namespaces: f.or_default("namespaces", Json::strings)?,
                })
            })?,
        })
    }
}

#[derive(Debug)]
pub struct LabelSelector {
    pub labels_to_match: StringMap,
}

#[derive(Debug)]
pub struct UpstreamSelector {
    pub upstreams: Vec<ResourceRef>,
}

#[derive(Debug)]
pub struct ServiceSelector {
    pub services: Vec<ResourceRef>,
}

#[derive(Debug)]
pub struct NamespaceSelector {
    pub namespaces: Vec<String>,
}

/// A pod of the mesh, for `labelSelector` sources.
#[derive(Debug, Clone)]
pub struct InventoryEntry {
    pub namespace: String,
    pub labels: StringMap,
    pub service_account: String,
}

impl FromJson for InventoryEntry {
    fn from_json(value: &Json<'_>) -> Result<InventoryEntry> {
        let f = value.fields("InventoryEntry", &["namespace", "labels", "serviceAccount"])?;
        Ok(InventoryEntry {
            namespace: f.required("namespace", Json::string)?,
            labels: f.or_default("labels", Json::string_map)?,
            service_account: f.required("serviceAccount", Json::string)?,
        })
    }
}

/// The plugin's `serviceAccounts` map, `"<namespace>/<service>"` to the service's accounts,
/// as read (repeated keys included) with the positions a `BTreeMap` would keep, in key order
/// (`map_order`: the last of repeated keys). Looked up by binary search over the positions;
/// no `BTreeMap<String, Vec<String>>` instantiation in the module.
#[derive(Debug, Default)]
pub struct ServiceAccounts {
    entries: Vec<(String, Vec<String>)>,
    order: Vec<usize>,
}

impl ServiceAccounts {
    pub fn new(entries: Vec<(String, Vec<String>)>) -> ServiceAccounts {
        let order = map_order(entries.iter().map(|(k, _)| k.as_bytes()).collect());
        ServiceAccounts { entries, order }
    }

    fn key(&self, position: usize) -> &str {
        self.entries.get(position).map_or("", |(k, _)| k.as_str())
    }

    /// The accounts listed for `service` (the last entry of a repeated key).
    pub fn get(&self, service: &str) -> Option<&[String]> {
        let at = self
            .order
            .binary_search_by(|i| self.key(*i).cmp(service))
            .ok()?;
        let position = self.order.get(at)?;
        self.entries.get(*position).map(|(_, v)| v.as_slice())
    }
}

/// What the translation needs besides the rule.
pub struct Context<'a> {
    pub workload: &'a Workload,
    pub trust: &'a TrustBundle,
    pub service_accounts: &'a ServiceAccounts,
    pub inventory: &'a [InventoryEntry],
}

fn selector_kinds(s: &PodSelector) -> usize {
    [
        s.label_selector.is_some(),
        s.upstream_selector.is_some(),
        s.service_selector.is_some(),
        s.namespace_selector.is_some(),
    ]
    .iter()
    .filter(|set| **set)
    .count()
}

/// Translates one SecurityRule; `None` when it does not select this workload. Errors are
/// relative to the spec.
pub fn compile_security_rule(
    spec: &SecurityRuleSpec,
    id: RuleId,
    ctx: &Context<'_>,
) -> Result<Option<CompiledRule>> {
    for (name, selector) in [
        ("sourceSelector", &spec.source_selector),
        ("destinationSelector", &spec.destination_selector),
    ] {
        if selector.as_ref().is_some_and(|s| selector_kinds(s) > 1) {
            return Err(ConfigError::new(name, "set only one selector kind"));
        }
    }
    let sources =
        sources(spec.source_selector.as_ref(), ctx).map_err(|e| e.within("sourceSelector"))?;
    if !selects_destination(spec.destination_selector.as_ref(), ctx.workload) {
        return Ok(None);
    }
    let mut parts = vec![sources];
    let paths: Vec<Predicate> = spec
        .allowed_paths
        .iter()
        .map(|p| Predicate::Header(":path".into(), ValueMatch::parse(p, Star::Present)))
        .collect();
    if !paths.is_empty() {
        parts.push(Predicate::or(paths));
    }
    if !spec.allowed_methods.is_empty() && !spec.allowed_methods.iter().any(|m| m == "*") {
        parts.push(Predicate::or(
            spec.allowed_methods
                .iter()
                .map(|m| Predicate::Header(":method".into(), ValueMatch::parse(m, Star::Present)))
                .collect(),
        ));
    }
    Ok(Some(CompiledRule {
        id,
        predicate: Predicate::all(parts),
        parts: Box::default(),
    }))
}

fn fqdn(name: &str, namespace: &str) -> String {
    format!("{name}.{namespace}.svc.cluster.local")
}

/// `<service>.<namespace>.svc.cluster.local` -> `(namespace, service)`.
fn split_fqdn(fqdn: &str) -> Option<(&str, &str)> {
    let rest = fqdn.strip_suffix(".svc.cluster.local")?;
    let (service, namespace) = rest.split_once('.')?;
    Some((namespace, service))
}

fn upstream_selects(upstream: &str, workload: &Workload) -> bool {
    workload
        .services()
        .iter()
        .filter_map(|s| split_fqdn(s))
        .any(|(ns, svc)| {
            upstream
                .strip_prefix(&format!("{ns}-{svc}-"))
                .is_some_and(|port| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()))
        })
}

// Not inlined into `compile_security_rule`: V8 compiles the whole module at load with its
// optimizing compiler, and the memory it leaves behind grows with the largest function (README,
// "What sets the memory at rest").
#[inline(never)]
fn selects_destination(selector: Option<&PodSelector>, workload: &Workload) -> bool {
    let Some(s) = selector.filter(|s| selector_kinds(s) > 0) else {
        return true;
    };
    if let Some(l) = &s.label_selector {
        return workload.matches_labels(&l.labels_to_match);
    }
    if let Some(u) = &s.upstream_selector {
        return u
            .upstreams
            .iter()
            .any(|r| upstream_selects(&r.name, workload));
    }
    if let Some(svc) = &s.service_selector {
        return svc.services.iter().any(|r| {
            let ns = r.namespace.as_deref().unwrap_or(workload.namespace());
            workload.services().contains(&fqdn(&r.name, ns))
        });
    }
    if let Some(n) = &s.namespace_selector {
        return n.namespaces.iter().any(|ns| ns == workload.namespace());
    }
    true
}

/// The upstream name `<namespace>-<service>-<port>` split on the rightmost port and the first
/// namespace the `serviceAccounts` map or the convention can make sense of.
fn upstream_service(name: &str) -> Option<(String, String)> {
    let (rest, port) = name.rsplit_once('-')?;
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (ns, svc) = rest.split_once('-')?;
    Some((ns.to_string(), svc.to_string()))
}

fn principals_of(ns: &str, svc: &str, ctx: &Context<'_>) -> Vec<Predicate> {
    let accounts = ctx
        .service_accounts
        .get(&format!("{ns}/{svc}"))
        .map(<[String]>::to_vec)
        .unwrap_or_else(|| vec![svc.to_string()]);
    accounts
        .iter()
        .flat_map(|sa| {
            ctx.trust
                .expand_principal(&format!("cluster.local/ns/{ns}/sa/{sa}"))
        })
        .map(|p| Predicate::Identity(IdentityMatch::principal(&p)))
        .collect()
}

/// Errors are relative to the selector.
// Not inlined into `compile_security_rule`: V8 compiles the whole module at load with its
// optimizing compiler, and the memory it leaves behind grows with the largest function (README,
// "What sets the memory at rest").
#[inline(never)]
fn sources(selector: Option<&PodSelector>, ctx: &Context<'_>) -> Result<Predicate> {
    let Some(s) = selector.filter(|s| selector_kinds(s) > 0) else {
        return Ok(Predicate::Any);
    };
    let mut leaves = Vec::new();
    if let Some(u) = &s.upstream_selector {
        for (i, r) in u.upstreams.iter().enumerate() {
            let (ns, svc) = upstream_service(&r.name).ok_or_else(|| {
                ConfigError::new(
                    ConfigPath::root()
                        .field("upstreamSelector")
                        .field("upstreams")
                        .index(i)
                        .field("name"),
                    format!(
                        "{:?} is not a Kubernetes upstream name <namespace>-<service>-<port>",
                        r.name
                    ),
                )
            })?;
            leaves.extend(principals_of(&ns, &svc, ctx));
        }
    }
    if let Some(svc) = &s.service_selector {
        for r in &svc.services {
            let ns = r.namespace.as_deref().unwrap_or(ctx.workload.namespace());
            leaves.extend(principals_of(ns, &r.name, ctx));
        }
    }
    if let Some(n) = &s.namespace_selector {
        leaves.extend(
            n.namespaces
                .iter()
                .map(|ns| Predicate::Identity(IdentityMatch::namespace(ns))),
        );
    }
    if let Some(l) = &s.label_selector {
        if ctx.inventory.is_empty() {
            return Err(ConfigError::new(
                "labelSelector",
                "label-selected sources need the top-level `inventory` (namespace, labels, \
                serviceAccount of each pod)",
            ));
        }
        for pod in ctx.inventory {
            let pod_labels = Workload::new(pod.namespace.clone(), pod.labels.clone());
            if pod_labels.matches_labels(&l.labels_to_match) {
                let principal = format!(
                    "cluster.local/ns/{}/sa/{}",
                    pod.namespace, pod.service_account
                );
                leaves.extend(
                    ctx.trust
                        .expand_principal(&principal)
                        .iter()
                        .map(|p| Predicate::Identity(IdentityMatch::principal(p))),
                );
            }
        }
    }
    if leaves.is_empty() {
        // A selector that selects no pod admits nobody.
        return Ok(Predicate::Not(Box::new(Predicate::Any)));
    }
    Ok(Predicate::or(leaves))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_accounts_look_up_as_the_btree_map_did_last_repeated_key_wins() {
        let entries: Vec<(String, Vec<String>)> = [
            ("ns/b", "b1"),
            ("ns/a", "a1"),
            ("ns/b", "b2"),
            ("", "empty"),
            ("ns/ab", "ab1"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), vec![v.to_string()]))
        .collect();
        let map: std::collections::BTreeMap<String, Vec<String>> =
            entries.iter().cloned().collect();
        let accounts = ServiceAccounts::new(entries);
        for key in ["ns/a", "ns/b", "", "ns/ab", "ns/c", "ns", "ns/a "] {
            assert_eq!(
                accounts.get(key),
                map.get(key).map(Vec::as_slice),
                "{key:?}"
            );
        }
        assert_eq!(ServiceAccounts::default().get("ns/a"), None);
    }

    #[test]
    fn upstream_names_split_into_namespace_and_service() {
        assert_eq!(
            upstream_service("default-productpage-9080"),
            Some(("default".into(), "productpage".into()))
        );
        assert_eq!(upstream_service("default-productpage"), None);
    }

    #[test]
    fn upstream_selects_workload_by_service_fqdn() {
        let w = Workload::new(
            "default".into(),
            [("app".to_string(), "reviews".to_string())]
                .into_iter()
                .collect(),
        );
        assert!(upstream_selects("default-reviews-9080", &w));
        assert!(!upstream_selects("default-details-9080", &w));
        assert!(!upstream_selects("default-reviews-", &w));
    }
}
