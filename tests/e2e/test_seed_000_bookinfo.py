"""Seed 000 (SuperGloo SecurityRules on Bookinfo), step by step, through a real Envoy.

Every step is one manifest of wasmplugin/bookinfo-securityrule/ (a mesh-wide WasmPlugin, so every Bookinfo
sidecar gets the same configuration); the details, reviews, ratings and productpage sidecars are separate
listener pairs of one Envoy, each with its own `workload` (what Istio's node metadata gives each pod; the
first pair takes it from node metadata for real). Callers are identified by SPIFFE client certificates:
`bookinfo-productpage` (cluster.local/ns/default/sa/bookinfo-productpage, Bookinfo's productpage service
account) and `bookinfo-reviews`."""
import pytest

from meshguard_tools.e2e.policies import OK_BODY
from meshguard_tools.e2e.seeds import RBAC_DENIED, listener_clients, node, plugin_config, with_workload

DIR = "bookinfo-securityrule"
STEPS = {
    "example": "00-example-productpage-to-reviews.yaml",
    "step1": "01-enable-security.yaml",
    "step2": "02-productpage-to-details.yaml",
    "step3": "03-productpage-to-default.yaml",
    "deleted": "04-delete-rules.yaml",
}
PP = "bookinfo-productpage"


@pytest.fixture(scope="module")
def sidecars(envoy_pool):
    """(step, app) -> Client, all in one Envoy. ('step1', 'details') uses the manifest unchanged with the
    workload from node metadata."""
    configs = {("step1", "details"): plugin_config(f"{DIR}/{STEPS['step1']}")}
    plan = {
        "example": ["reviews"],
        "step1": ["reviews", "productpage"],
        "step2": ["details", "reviews"],
        "step3": ["details", "reviews", "ratings"],
        "deleted": ["details", "reviews"],
    }
    for step, apps in plan.items():
        for app in apps:
            configs[(step, app)] = with_workload(plugin_config(f"{DIR}/{STEPS[step]}"), app, version="v1")
    named = {f"{s}-{a}": c for (s, a), c in configs.items()}
    clients = listener_clients(envoy_pool, named, node_metadata=node("details", version="v1"))
    return {tuple(k.split("-", 1)): v for k, v in clients.items()}


def call(c, path="/", identity=PP, method="GET"):
    return c.request(method, path, identity=identity, body=b"" if method != "GET" else None)


def allowed(r):
    return r.status == 200 and r.body == OK_BODY


def denied(r):
    return r.status == 403 and r.body == RBAC_DENIED


def test_before_any_rule_everything_passes(sidecars):
    # "When no SecurityRules are present in your cluster, all traffic will be whitelisted."
    for app in ("details", "reviews"):
        c = sidecars[("deleted", app)]
        assert allowed(call(c, f"/{app}/0")), app
        assert allowed(call(c, f"/{app}/0", identity="bookinfo-reviews")), app
        assert allowed(call(c, f"/{app}/0", identity=None)), app


def test_step1_productpage_only_rule_makes_details_and_reviews_deny_productpage(sidecars):
    for app in ("details", "reviews"):
        r = call(sidecars[("step1", app)], f"/{app}/0")
        assert denied(r), (app, r)
    # The rule's own traffic (productpage -> productpage) passes; anything else to productpage does not.
    assert allowed(call(sidecars[("step1", "productpage")], "/productpage"))
    assert denied(call(sidecars[("step1", "productpage")], "/productpage", identity="bookinfo-reviews"))
    assert denied(call(sidecars[("step1", "productpage")], "/productpage", identity=None))


def test_step2_productpage_may_reach_details(sidecars):
    assert allowed(call(sidecars[("step2", "details")], "/details/0"))
    assert denied(call(sidecars[("step2", "reviews")], "/reviews/0"))
    # Only productpage's identity is whitelisted, and only over mTLS.
    assert denied(call(sidecars[("step2", "details")], "/details/0", identity="bookinfo-reviews"))
    assert denied(call(sidecars[("step2", "details")], "/details/0", identity=None))
    # A caller named like the service but with another service account is not productpage.
    assert denied(call(sidecars[("step2", "details")], "/details/0", identity="productpage"))


def test_step3_productpage_may_reach_anything_in_default(sidecars):
    for app in ("details", "reviews", "ratings"):
        r = call(sidecars[("step3", app)], f"/{app}/0", method="POST")
        assert allowed(r), (app, r)
    # The rules name productpage as the only source: reviews -> ratings stays denied with Bookinfo's
    # per-service service accounts (see the comment in 03-productpage-to-default.yaml).
    assert denied(call(sidecars[("step3", "ratings")], "/ratings/0", identity="bookinfo-reviews"))


def test_step4_deleting_the_rules_reenables_all_traffic(sidecars):
    for app in ("details", "reviews"):
        assert allowed(call(sidecars[("deleted", app)], f"/{app}/0"))
        assert allowed(call(sidecars[("deleted", app)], f"/{app}/0", identity="foo-bar"))


def test_example_rule_allows_only_get_details_paths_from_productpage_to_reviews(sidecars):
    c = sidecars[("example", "reviews")]
    assert allowed(call(c, "/details/0"))
    assert allowed(call(c, "/details/0?x=1"))
    assert denied(call(c, "/details/0", method="POST"))
    assert denied(call(c, "/reviews/0"))
    assert denied(call(c, "/details/0", identity="bookinfo-reviews"))
