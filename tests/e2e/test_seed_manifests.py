"""Every seed walk-through manifest (wasmplugin/<seed>/*.yaml) as a user applies it: it matches Istio's WasmPlugin
CRD, and its pluginConfig, unchanged, is accepted by meshguard's loader inside a real Envoy (a configuration error
makes on_configure fail and Envoy refuse to start). The schema side is tests/e2e/test_manifests.py (which walks
wasmplugin/ recursively); the behaviour of each step is tests/e2e/test_seed_00*_*.py."""
import pytest

from meshguard_tools.e2e.seeds import WASMPLUGIN_DIR, listener_clients, manifest_docs

SEED_DIRS = ("bookinfo-securityrule", "pong-server", "bookinfo-sidecar", "hipstershop", "keycloak-quarkus")
MANIFESTS = sorted(str(p.relative_to(WASMPLUGIN_DIR)) for d in SEED_DIRS for p in (WASMPLUGIN_DIR / d).glob("*.yaml"))


def test_every_seed_has_manifests():
    dirs = {m.split("/")[0] for m in MANIFESTS}
    assert dirs == set(SEED_DIRS)


@pytest.mark.parametrize("relpath", MANIFESTS)
def test_manifest_matches_the_wasmplugin_crd(relpath):
    crd = pytest.importorskip("test_wasmplugin_crd", reason="the vendored-CRD checks are not in this tree")
    for doc in manifest_docs(relpath):
        assert crd.crd_errors(doc) == [], relpath


def test_every_plugin_config_loads_unchanged_in_envoy(envoy_pool):
    configs = {}
    for relpath in MANIFESTS:
        for i, doc in enumerate(manifest_docs(relpath)):
            name = relpath.replace("/", "_").removesuffix(".yaml") + f"_{i}"
            configs[name] = doc["spec"]["pluginConfig"]
    clients = listener_clients(envoy_pool, configs, node_metadata={"NAMESPACE": "default", "LABELS": {"app": "x"}})
    # Envoy is up, so every configuration was accepted; each listener answers.
    for name, c in clients.items():
        assert c.request("GET", "/healthz").status in (200, 403), name
