"""`make footprint` delivers meshguard as Istio does (meshguard_tools/bench/delivery.py): an ECDS resource
in a binary protobuf DiscoveryResponse, written by a small encoder of its own. The real Envoy must read
that file into the same filter the inline bootstrap carries (name, code, configuration string, failure
policy), and meshguard must decide with it on both listeners; the JSON file and a distinct vm_id per
listener (one resource each) too."""
from __future__ import annotations

import json
import urllib.error
import urllib.request

from meshguard_tools import envoy_config, launcher
from meshguard_tools.bench import delivery, policies
from meshguard_tools.e2e.fixtures import WASM


def status(port: int, path: str) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def bootstrap(cert_dir) -> tuple[dict, int, int]:
    admin, plain, mtls = envoy_config.free_port(), envoy_config.free_port(), envoy_config.free_port()
    plugin = policies.meshguard_config(policies.authorization_policies(3))
    cfg = envoy_config.server_bootstrap(filters=None, wasm_config=plugin, wasm_path=str(WASM),
                                        cert_dir=str(cert_dir), plain_port=plain, mtls_port=mtls,
                                        admin_port=admin)
    return cfg, admin, plain


def inline_filter(cfg: dict) -> dict:
    hcm = cfg["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    return next(f for f in hcm["http_filters"] if f["name"] == "envoy.filters.http.wasm")["typed_config"]


def ecds_filters(env) -> list:
    dump = json.loads(env.admin("/config_dump?resource=ecds_filters"))
    return [c["ecds_filter"] for c in dump["configs"]]


def test_a_binary_ecds_file_reaches_envoy_as_the_inline_filter(envoy_binary, cert_dir, tmp_path):
    cfg, admin, plain = bootstrap(cert_dir)
    inline = inline_filter(cfg)["config"]
    delivery.ecds(cfg, tmp_path / "ecds.pb", binary=True)
    env = launcher.launch(envoy_binary, cfg, tmp_path, "ecds-pb", admin)
    try:
        [resource] = ecds_filters(env)
        got = resource["typed_config"]["config"]
        assert resource["name"] == delivery.ECDS_NAME
        assert got["name"] == inline["name"]
        assert got["vm_config"]["code"] == inline["vm_config"]["code"]
        assert got["configuration"] == inline["configuration"]
        assert got["failure_policy"] == "FAIL_CLOSED"
        # meshguard decides: the DENY policy for /admin*, and no ALLOW rule for a plaintext caller
        assert status(plain, "/admin/x") == 403
        assert status(plain, "/svc0/items/1") == 403
    finally:
        env.stop()


def test_a_json_ecds_file_and_one_resource_per_distinct_vm_id_load(envoy_binary, cert_dir, tmp_path):
    cfg, admin, plain = bootstrap(cert_dir)
    for k, listener in enumerate(cfg["static_resources"]["listeners"]):
        hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
        for f in hcm["http_filters"]:
            if f["name"] == "envoy.filters.http.wasm":
                f["typed_config"]["config"]["vm_config"]["vm_id"] = f"meshguard-{k}"
    delivery.ecds(cfg, tmp_path / "ecds.json", binary=False)
    env = launcher.launch(envoy_binary, cfg, tmp_path, "ecds-json", admin)
    try:
        names = sorted(r["name"] for r in ecds_filters(env))
        assert names == [delivery.ECDS_NAME, f"{delivery.ECDS_NAME}-1"]
        assert status(plain, "/admin/x") == 403
    finally:
        env.stop()
