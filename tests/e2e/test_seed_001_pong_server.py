"""Seed 001 (pong-server tutorial): the two AuthorizationPolicies, step by step, through a real Envoy.

wasmplugin/pong-server/01-deny-pongs.yaml then 02-protect-pongs.yaml (the same WasmPlugin, replaced), each
loaded unchanged into a pong-server sidecar whose workload comes from node metadata (app=pong-server), as in
Istio. Callers: the ingress gateway (namespace istio-system, as the tutorial's curl through the load
balancer), productpage (namespace default), foo-bar (namespace foo), and plaintext."""
import pytest

from meshguard_tools.e2e.policies import OK_BODY
from meshguard_tools.e2e.seeds import RBAC_DENIED, listener_clients, node, plugin_config, with_workload


@pytest.fixture(scope="module")
def steps(envoy_pool):
    return listener_clients(envoy_pool, {
        "deny-pongs": plugin_config("pong-server/01-deny-pongs.yaml"),
        "protect-pongs": with_workload(plugin_config("pong-server/02-protect-pongs.yaml"), "pong-server",
                                       version="v1"),
    }, node_metadata=node("pong-server", version="v1"))


def test_step1_deny_get_pongs_from_outside_default(steps):
    c = steps["deny-pongs"]
    # The tutorial's curl through the load balancer: the ingress gateway is in istio-system.
    r = c.request("GET", "/pongs", identity="ingress")
    assert (r.status, r.body) == (403, RBAC_DENIED), r
    assert c.request("GET", "/pongs", identity="foo-bar").status == 403
    # No identity at all (plaintext) matches notNamespaces too.
    assert c.request("GET", "/pongs").status == 403
    # From namespace default: allowed.
    r = c.request("GET", "/pongs", identity="productpage")
    assert (r.status, r.body) == (200, OK_BODY), r
    # Only GET /pongs is denied.
    assert c.request("POST", "/pongs", identity="ingress", body=b"").status == 200
    assert c.request("GET", "/pongs/1", identity="ingress").status == 200
    assert c.request("GET", "/", identity="ingress").status == 200


def test_step2_x_token_protects_pongs(steps):
    c = steps["protect-pongs"]
    # "Without the x-token Header (Access Denied)"
    r = c.request("GET", "/pongs", identity="ingress")
    assert (r.status, r.body) == (403, RBAC_DENIED), r
    assert c.request("GET", "/pongs", headers=[("x-token", "wrong")], identity="ingress").status == 403
    # "With the x-token Header Set (Access Granted)", from anywhere, plaintext too.
    for ident in ("ingress", "foo-bar", None):
        r = c.request("GET", "/pongs", headers=[("x-token", "somerandomsequenceofstrings")], identity=ident)
        assert (r.status, r.body) == (200, OK_BODY), (ident, r)
    # deny-pongs is gone: other paths are open.
    assert c.request("GET", "/", identity="foo-bar").status == 200
