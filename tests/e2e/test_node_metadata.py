"""Without a `workload` in the plugin configuration, the workload comes from the proxy's node metadata
(`NAMESPACE`, `LABELS`), as on an Istio sidecar."""
from meshguard_tools.e2e.policies import assert_allowed, assert_denied, config, policy


def deny_all(name, namespace, selector=None):
    spec = {"action": "DENY", "rules": [{}]}
    if selector:
        spec["selector"] = {"matchLabels": selector}
    return policy(name, spec, namespace=namespace)


def without_workload(pc):
    pc = dict(pc)
    pc.pop("workload")
    return pc


NODE = {"NAMESPACE": "foo", "LABELS": {"app": "bar", "version": "v2"}}


def test_namespace_and_labels_from_node_metadata(envoy):
    c = envoy(without_workload(config(deny_all("deny-bar", "foo", {"app": "bar"}))), node_metadata=NODE)
    assert_denied(c.request("GET", "/"))


def test_node_metadata_namespace_scopes_policies(envoy):
    c = envoy(without_workload(config(deny_all("deny-default", "default"))), node_metadata=NODE)
    assert_allowed(c.request("GET", "/"), "a policy in namespace default does not apply to a workload in foo")


def test_node_metadata_labels_drive_selectors(envoy):
    c = envoy(without_workload(config(deny_all("deny-other", "foo", {"app": "other"}))), node_metadata=NODE)
    assert_allowed(c.request("GET", "/"))


def test_workload_in_config_wins_over_node_metadata(envoy):
    pc = config(deny_all("deny-foo", "foo"), namespace="default", labels={"app": "details"})
    assert_allowed(envoy(pc, node_metadata=NODE).request("GET", "/"))
