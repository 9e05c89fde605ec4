"""Decision counters and the access-log decision (README "Observability"): ``meshguard_allowed``,
``meshguard_denied``, ``meshguard_dry_run_denied``, ``meshguard_audited`` in Envoy's admin ``/stats`` (under
``wasmcustom.``) and ``/stats/prometheus``, flushed once a second; filter state ``wasm.meshguard.decision`` in
the access log via ``%FILTER_STATE(wasm.meshguard.decision:PLAIN)%``."""
from __future__ import annotations

import re
import time

from meshguard_tools.e2e.policies import allow, config, deny, policy, rule, src, to

# Labels of its own, so this Envoy (and its counters) is not shared with other tests.
LABELS = {"app": "metrics", "test": "decision-metrics"}
PRODUCTPAGE = "cluster.local/ns/default/sa/productpage"


PC = config(
    allow("viewer", [rule(from_=[src(principals=[PRODUCTPAGE])], to_=[to(paths=["/ok*"])])]),
    deny("deny-admin", [rule(to_=[to(paths=["/admin*"])])]),
    deny("dry-deny-beta", [rule(to_=[to(paths=["/ok/beta*"])])], annotations={"istio.io/dry-run": "true"}),
    policy("audit-ok", {"action": "AUDIT", "rules": [rule(to_=[to(paths=["/ok/audited*"])])]}),
    labels=LABELS,
    decision_header=False,
)


def counters(client) -> dict[str, int]:
    """``meshguard_*`` counters from /stats (``wasmcustom.meshguard_allowed: 3``)."""
    out = {}
    for line in client.admin("/stats?filter=meshguard_").splitlines():
        m = re.match(r"^(?:\S*\.)?(meshguard_\w+): (\d+)$", line.strip())
        if m:
            out[m.group(1)] = int(m.group(2))
    return out


def poll(fn, timeout: float = 3.0, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def test_decision_counters_and_access_log(envoy):
    c = envoy(PC, access_log=True)
    requests = [
        # (path, identity, status, access-log decision)
        ("/ok/1?m=1", "productpage", 200, "allow ns[default]-policy[viewer]-rule[0]"),
        ("/ok/2?m=2", "productpage", 200, "allow ns[default]-policy[viewer]-rule[0]"),
        ("/ok/beta?m=3", "productpage", 200, "allow ns[default]-policy[viewer]-rule[0]"),  # dry-run would deny
        ("/ok/audited?m=4", "productpage", 200, "allow ns[default]-policy[viewer]-rule[0]"),  # audited
        ("/admin?m=5", "productpage", 403, "deny ns[default]-policy[deny-admin]-rule[0]"),
        ("/ok/1?m=6", None, 403, "deny none"),  # no client certificate: no ALLOW rule matches
        ("/other?m=7", "reviews", 403, "deny none"),
    ]
    for path, identity, status, _ in requests:
        r = c.request("GET", path, identity=identity)
        assert r.status == status, (path, r)

    want = {"meshguard_allowed": 4, "meshguard_denied": 3, "meshguard_dry_run_denied": 1, "meshguard_audited": 1}

    def settled():
        s = counters(c)
        return s if all(s.get(k) == v for k, v in want.items()) else None

    s = poll(settled, timeout=3.0)
    assert s, f"counters not flushed within 3 s: {counters(c)} (want {want})"

    prom = c.admin("/stats/prometheus")
    for name, value in want.items():
        m = re.search(rf"^(\S*{name})(?:{{[^}}]*}})? (\d+)$", prom, re.M)
        assert m, f"{name} not in /stats/prometheus:\n{prom[:3000]}"
        assert int(m.group(2)) == value, (name, m.group(0))

    for path, _, status, decision in requests:
        line = c.access_log_line(f" {path} ")
        assert f"{status} {decision}" in line, line


def test_counters_only_grow(envoy):
    c = envoy(PC, access_log=True)
    time.sleep(1.1)  # let a pending flush land before taking the baseline
    before = counters(c)
    assert c.request("GET", "/ok/x?g=1", identity="productpage").status == 200
    assert c.request("GET", "/admin?g=2", identity="productpage").status == 403
    assert c.request("GET", "/admin?g=3").status == 403

    def settled():
        s = counters(c)
        grew = (s.get("meshguard_allowed", 0) - before.get("meshguard_allowed", 0),
                s.get("meshguard_denied", 0) - before.get("meshguard_denied", 0))
        return s if grew == (1, 2) else None

    assert poll(settled, timeout=3.0), f"before {before}, now {counters(c)}"
    assert "403 deny ns[default]-policy[deny-admin]-rule[0]" in c.access_log_line(" /admin?g=3 ")


def policy_counters(client) -> dict[str, int]:
    """Per-policy counters from /stats, named ``meshguard_policy=.=<policy id>;.;meshguard_policy_<outcome>``
    there; returned as ``meshguard_policy_<outcome>.<policy id>``."""
    out = {}
    for line in client.admin("/stats?filter=meshguard_policy_").splitlines():
        m = re.match(r"^(?:wasmcustom\.)?meshguard_policy=\.=(\S+?);\.;(meshguard_policy_\w+): (\d+)$", line.strip())
        if m:
            out[f"{m.group(2)}.{m.group(1)}"] = int(m.group(3))
    return out


def prometheus_policy_samples(client) -> dict[str, int]:
    """``meshguard_policy_<outcome>{meshguard_policy="<id>"} N`` lines of /stats/prometheus, keyed as above."""
    out = {}
    for line in client.admin("/stats/prometheus").splitlines():
        m = re.match(r'^(meshguard_policy_\w+)\{meshguard_policy="([^"]+)"\} (\d+)$', line)
        if m:
            out[f"{m.group(1)}.{m.group(2)}"] = int(m.group(3))
    return out


def test_per_policy_counters_name_the_deciding_policy(envoy):
    labels = {"app": "metrics", "test": "per-policy"}
    pc = config(
        allow("viewer", [rule(from_=[src(principals=[PRODUCTPAGE])], to_=[to(paths=["/ok*"])])]),
        deny("deny-admin", [rule(to_=[to(paths=["/admin*"])])]),
        deny("dry-deny-beta", [rule(to_=[to(paths=["/ok/beta*"])])], annotations={"istio.io/dry-run": "true"}),
        policy("audit-ok", {"action": "AUDIT", "rules": [rule(to_=[to(paths=["/ok/audited*"])])]}),
        labels=labels,
        decision_header=False,
    )
    c = envoy(pc)
    for path, identity in [("/ok/1", "productpage"), ("/ok/beta", "productpage"), ("/ok/audited", "productpage"),
                           ("/admin", "productpage"), ("/admin", None)]:
        c.request("GET", path, identity=identity)
    want = {
        "meshguard_policy_allowed.ns[default]-policy[viewer]": 3,
        "meshguard_policy_denied.ns[default]-policy[deny-admin]": 2,
        "meshguard_policy_dry_run_denied.ns[default]-policy[dry-deny-beta]": 1,
        "meshguard_policy_audited.ns[default]-policy[audit-ok]": 1,
    }

    def settled():
        s = policy_counters(c)
        return s if all(s.get(k) == v for k, v in want.items()) else None

    assert poll(settled, timeout=3.0), f"{policy_counters(c)} (want {want})"

    # Prometheus shape: one metric per outcome, the policy as a label (the bootstrap's stats_tags).
    prom = c.admin("/stats/prometheus")
    samples = prometheus_policy_samples(c)
    assert all(samples.get(k) == v for k, v in want.items()), (samples, want)
    for outcome in ("allowed", "denied", "dry_run_denied", "audited"):
        assert prom.count(f"# TYPE meshguard_policy_{outcome} counter") == 1, prom[:3000]
    assert "meshguard_policy=" not in prom.replace('{meshguard_policy="', "")
    loaded = re.search(r"^meshguard_config_loaded(?:\{\})? (\d+)$", prom, re.M)
    assert loaded and int(loaded.group(1)) >= 1, prom[:3000]


def latency_histogram(client) -> int | None:
    """The sample count of ``meshguard_decision_latency_us`` in /stats/prometheus, None when absent."""
    m = re.search(r"^meshguard_decision_latency_us_count(?:\{\})? (\d+)$", client.admin("/stats/prometheus"), re.M)
    return int(m.group(1)) if m else None


def test_decision_latency_histogram_only_when_asked(envoy):
    on = dict(PC, decisionLatencyHistogram=True, workload={"namespace": "default", "labels": {
        "app": "metrics", "test": "latency-on"}})
    c = envoy(on)
    for path, identity in [("/ok/1", "productpage"), ("/admin", "productpage"), ("/other", None)]:
        c.request("GET", path, identity=identity)
    # Envoy merges worker histograms into the admin view on its stats flush (5 s by default).
    assert poll(lambda: latency_histogram(c) == 3, timeout=12.0), c.admin("/stats/prometheus")[:3000]

    off = envoy(PC)
    off.request("GET", "/ok/1", identity="productpage")
    time.sleep(1.2)
    assert latency_histogram(off) is None
