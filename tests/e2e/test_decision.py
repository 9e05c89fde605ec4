"""The decision is exported as `x-meshguard-decision` (when decisionHeader is true) and as filter state
`wasm.meshguard.decision` (access log): `<allow|deny> <policy-id|none>`, ids `ns[<ns>]-policy[<name>]-rule[<i>]`."""
from meshguard_tools.e2e.policies import allow, config, deny, rule, src, to

PC = config(
    allow("details-viewer", [
        rule(to_=[to(paths=["/never"])]),
        rule(from_=[src(principals=["cluster.local/ns/default/sa/productpage"])]),
    ]),
    deny("deny-admin", [rule(to_=[to(paths=["/admin"])])]),
)


def test_decision_header_values(envoy):
    c = envoy(PC)
    r = c.request("GET", "/x", identity="productpage")
    assert (r.status, r.header("x-meshguard-decision")) == (200, "allow ns[default]-policy[details-viewer]-rule[1]"), r
    r = c.request("GET", "/admin", identity="productpage")
    assert (r.status, r.header("x-meshguard-decision")) == (403, "deny ns[default]-policy[deny-admin]-rule[0]"), r
    r = c.request("GET", "/x")
    assert (r.status, r.header("x-meshguard-decision")) == (403, "deny none"), r


def test_decision_header_without_policies(envoy):
    r = envoy(config()).request("GET", "/")
    assert (r.status, r.header("x-meshguard-decision")) == (200, "allow none"), r


def test_no_decision_header_by_default(envoy):
    pc = dict(PC, decisionHeader=False)
    c = envoy(pc)
    assert c.request("GET", "/admin").header("x-meshguard-decision") is None
    assert c.request("GET", "/x", identity="productpage").header("x-meshguard-decision") is None


def test_decision_in_access_log_filter_state(envoy):
    c = envoy(dict(PC, decisionHeader=False), access_log=True)
    c.request("GET", "/admin?log=1", identity="productpage")
    assert "403 deny ns[default]-policy[deny-admin]-rule[0]" in c.access_log_line("/admin?log=1")
    c.request("GET", "/ok?log=2", identity="productpage")
    assert "200 allow ns[default]-policy[details-viewer]-rule[1]" in c.access_log_line("/ok?log=2")
