//! The workload a meshguard instance protects, and how a resource's `selector` picks it.
//!
//! Mirrors istiod's `pilot/pkg/model/policyattachment.go` for sidecars: a resource applies
//! when it lives in the root namespace or the workload's namespace and its
//! `selector.matchLabels` is a subset of the workload's labels (an absent selector, or an
//! empty `matchLabels`, selects every workload in scope).

use crate::config_json::string_map::StringMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    namespace: String,
    labels: StringMap,
    /// Service FQDNs of the workload (legacy RBAC and SecurityRules select by service).
    services: Vec<String>,
}

impl Workload {
    /// A workload whose services default to `<app label>.<namespace>.svc.cluster.local`.
    pub fn new(namespace: String, labels: StringMap) -> Workload {
        let services = labels
            .get("app")
            .map(|app| vec![format!("{app}.{namespace}.svc.cluster.local")])
            .unwrap_or_default();
        Workload {
            namespace,
            labels,
            services,
        }
    }

    pub fn with_services(mut self, services: Vec<String>) -> Workload {
        self.services = services;
        self
    }

    pub fn services(&self) -> &[String] {
        &self.services
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    pub fn labels(&self) -> &StringMap {
        &self.labels
    }

    /// Kubernetes `labels.SelectorFromSet(selector).Matches(workload labels)`.
    pub fn matches_labels(&self, selector: &StringMap) -> bool {
        selector
            .iter()
            .all(|(k, v)| self.labels.get(k).is_some_and(|have| have == v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> StringMap {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn selector_must_be_a_subset_of_workload_labels() {
        let w = Workload::new("ns".into(), labels(&[("app", "b"), ("version", "v1")]));
        assert!(w.matches_labels(&labels(&[("app", "b")])));
        assert!(w.matches_labels(&labels(&[])));
        assert!(!w.matches_labels(&labels(&[("app", "c")])));
        assert!(!w.matches_labels(&labels(&[("app", "b"), ("tier", "x")])));
    }
}
