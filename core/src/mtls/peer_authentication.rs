//! Istio `PeerAuthentication` (`security.istio.io/v1`, `v1beta1`): which mTLS mode applies to
//! this workload and port, composed as istiod does (`authn/policy_applier.go`
//! `ComposePeerAuthentication`).
//!
//! * Scopes: mesh (root namespace, no selector), namespace (own namespace, no selector),
//!   workload (own namespace, selector matching). The narrowest scope that sets a mode wins;
//!   `UNSET` inherits from the next wider scope; the mesh default is `PERMISSIVE`.
//! * Within a scope the oldest resource wins (`metadata.creationTimestamp`, then configuration
//!   order); later ones are ignored, as istiod ignores them.
//! * `portLevelMtls` applies only with a selector; port-level `UNSET` inherits the workload's
//!   mode. Selector policies in the root namespace are ignored.
//!
//! meshguard cannot change the TLS handshake, so `STRICT` is enforced at the HTTP layer: a
//! request on a STRICT port without a verified client certificate gets 403 `mTLS is required`
//! (Istio would refuse the connection). Under `DISABLE` Istio terminates no TLS, so the peer
//! identity is ignored there.

use crate::config_json::string_map::StringMap;

use crate::config_json::reader::{FromJson, Json};
use crate::error::{ConfigError, ConfigPath, ConfigResult};
use crate::matchers::sort_order::map_order;
use crate::targeting::attachment::WorkloadSelector;

#[derive(Debug)]
pub struct PeerAuthenticationSpec {
    pub selector: Option<WorkloadSelector>,
    pub mtls: Option<MutualTls>,
    /// In document order, repeated keys included; compiled in `map_order` (key order, the
    /// last of repeated keys), as the `BTreeMap` serde read it into held them.
    pub port_level_mtls: Option<Vec<(String, MutualTls)>>,
}

impl FromJson for PeerAuthenticationSpec {
    fn from_json(value: &Json<'_>) -> ConfigResult<PeerAuthenticationSpec> {
        let f = value.fields(
            "PeerAuthenticationSpec",
            &["selector", "mtls", "portLevelMtls"],
        )?;
        Ok(PeerAuthenticationSpec {
            selector: f.optional("selector", WorkloadSelector::from_json)?,
            mtls: f.optional("mtls", MutualTls::from_json)?,
            port_level_mtls: f.optional("portLevelMtls", |v| v.entries(MutualTls::from_json))?,
        })
    }
}

#[derive(Debug)]
pub struct MutualTls {
    pub mode: Option<Mode>,
}

impl FromJson for MutualTls {
    fn from_json(value: &Json<'_>) -> ConfigResult<MutualTls> {
        let f = value.fields("MutualTls", &["mode"])?;
        Ok(MutualTls {
            mode: f.optional("mode", Mode::from_json)?,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Unset,
    Disable,
    Permissive,
    Strict,
}

impl FromJson for Mode {
    fn from_json(value: &Json<'_>) -> ConfigResult<Mode> {
        value.variant(&[
            ("UNSET", Mode::Unset),
            ("DISABLE", Mode::Disable),
            ("PERMISSIVE", Mode::Permissive),
            ("STRICT", Mode::Strict),
        ])
    }
}

/// One validated PeerAuthentication, before composition.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub name: String,
    pub namespace: String,
    pub created: Option<String>,
    pub selector: Option<StringMap>,
    pub mode: Mode,
    pub ports: PortModes,
}

/// Port-level modes, one per port, in port order: a sorted `Vec` (a `BTreeMap<u16, Mode>` cost
/// the module about 5 KB of tree code for a handful of entries).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortModes(Vec<(u16, Mode)>);

impl PortModes {
    /// Sets the mode of `port`, replacing an earlier one (a map's `insert`).
    pub fn set(&mut self, port: u16, mode: Mode) {
        match self.0.binary_search_by_key(&port, |(p, _)| *p) {
            Ok(i) => {
                if let Some(entry) = self.0.get_mut(i) {
                    entry.1 = mode;
                }
            }
            Err(i) => self.0.insert(i, (port, mode)),
        }
    }

    pub fn get(&self, port: u16) -> Option<Mode> {
        let i = self.0.binary_search_by_key(&port, |(p, _)| *p).ok()?;
        self.0.get(i).map(|(_, mode)| *mode)
    }

    /// The ports and their modes, in port order.
    pub fn iter(&self) -> impl Iterator<Item = (u16, Mode)> + '_ {
        self.0.iter().copied()
    }
}

/// The composed result for this workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MtlsPolicy {
    default: Mode,
    ports: PortModes,
    /// The resource that set the mode, for logs: `ns[NS]-peerauthentication[NAME]`.
    pub source: String,
}

impl Default for MtlsPolicy {
    fn default() -> MtlsPolicy {
        MtlsPolicy {
            default: Mode::Permissive,
            ports: PortModes::default(),
            source: String::new(),
        }
    }
}

impl MtlsPolicy {
    /// The effective mode for a destination port (`None`: unknown port, use the default).
    pub fn mode(&self, port: Option<u16>) -> Mode {
        port.and_then(|p| self.ports.get(p)).unwrap_or(self.default)
    }

    /// True when some port is STRICT or DISABLE (so the filter must look at the connection).
    /// Asked on every request: inlined, with `matches!` rather than the derived `PartialEq`
    /// (a call at the core's opt-level "z").
    #[inline(always)]
    pub fn needs_connection(&self) -> bool {
        !matches!(self.default, Mode::Permissive)
            || self
                .ports
                .0
                .iter()
                .any(|(_, m)| !matches!(m, Mode::Permissive))
    }
}

/// Errors are relative to the spec.
pub fn compile_peer_authentication(
    spec: PeerAuthenticationSpec,
    name: &str,
    namespace: &str,
    created: Option<String>,
) -> Result<Compiled, ConfigError> {
    let mut ports = PortModes::default();
    if let Some(levels) = spec.port_level_mtls {
        if spec.selector.is_none() && !levels.is_empty() {
            return Err(ConfigError::new(
                "portLevelMtls",
                "portLevelMtls requires a workload selector",
            ));
        }
        let order = map_order(levels.iter().map(|(port, _)| port.as_bytes()).collect());
        for (port, mtls) in order.into_iter().filter_map(|i| levels.get(i)) {
            let number: u16 = port.parse().ok().filter(|p| *p > 0).ok_or_else(|| {
                ConfigError::new(
                    ConfigPath::root().field("portLevelMtls").key(port.as_str()),
                    "must be a port number 1..65535",
                )
            })?;
            let mode = mtls.mode.ok_or_else(|| {
                ConfigError::new(
                    ConfigPath::root()
                        .field("portLevelMtls")
                        .key(port.as_str())
                        .field("mode"),
                    "mode is required",
                )
            })?;
            ports.set(number, mode);
        }
    }
    Ok(Compiled {
        name: name.to_string(),
        namespace: namespace.to_string(),
        created,
        selector: spec.selector.map(|s| s.match_labels),
        mode: spec.mtls.and_then(|m| m.mode).unwrap_or(Mode::Unset),
        ports,
    })
}

/// Composes the PeerAuthentications that can apply (root namespace and own namespace) for a
/// workload whose labels match with `selects`.
pub fn compose(
    all: &[Compiled],
    root_namespace: &str,
    workload_namespace: &str,
    selects: impl Fn(&StringMap) -> bool,
) -> MtlsPolicy {
    let oldest = |candidates: Vec<&Compiled>| -> Option<Compiled> {
        let mut c = candidates;
        // Stable: equal or missing timestamps keep configuration order. A missing timestamp
        // compares equal to any other, which is not a total order, so the order is spelled
        // out: the insertion sort the standard library's stable sort runs on up to 20 items
        // (every real case), without instantiating the whole sort for this one list.
        let older = |a: Option<&&Compiled>, b: Option<&&Compiled>| match (a, b) {
            (Some(a), Some(b)) => matches!((&a.created, &b.created), (Some(x), Some(y)) if x < y),
            _ => false,
        };
        for i in 1..c.len() {
            let mut j = i;
            while j > 0 && older(c.get(j), c.get(j - 1)) {
                c.swap(j, j - 1);
                j -= 1;
            }
        }
        c.first().map(|p| (*p).clone())
    };
    let mesh = oldest(
        all.iter()
            .filter(|p| p.namespace == root_namespace && p.selector.is_none())
            .collect(),
    );
    let namespace = oldest(
        all.iter()
            .filter(|p| {
                p.namespace == workload_namespace
                    && p.namespace != root_namespace
                    && p.selector.is_none()
            })
            .collect(),
    );
    let workload = oldest(
        all.iter()
            .filter(|p| p.namespace == workload_namespace && p.namespace != root_namespace)
            .filter(|p| p.selector.as_ref().is_some_and(&selects))
            .collect(),
    );
    let mut policy = MtlsPolicy::default();
    for scope in [mesh, namespace, workload].into_iter().flatten() {
        if scope.mode != Mode::Unset {
            policy.default = scope.mode;
            policy.source = format!("ns[{}]-peerauthentication[{}]", scope.namespace, scope.name);
        }
        for (port, mode) in scope.ports.iter() {
            let effective = if mode == Mode::Unset {
                policy.default
            } else {
                mode
            };
            policy.ports.set(port, effective);
            policy.source = format!("ns[{}]-peerauthentication[{}]", scope.namespace, scope.name);
        }
    }
    if policy.default == Mode::Unset {
        policy.default = Mode::Permissive;
    }
    policy
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pa(
        ns: &str,
        name: &str,
        selector: bool,
        mode: Mode,
        ports: &[(u16, Mode)],
        created: Option<&str>,
    ) -> Compiled {
        Compiled {
            name: name.into(),
            namespace: ns.into(),
            created: created.map(str::to_string),
            selector: selector.then(|| {
                [("app".to_string(), "web".to_string())]
                    .into_iter()
                    .collect()
            }),
            mode,
            ports: {
                let mut modes = PortModes::default();
                for (port, mode) in ports {
                    modes.set(*port, *mode);
                }
                modes
            },
        }
    }

    fn compose_for(all: &[Compiled]) -> MtlsPolicy {
        compose(all, "istio-system", "default", |s| {
            s.get("app").is_some_and(|v| v == "web")
        })
    }

    #[test]
    fn port_modes_behave_as_a_map_from_port_to_mode() {
        let modes = [Mode::Unset, Mode::Disable, Mode::Permissive, Mode::Strict];
        let mut seed = 11_u32;
        let mut ports = PortModes::default();
        let mut map = std::collections::BTreeMap::new();
        for _ in 0..2000 {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let port = [80, 443, 1, 65535, 8080, 9090, 15000][(seed >> 8) as usize % 7];
            let mode = modes[(seed >> 20) as usize % 4];
            ports.set(port, mode);
            map.insert(port, mode);
            assert!(ports.iter().eq(map.iter().map(|(p, m)| (*p, *m))));
            for probe in [0, 1, 80, 81, 443, 65535] {
                assert_eq!(ports.get(probe), map.get(&probe).copied());
            }
        }
    }

    fn compile_json(text: &str) -> Result<Compiled, String> {
        let json: Json = serde_json::from_str(text).unwrap();
        let spec = PeerAuthenticationSpec::from_json(&json).map_err(|e| e.to_string())?;
        compile_peer_authentication(spec, "pa", "default", None).map_err(|e| e.to_string())
    }

    #[test]
    fn port_level_mtls_reads_as_a_map_last_repeated_key_wins_errors_in_key_order() {
        let compiled = compile_json(
            r#"{"selector": {"matchLabels": {"app": "web"}}, "portLevelMtls": {
            "9080": {"mode": "STRICT"}, "80": {"mode": "PERMISSIVE"},
            "9080": {"mode": "DISABLE"}, "080": {"mode": "STRICT"}}}"#,
        )
        .unwrap();
        // Key order "080" < "80": port 80 ends PERMISSIVE, as with the BTreeMap before.
        assert!(compiled
            .ports
            .iter()
            .eq([(80, Mode::Permissive), (9080, Mode::Disable)]));
        assert_eq!(
            compile_json(
                r#"{"selector": {}, "portLevelMtls": {"x": {"mode": "STRICT"},
                "0": {"mode": "STRICT"}, "x": {}}}"#
            )
            .unwrap_err(),
            "portLevelMtls[0]: must be a port number 1..65535"
        );
        assert_eq!(
            compile_json(
                r#"{"selector": {}, "portLevelMtls": {"1": {"mode": "STRICT"}, "1": {}}}"#
            )
            .unwrap_err(),
            "portLevelMtls[1].mode: mode is required"
        );
        assert_eq!(
            compile_json(r#"{"portLevelMtls": {"1": {"mode": "strict"}, "1": {}}}"#).unwrap_err(),
            "portLevelMtls.1.mode: unknown variant `strict`, expected one of `UNSET`, `DISABLE`, \
            `PERMISSIVE`, `STRICT`"
        );
    }

    #[test]
    fn no_policy_is_permissive() {
        assert_eq!(compose_for(&[]).mode(Some(80)), Mode::Permissive);
    }

    #[test]
    fn narrowest_scope_wins_and_unset_inherits() {
        let all = [
            pa("istio-system", "mesh", false, Mode::Strict, &[], None),
            pa("default", "ns", false, Mode::Unset, &[], None),
        ];
        assert_eq!(compose_for(&all).mode(Some(80)), Mode::Strict);
        let all = [
            pa("istio-system", "mesh", false, Mode::Strict, &[], None),
            pa("default", "ns", false, Mode::Permissive, &[], None),
            pa(
                "default",
                "wl",
                true,
                Mode::Unset,
                &[(8080, Mode::Disable), (9090, Mode::Unset)],
                None,
            ),
        ];
        let p = compose_for(&all);
        assert_eq!(p.mode(Some(80)), Mode::Permissive);
        assert_eq!(p.mode(Some(8080)), Mode::Disable);
        assert_eq!(p.mode(Some(9090)), Mode::Permissive);
    }

    #[test]
    fn the_chosen_policy_is_the_first_after_the_standard_stable_sort_even_with_missing_times() {
        // Up to 20 namespace-wide policies with and without timestamps (a missing one compares
        // equal to any): the winner is what `sort_by` with that comparison puts first.
        let times = [
            None,
            Some("2023-05-01"),
            Some("2021-01-01"),
            Some("2024-01-01"),
        ];
        let mut seed = 7_u32;
        for round in 0..400 {
            let len = 1 + round % 20;
            let all: Vec<Compiled> = (0..len)
                .map(|i| {
                    seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    let created = times[(seed >> 16) as usize % times.len()];
                    pa(
                        "default",
                        &format!("p{i}"),
                        false,
                        Mode::Strict,
                        &[],
                        created,
                    )
                })
                .collect();
            let mut sorted: Vec<&Compiled> = all.iter().collect();
            sorted.sort_by(|a, b| match (&a.created, &b.created) {
                (Some(x), Some(y)) => x.cmp(y),
                _ => std::cmp::Ordering::Equal,
            });
            let expected = format!("ns[default]-peerauthentication[{}]", sorted[0].name);
            assert_eq!(compose_for(&all).source, expected, "round {round}");
        }
    }

    #[test]
    fn oldest_policy_of_a_scope_wins() {
        let all = [
            pa(
                "default",
                "newer",
                false,
                Mode::Permissive,
                &[],
                Some("2024-02-01T00:00:00Z"),
            ),
            pa(
                "default",
                "older",
                false,
                Mode::Strict,
                &[],
                Some("2023-01-01T00:00:00Z"),
            ),
        ];
        assert_eq!(compose_for(&all).mode(None), Mode::Strict);
    }

    #[test]
    fn selector_policies_in_root_namespace_and_non_matching_selectors_are_ignored() {
        let mut root_selector = pa("istio-system", "root-wl", true, Mode::Strict, &[], None);
        root_selector.selector = Some(
            [("app".to_string(), "web".to_string())]
                .into_iter()
                .collect(),
        );
        let mut other = pa("default", "other", true, Mode::Strict, &[], None);
        other.selector = Some(
            [("app".to_string(), "db".to_string())]
                .into_iter()
                .collect(),
        );
        assert_eq!(
            compose_for(&[root_selector, other]).mode(None),
            Mode::Permissive
        );
    }
}
