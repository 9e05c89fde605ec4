"""Sidecar egress with Istio 1.31 semantics, through a real Envoy on an OUTBOUND listener and through
`meshguard check` (same pipeline): `~` exclusions (istio/istio#60581: `~ns/*`, `~ns/host`, `~/host`;
exclusion wins over inclusion), `egress[].port` (a call to a port with its own egress listener sees
only that listener's hosts; other ports see the portless listener) and the REGISTRY_ONLY registry
(ServiceEntry hosts on their ports, visible per exportTo, in their resource's namespace; cluster-local
service names). The destination port is the listener's port, as Istio's original-destination listener
restores the port the application called."""
import pytest

from meshguard_tools.envoy_config import free_port
from meshguard_tools.e2e.policies import OK_BODY
from meshguard_tools.e2e.seeds import listener_clients
from test_cli_parity import Sent, cli, mismatches  # noqa: F401 (cli is a fixture)

NS = "bookinfo"


def config(egress: list[dict], entries: tuple = ()) -> dict:
    return {"workload": {"namespace": NS, "labels": {"app": "productpage"}},
            "outboundTrafficPolicy": "REGISTRY_ONLY", "direction": "outbound",
            "resources": [{"apiVersion": "networking.istio.io/v1", "kind": "Sidecar",
                           "metadata": {"name": "egress", "namespace": NS},
                           "spec": {"egress": egress}}, *entries]}


def service_entry(name: str, namespace: str, hosts: list[str], port: int, version="v1", **spec) -> dict:
    return {"apiVersion": f"networking.istio.io/{version}", "kind": "ServiceEntry",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"hosts": hosts, "ports": [{"number": port, "name": "http", "protocol": "HTTP"}],
                     "location": "MESH_EXTERNAL", "resolution": "DNS", **spec}}


EXCLUSIONS = {
    "ns": config([{"hosts": ["*/*", "~prod-us2/*"]}]),
    "ns-host": config([{"hosts": ["bookinfo/*", "~bookinfo/ratings.bookinfo.svc.cluster.local"]}]),
    "any-ns-host": config([{"hosts": ["*/*", "~/ratings.bookinfo.svc.cluster.local"]}]),
    "nothing": config([{"hosts": ["~/*"]}]),
}

CASES = [
    ("ns", "api.prod-us2:8080", 403), ("ns", "api.prod-us2.svc.cluster.local", 403),
    ("ns", "api.prod-us1:8080", 200), ("ns", "reviews", 200),
    ("ns-host", "ratings:9080", 403), ("ns-host", "reviews:9080", 200),
    ("ns-host", "ratings.bookinfo.svc.cluster.local", 403),
    ("any-ns-host", "ratings.bookinfo:9080", 403), ("any-ns-host", "reviews.bookinfo", 200),
    ("nothing", "reviews:9080", 403),
]


def send(client, host) -> tuple[int, bytes]:
    r = client.request("GET", "/", headers=[("host", host)])
    return r.status, r.body


def hosts_answer(client, cfg, port, want, cli, tmp_path) -> None:
    """Each (host, status) of `want` gets that status from Envoy, and `meshguard check` agrees."""
    sent = []
    for host, status in want:
        got = send(client, host)
        assert got[0] == status, (host, got)
        sent.append(Sent(cfg, "OUTBOUND", None, "GET", "/", [("host", host)], None, port, got[0], got[1]))
    compared, diff = mismatches(cli, sent, tmp_path)
    assert (compared, diff) == (len(want), [])


@pytest.fixture(scope="module")
def exclusions(envoy_pool):
    return listener_clients(envoy_pool, EXCLUSIONS, directions={k: "OUTBOUND" for k in EXCLUSIONS})


def test_tilde_exclusions_win_over_inclusions(exclusions, cli, tmp_path):
    sent = []
    for name, host, want in CASES:
        status, body = send(exclusions[name], host)
        assert status == want, (name, host, status, body)
        if want == 200:
            assert body == OK_BODY
        else:
            assert body.startswith(b"meshguard: egress to ") and b"Sidecar bookinfo/egress" in body, body
        sent.append(Sent(EXCLUSIONS[name], "OUTBOUND", None, "GET", "/", [("host", host)], None,
                         exclusions[name].plain_port, status, body))
    compared, diff = mismatches(cli, sent, tmp_path)
    assert (compared, diff) == (len(CASES), [])


def test_egress_port_selects_the_listener(envoy_pool, cli, tmp_path):
    port = free_port()
    cfgs = {"owned": config([{"port": {"number": port, "protocol": "HTTP", "name": "http"},
                              "hosts": ["./reviews.bookinfo.svc.cluster.local"]},
                             {"hosts": ["./ratings.bookinfo.svc.cluster.local"]}])}
    # The same Sidecar seen from a listener on another port: the portless egress listener decides.
    cfgs["other"] = cfgs["owned"]
    only_port = config([{"port": {"number": port}, "hosts": ["*/*"]}])
    cfgs["no-catch-all"] = only_port
    clients = listener_clients(envoy_pool, cfgs, directions={k: "OUTBOUND" for k in cfgs}, plain_port=port)
    assert clients["owned"].plain_port == port
    want = [("owned", "reviews:9080", 200), ("owned", "ratings:9080", 403),
            ("other", "reviews:9080", 403), ("other", "ratings:9080", 200),
            ("no-catch-all", "reviews:9080", 403)]
    sent = []
    for name, host, status in want:
        got = send(clients[name], host)
        assert got[0] == status, (name, host, got)
        sent.append(Sent(cfgs[name], "OUTBOUND", None, "GET", "/", [("host", host)], None,
                         clients[name].plain_port, got[0], got[1]))
    compared, diff = mismatches(cli, sent, tmp_path)
    assert (compared, diff) == (len(want), [])


def test_registry_only_lets_through_registered_hosts_only(envoy_pool, cli, tmp_path):
    port = free_port()
    entries = (
        service_entry("apis", "egress", ["api.example.com", "*.googleapis.com"], port),
        service_entry("partner", "partner", ["db.partner.com"], port, version="v1beta1"),
        service_entry("hidden", "other", ["hidden.example.com"], port, version="v1alpha3", exportTo=["."]),
        service_entry("elsewhere", "egress", ["other-port.example.com"], port + 1 if port < 65535 else 1),
    )
    cfg = config([{"hosts": ["*/*", "~partner/*"]}], entries)
    client = listener_clients(envoy_pool, {"registry": cfg}, directions={"registry": "OUTBOUND"},
                              plain_port=port)["registry"]
    want = [("api.example.com", 200), ("storage.googleapis.com", 200), (f"api.example.com:{port}", 200),
            ("reviews:9080", 200), ("reviews.other.svc.cluster.local", 200), ("reviews.other.svc", 200),
            ("www.google.com", 403), ("db.partner.com", 403), ("hidden.example.com", 403),
            ("other-port.example.com", 403)]
    hosts_answer(client, cfg, port, want, cli, tmp_path)
    assert send(client, "www.google.com")[1] == (
        b"meshguard: egress to www.google.com is not allowed by Sidecar bookinfo/egress "
        b"(outboundTrafficPolicy REGISTRY_ONLY)")


def test_service_entry_fields_are_strict(cli, tmp_path):
    import json
    import subprocess

    good = config([{"hosts": ["*/*"]}], (service_entry("se", "egress", ["a.example.com"], 443,
                                                          addresses=["10.0.0.1"], endpoints=[{"address": "1.1.1.1"}],
                                                          subjectAltNames=["x"]),))
    bad = config([{"hosts": ["*/*"]}], (service_entry("se", "egress", ["a.example.com"], 443, hostz=["x"]),))
    for cfg, code in ((good, 0), (bad, 1)):
        f = tmp_path / f"c{code}.json"
        f.write_text(json.dumps(cfg), encoding="utf-8")
        p = subprocess.run([cli, "lint", str(f)], capture_output=True, text=True, timeout=60)
        assert p.returncode == code, (p.stdout, p.stderr)
        if code:
            assert "resources[1].spec" in p.stdout + p.stderr and "hostz" in p.stdout + p.stderr


def test_registry_only_mesh_without_a_sidecar_still_blackholes_unregistered_hosts(envoy_pool, cli, tmp_path):
    # istiod's default scope imports */*; a REGISTRY_ONLY mesh routes only to registered hosts.
    port = free_port()
    cfg = {"workload": {"namespace": NS, "labels": {"app": "productpage"}},
           "outboundTrafficPolicy": "REGISTRY_ONLY", "direction": "outbound",
           "resources": [service_entry("apis", "egress", ["api.example.com"], port)]}
    client = listener_clients(envoy_pool, {"default": cfg}, directions={"default": "OUTBOUND"},
                              plain_port=port)["default"]
    want = [("reviews:9080", 200), ("ratings.other.svc.cluster.local", 200), ("api.example.com", 200),
            ("www.google.com", 403)]
    hosts_answer(client, cfg, port, want, cli, tmp_path)
    assert send(client, "www.google.com")[1] == (
        b"meshguard: egress to www.google.com is not allowed by Sidecar (none: the mesh default */*) "
        b"(outboundTrafficPolicy REGISTRY_ONLY)")
