"""Dry-run and AUDIT results, compared with Envoy's own RBAC filter in the same Envoy.

One Envoy runs meshguard on its test listener and, on a second listener, the RBAC filters istiod
generates for the same AuthorizationPolicies (``meshguard_tools.istio_rbac``: AUDIT as action LOG,
then DENY, then ALLOW; ``istio.io/dry-run`` policies as ``shadow_rules`` with the stat prefixes
``istio_dry_run_deny_`` / ``istio_dry_run_allow_``, none for AUDIT). The same requests go to both and
the tests compare:

* the response status (a dry-run policy never blocks; only the enforced DENY does);
* the access-log fields, one by one: Envoy's ``%DYNAMIC_METADATA(envoy.filters.http.rbac:<key>)%`` and
  ``%DYNAMIC_METADATA(envoy.common:access_log_hint)%`` against meshguard's
  ``%FILTER_STATE(wasm.envoy.filters.http.rbac.<key>:PLAIN)%`` and
  ``%FILTER_STATE(wasm.envoy.common.access_log_hint:PLAIN)%`` (a Wasm module cannot write dynamic
  metadata; the README lists the difference);
* the counters of ``/stats``: Envoy's ``http.<stat_prefix>.rbac.<prefix>.shadow_{allowed,denied}`` (Envoy joins
  the shadow prefix with a dot: ``rbac.istio_dry_run_deny_.shadow_denied``; ``rbac.shadow_allowed`` for the
  AUDIT filter) against meshguard's ``wasmcustom.rbac.<prefix>.shadow_{allowed,denied}`` (the same name after
  the HCM's ``http.<stat_prefix>.``), as increments over the requests sent, and meshguard's in
  ``/stats/prometheus`` (``envoy_rbac_istio_dry_run_deny__shadow_denied{envoy_rbac_prefix="wasmcustom"}``).
"""
import dataclasses
import re
import time

from meshguard_tools import envoy_config
from meshguard_tools.e2e.client import last_log_line
from meshguard_tools.envoy_config import free_port
from meshguard_tools.istio_rbac import istio_rbac_filters

NS, LABELS = "default", {"app": "details"}


def ap(name: str, action: str, paths: list, dry_run: bool = False, methods: list | None = None) -> dict:
    operation: dict = {"paths": paths}
    if methods:
        operation["methods"] = methods
    meta: dict = {"name": name, "namespace": NS}
    if dry_run:
        meta["annotations"] = {"istio.io/dry-run": "true"}
    return {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy", "metadata": meta,
            "spec": {"action": action, "rules": [{"to": [{"operation": operation}]}]}}


POLICIES = [
    ap("dry-deny-admin", "DENY", ["/admin*"], dry_run=True),
    ap("dry-allow-public", "ALLOW", ["/public*"], dry_run=True, methods=["GET"]),
    ap("audit-audit", "AUDIT", ["/audit*"]),
    ap("dry-audit-trace", "AUDIT", ["/trace*"], dry_run=True),
    ap("deny-blocked", "DENY", ["/blocked*"]),
]

# (access-log field, dynamic metadata namespace, key): every key the RBAC filters above can publish.
RBAC = "envoy.filters.http.rbac"
FIELDS = [("hint", "envoy.common", "access_log_hint")] + [
    (f"{name}_{what}", RBAC, f"{prefix}shadow_{key}")
    for name, prefix in (("deny", "istio_dry_run_deny_"), ("allow", "istio_dry_run_allow_"), ("audit", ""))
    for what, key in (("result", "engine_result"), ("policy", "effective_policy_id"))
]


def log_format(command) -> str:
    fields = " ".join(f"{field}={command(ns, key)}" for field, ns, key in FIELDS)
    return f"%REQ(:METHOD)% %REQ(:PATH)% %RESPONSE_CODE% {fields}\n"


NATIVE_FORMAT = log_format(lambda ns, key: f"%DYNAMIC_METADATA({ns}:{key})%")
MESHGUARD_FORMAT = log_format(lambda ns, key: f"%FILTER_STATE(wasm.{ns}.{key}:PLAIN)%")

SHADOW_COUNTER = re.compile(r"rbac\.((?:istio_dry_run_(?:allow|deny)_\.)?shadow_(?:allowed|denied))$")


def native_listener(port: int, log_path: str, stat_prefix: str = "native_rbac") -> dict:
    hcm = envoy_config.http_connection_manager(
        stat_prefix, wasm=False, extra_filters=istio_rbac_filters(POLICIES, NS, LABELS))
    hcm["access_log"] = [{
        "name": "envoy.access_loggers.file",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
                         "path": log_path,
                         "log_format": {"text_format_source": {"inline_string": NATIVE_FORMAT}}}}]
    return {"name": "native_rbac", "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
            "traffic_direction": "INBOUND",
            "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                                            "typed_config": hcm}]}]}


def fields_of(line: str) -> dict:
    return dict(part.split("=", 1) for part in line.split()[3:])


def shadow_counters(client, owner: str) -> dict:
    """``<prefix>shadow_*`` counters of Envoy's RBAC filter on the native listener (``owner="native"``,
    ``http.native_rbac.rbac.*``) or meshguard's (``wasmcustom.rbac.*``), keyed by the name after ``rbac.``."""
    head = "http.native_rbac." if owner == "native" else "wasmcustom."
    out = {}
    for line in client.admin("/stats?filter=shadow_").splitlines():
        name, _, value = line.partition(": ")
        m = SHADOW_COUNTER.search(name)
        if m and name == f"{head}rbac.{m.group(1)}":
            out[m.group(1)] = int(value)
    return out


def increments(before: dict, after: dict) -> dict:
    return {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}


# (method, path, status): one request per dry-run / AUDIT situation.
CASES = [
    ("GET", "/admin/x", 200),    # dry-run DENY matches (would deny); dry-run ALLOW does not match
    ("GET", "/public/x", 200),   # dry-run ALLOW matches (would allow)
    ("POST", "/public/x", 200),  # dry-run ALLOW does not match (would deny)
    ("GET", "/audit/x", 200),    # AUDIT matches: access-log hint true
    ("GET", "/trace/x", 200),    # dry-run AUDIT matches: the LOG filter's shadow result only
    ("GET", "/blocked/x", 403),  # enforced DENY: the ALLOW filter (and its shadow engine) never runs
]


def test_dry_run_and_audit_results_match_envoys_rbac_filter(envoy_pool, tmp_path):
    """Same requests to meshguard and to Envoy's RBAC filters (as istiod configures them for these
    dry-run DENY, dry-run ALLOW, AUDIT, dry-run AUDIT and enforced DENY policies) in one Envoy: equal
    response statuses (dry-run never blocks), equal access-log fields (Envoy's dynamic metadata keys
    against meshguard's filter state of the same namespace and key), and equal increments of the
    ``rbac.<prefix>.shadow_{allowed,denied}`` counters in ``/stats``."""
    port, log = free_port(), tmp_path / "native.log"
    cfg = {"workload": {"namespace": NS, "labels": LABELS}, "resources": POLICIES}
    mg = envoy_pool.get(cfg, extra_listeners=[native_listener(port, str(log))], access_log=True,
                        access_log_format=MESHGUARD_FORMAT)
    native = dataclasses.replace(mg, plain_port=port)
    before = {owner: shadow_counters(mg, owner) for owner in ("native", "meshguard")}
    for i, (method, path, status) in enumerate(CASES):
        for c in (mg, native):
            r = c.request(method, f"{path}?case={i}")
            assert r.status == status, (c.plain_port, method, path, r)
    published = set()
    for i, (method, path, _) in enumerate(CASES):
        marker = f"{method} {path}?case={i} "
        mine, envoys = fields_of(mg.access_log_line(marker)), fields_of(last_log_line(log, marker))
        assert mine == envoys, (method, path, mine, envoys)
        published |= {k for k, v in envoys.items() if v != "-"}
    # Every key was exercised by at least one case (the comparison above is not vacuous).
    assert published == {field for field, _, _ in FIELDS}, published

    deadline = time.monotonic() + 5
    while True:  # meshguard flushes its counters once a second
        after = {owner: shadow_counters(mg, owner) for owner in ("native", "meshguard")}
        want = increments(before["native"], after["native"])
        got = increments(before["meshguard"], after["meshguard"])
        if got == want or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert want and got == want, (got, want)
    # Prometheus: Envoy's default `rbac_prefix` tag takes `wasmcustom` as the prefix, giving
    # envoy_rbac_istio_dry_run_deny__shadow_denied{envoy_rbac_prefix="wasmcustom"}.
    prom = mg.admin("/stats/prometheus")
    for name, value in after["meshguard"].items():
        sample = rf'^envoy_rbac_{name.replace(".", "_")}{{envoy_rbac_prefix="wasmcustom"}} {value}$'
        assert re.search(sample, prom, re.M), (name, value)


def test_dry_run_and_audit_publish_nothing_without_such_policies(envoy_pool):
    """Only enforced policies: none of the dry-run / AUDIT filter state is set (the fields print ``-``,
    as Envoy's do when its RBAC filters have no shadow rules and no LOG filter exists)."""
    cfg = {"workload": {"namespace": NS, "labels": LABELS}, "resources": [POLICIES[-1]]}
    c = envoy_pool.get(cfg, access_log=True, access_log_format=MESHGUARD_FORMAT)
    assert c.request("GET", "/blocked/x?none=1").status == 403
    assert c.request("GET", "/ok?none=2").status == 200
    for marker in ("/blocked/x?none=1 ", "/ok?none=2 "):
        assert set(fields_of(c.access_log_line(marker)).values()) == {"-"}


PROM_RBAC = re.compile(r"^(envoy_http_rbac|rbac)\{([^}]*)\} (\d+)$", re.M)


def dry_run_samples(prom: str, metric: str) -> dict:
    """``{(authz_dry_run_action, authz_dry_run_result): value}`` of one Prometheus metric's samples."""
    out = {}
    for name, labels, value in PROM_RBAC.findall(prom):
        tags = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        if name == metric and "authz_dry_run_result" in tags:
            out[(tags.get("authz_dry_run_action", ""), tags["authz_dry_run_result"])] = int(value)
    return out


def test_dry_run_counters_carry_istios_prometheus_labels(envoy_pool, tmp_path):
    """With the stats tags of Istio's bootstrap (``envoy_config.ISTIO_RBAC_STATS_CONFIG``; Istio's stat prefixes
    end in ``;``), Envoy's ``http.<p>;.rbac.istio_dry_run_deny_.shadow_denied`` is exported as
    ``envoy_http_rbac{authz_dry_run_action="deny",authz_dry_run_result="denied",http_conn_manager_prefix="<p>"}``
    and meshguard's ``wasmcustom.rbac.istio_dry_run_deny_.shadow_denied`` as
    ``rbac{authz_dry_run_action="deny",authz_dry_run_result="denied"}``: compared, the samples of both metrics
    by their two ``authz_dry_run_*`` labels after the same requests."""
    port, log = free_port(), tmp_path / "native.log"
    cfg = {"workload": {"namespace": NS, "labels": LABELS}, "resources": POLICIES}
    mg = envoy_pool.get(cfg, extra_listeners=[native_listener(port, str(log), "native_rbac;")],
                        stats_config=envoy_config.ISTIO_RBAC_STATS_CONFIG)
    native = dataclasses.replace(mg, plain_port=port)
    for i, (method, path, status) in enumerate(CASES):
        for c in (mg, native):
            assert c.request(method, f"{path}?prom={i}").status == status
    deadline = time.monotonic() + 5
    while True:  # meshguard flushes its counters once a second
        prom = mg.admin("/stats/prometheus")
        envoys, mine = dry_run_samples(prom, "envoy_http_rbac"), dry_run_samples(prom, "rbac")
        if mine == envoys or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert any(envoys.values()) and mine == envoys, (mine, envoys)
