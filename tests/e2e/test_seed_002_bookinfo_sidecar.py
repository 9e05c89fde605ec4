"""Seed 002 (Kiali blog: Istio Sidecar egress for Bookinfo's productpage), through a real Envoy.

wasmplugin/bookinfo-sidecar/sidecar-productpage.yaml runs on productpage's OUTBOUND side (WasmPlugin
`match: [{mode: CLIENT}]`); here a listener with `traffic_direction: OUTBOUND` stands in for the sidecar's
outbound listener, and the application's plaintext calls carry the called service in Host, as
`requests.get('http://ratings:9080/ratings/0')` does."""
import copy

import pytest

from meshguard_tools.e2e.policies import OK_BODY
from meshguard_tools.e2e.seeds import listener_clients, plugin_config

MANIFEST = "bookinfo-sidecar/sidecar-productpage.yaml"


@pytest.fixture(scope="module")
def sidecar(envoy_pool):
    applied = plugin_config(MANIFEST)
    allow_any = copy.deepcopy(applied)
    del allow_any["outboundTrafficPolicy"]  # Istio's default ALLOW_ANY
    deleted = copy.deepcopy(applied)
    deleted["resources"] = []  # kubectl delete sidecar sidecar-productpage
    return listener_clients(
        envoy_pool,
        {"outbound": applied, "inbound": applied, "allow-any": allow_any, "deleted": deleted},
        directions={"outbound": "OUTBOUND", "allow-any": "OUTBOUND", "deleted": "OUTBOUND"},
    )


def get(c, host, path):
    return c.request("GET", path, headers=[("host", host)])


@pytest.mark.parametrize("host,path", [("reviews:9080", "/reviews/0"), ("details:9080", "/details/0"),
                                       ("details.bookinfo:9080", "/details/0"),
                                       ("reviews.bookinfo.svc.cluster.local:9080", "/reviews/0")])
def test_productpage_reaches_reviews_and_details(sidecar, host, path):
    r = get(sidecar["outbound"], host, path)
    assert (r.status, r.body) == (200, OK_BODY), r


def test_productpage_cannot_reach_ratings(sidecar):
    r = get(sidecar["outbound"], "ratings:9080", "/ratings/0")
    assert r.status == 403, r
    assert r.text == ("meshguard: egress to ratings.bookinfo.svc.cluster.local is not allowed by Sidecar "
                      "bookinfo/sidecar-productpage (outboundTrafficPolicy REGISTRY_ONLY)"), r
    # Another namespace's ratings, or an external host, are not in the egress list either.
    assert get(sidecar["outbound"], "ratings.default:9080", "/ratings/0").status == 403
    assert get(sidecar["outbound"], "www.example.com", "/").status == 403
    # istio-system/* (kept from the tutorial) is reachable.
    assert get(sidecar["outbound"], "istiod.istio-system.svc:15012", "/").status == 200


def test_egress_is_enforced_only_on_the_outbound_side(sidecar):
    # The same configuration on an inbound listener (direction auto): calls TO productpage are not
    # subject to productpage's egress list.
    assert get(sidecar["inbound"], "ratings:9080", "/ratings/0").status == 200


def test_without_registry_only_or_after_deleting_the_sidecar_ratings_is_reachable(sidecar):
    # "by default Istio comes with ALLOW_ANY which would prevent these settings from working"
    assert get(sidecar["allow-any"], "ratings:9080", "/ratings/0").status == 200
    # Cleaning up: kubectl delete sidecar sidecar-productpage
    assert get(sidecar["deleted"], "ratings:9080", "/ratings/0").status == 200


def test_inbound_policies_do_not_apply_to_outbound_calls(envoy_pool):
    # Istio enforces PeerAuthentication and AuthorizationPolicy on the inbound side only: the same
    # configuration on productpage's outbound listener must not deny its own calls.
    cfg = plugin_config(MANIFEST)
    cfg["resources"] = cfg["resources"] + [
        {"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
         "metadata": {"name": "default", "namespace": "bookinfo"}, "spec": {"mtls": {"mode": "STRICT"}}},
        {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
         "metadata": {"name": "allow-nothing", "namespace": "bookinfo"}, "spec": {}},
    ]
    clients = listener_clients(envoy_pool, {"out": cfg, "in": cfg}, directions={"out": "OUTBOUND"})
    assert get(clients["out"], "reviews:9080", "/reviews/0").status == 200
    assert get(clients["out"], "ratings:9080", "/ratings/0").status == 403  # still the egress list
    r = get(clients["in"], "reviews:9080", "/reviews/0")
    assert r.status == 403 and "mTLS is required" in r.text, r
