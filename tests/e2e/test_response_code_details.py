"""Response-code details of meshguard's local replies, read from Envoy's access log
(%RESPONSE_CODE_DETAILS%): an RBAC denial carries Envoy's RBAC text,
`rbac_access_denied_matched_policy[<policy id>]` (the matched DENY rule) or `[none]` (no ALLOW rule
matched), compared with Envoy's own RBAC filter (the filters istiod generates, envoy-test/istio_rbac.py)
for the same policies in the same Envoy; a plaintext request to a STRICT port and a refused egress
call carry meshguard's own documented details."""

from meshguard_tools.e2e.client import last_log_line
from meshguard_tools.envoy_config import free_port
from meshguard_tools.e2e.policies import OK_BODY

from meshguard_tools import envoy_config
from meshguard_tools.istio_rbac import istio_rbac_filters

NS, LABELS = "default", {"app": "details"}
POLICIES = [
    {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
     "metadata": {"name": "deny-admin", "namespace": NS},
     "spec": {"action": "DENY", "rules": [{"to": [{"operation": {"paths": ["/admin*"]}}]}]}},
    {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
     "metadata": {"name": "allow-public", "namespace": NS},
     "spec": {"rules": [{"to": [{"operation": {"methods": ["GET"], "paths": ["/public*", "/admin*"]}}]}]}},
]


def native_listener(port: int, log_path: str) -> dict:
    hcm = envoy_config.http_connection_manager(
        "native_rbac", wasm=False, extra_filters=istio_rbac_filters(POLICIES, NS, LABELS))
    hcm["access_log"] = [{
        "name": "envoy.access_loggers.file",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
                         "path": log_path,
                         "log_format": {"text_format_source": {"inline_string": envoy_config.ACCESS_LOG_FORMAT}}}}]
    return {"name": "native_rbac", "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
            "traffic_direction": "INBOUND",
            "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                                            "typed_config": hcm}]}]}


def details_of(line: str) -> str:
    return line.rsplit(" details=", 1)[1].strip()


def test_rbac_denials_carry_envoys_rbac_details(envoy_pool, tmp_path):
    import dataclasses

    port, log = free_port(), tmp_path / "native.log"
    cfg = {"workload": {"namespace": NS, "labels": LABELS}, "resources": POLICIES}
    mg = envoy_pool.get(cfg, extra_listeners=[native_listener(port, str(log))], access_log=True)
    native = dataclasses.replace(mg, plain_port=port)
    cases = [("GET", "/admin/x", 403, "rbac_access_denied_matched_policy[ns[default]-policy[deny-admin]-rule[0]]"),
             ("POST", "/public/x", 403, "rbac_access_denied_matched_policy[none]"),
             ("GET", "/other", 403, "rbac_access_denied_matched_policy[none]"),
             ("GET", "/public/x", 200, "via_upstream")]
    for i, (method, path, status, _) in enumerate(cases):
        for c in (mg, native):
            r = c.request(method, f"{path}?case={i}")
            assert r.status == status, (c.plain_port, method, path, r)
            if status == 200:
                assert r.body == OK_BODY
    for i, (method, path, status, want) in enumerate(cases):
        mine = details_of(mg.access_log_line(f"{path}?case={i}"))
        envoys = details_of(last_log_line(log, f"{path}?case={i}"))
        if status == 200:
            assert mine == envoys, (path, mine, envoys)  # Envoy's own details for its direct response
        else:
            assert (mine, envoys) == (want, want), path


def test_mtls_and_egress_denials_carry_meshguard_details(envoy_pool):
    strict = {"workload": {"namespace": NS, "labels": LABELS}, "resources": [
        {"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
         "metadata": {"name": "default", "namespace": NS}, "spec": {"mtls": {"mode": "STRICT"}}}]}
    c = envoy_pool.get(strict, access_log=True)
    assert c.request("GET", "/strict?d=1").status == 403
    assert details_of(c.access_log_line("/strict?d=1")) == "meshguard_mtls_required"

    egress = {"workload": {"namespace": NS, "labels": LABELS}, "outboundTrafficPolicy": "REGISTRY_ONLY",
              "direction": "outbound", "resources": [
                  {"apiVersion": "networking.istio.io/v1", "kind": "Sidecar",
                   "metadata": {"name": "default", "namespace": NS}, "spec": {"egress": [{"hosts": ["./*"]}]}}]}
    e = envoy_pool.get(egress, access_log=True)
    assert e.request("GET", "/egress?d=1", headers=[("host", "www.google.com")]).status == 403
    assert details_of(e.access_log_line("/egress?d=1")) == "meshguard_egress_denied"
    assert e.request("GET", "/egress?d=2", headers=[("host", "reviews")]).status == 200
