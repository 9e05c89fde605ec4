"""Helpers for the seed walk-through tests (tests/e2e/test_seed_*.py): the WasmPlugin manifests under
wasmplugin/<seed>/ are the source of truth, and each test step loads one manifest's ``pluginConfig``
into a real Envoy, with the workload supplied as Istio supplies it (node metadata NAMESPACE/LABELS)."""
from __future__ import annotations

import copy
import json
import dataclasses

import yaml

from meshguard_tools import envoy_config, paths
from meshguard_tools.paths import WASMPLUGIN_DIR

MTLS_REQUIRED = b"meshguard: mTLS is required (PeerAuthentication STRICT)"
RBAC_DENIED = b"RBAC: access denied"


def manifest_docs(relpath: str) -> list[dict]:
    """The documents of ``wasmplugin/<relpath>`` (empty documents skipped)."""
    text = (WASMPLUGIN_DIR / relpath).read_text(encoding="utf-8")
    return [d for d in yaml.safe_load_all(text) if d is not None]


def plugin_config(relpath: str, index: int = 0) -> dict:
    """A deep copy of the ``spec.pluginConfig`` of document ``index`` of ``wasmplugin/<relpath>``."""
    doc = manifest_docs(relpath)[index]
    assert doc["kind"] == "WasmPlugin", relpath
    return copy.deepcopy(doc["spec"]["pluginConfig"])


def seed_manifests(seed_dir: str) -> list[str]:
    """``<seed_dir>/<file>.yaml`` paths (relative to wasmplugin/), sorted."""
    return sorted(str(p.relative_to(WASMPLUGIN_DIR)) for p in (WASMPLUGIN_DIR / seed_dir).glob("*.yaml"))


def node(app: str, namespace: str = "default", **labels: str) -> dict:
    """Istio sidecar node metadata for a pod with label ``app`` (and more labels)."""
    return {"NAMESPACE": namespace, "LABELS": {"app": app, **labels}}


def inline_jwks(config: dict, jwks_doc: str) -> dict:
    """``config`` with every RequestAuthentication ``jwksUri`` replaced by the inline ``jwks_doc`` (the tests
    sign tokens with keys made at test time; the manifests point at the real issuers' key sets)."""
    out = copy.deepcopy(config)
    for r in out.get("resources", []):
        if r.get("kind") != "RequestAuthentication":
            continue
        for rule in r["spec"].get("jwtRules", []):
            if rule.pop("jwksUri", None) is not None:
                rule["jwks"] = jwks_doc
    return out


def resource_kinds(config: dict) -> list[str]:
    return [f"{r['kind']}/{r['metadata']['name']}" for r in config.get("resources", [])]


def to_json(config: dict) -> str:
    return json.dumps(config, sort_keys=True)


# --------------------------------------------------------------------------------------------------
# several meshguard configurations in one Envoy (one listener pair each)
#
# Starting an Envoy costs seconds (V8 compiles the module), and a seed walk-through needs a dozen
# (step x workload) configurations. So one Envoy serves all of them: the first configuration is the
# bootstrap's own listener pair, every other one an extra pair (plain + mTLS) with its own Wasm filter
# instance and plugin configuration. Each step's workload is then set in its configuration
# (``with_workload``), which is what node metadata would give that pod's sidecar; the first
# configuration may keep the manifest unchanged and take its workload from ``node_metadata``.


def with_workload(config: dict, app: str, namespace: str = "default", **labels: str) -> dict:
    """``config`` (a manifest's pluginConfig, usually without ``workload``) as the sidecar of pod ``app``."""
    out = copy.deepcopy(config)
    out["workload"] = {"namespace": namespace, "labels": {"app": app, **labels}}
    return out


def _extra_pair(name: str, config: dict, traffic_direction: str) -> tuple[list[dict], int, int]:
    plain, mtls = envoy_config.free_port(), envoy_config.free_port()
    rendered = envoy_config.render(
        config, wasm_path=str(paths.wasm_path()), cert_dir=str(paths.CERT_DIR), plain_port=plain, mtls_port=mtls,
        admin_port=0, traffic_direction=traffic_direction,
    )
    listeners = rendered["static_resources"]["listeners"][:2]
    for listener, suffix in zip(listeners, ("plain", "mtls")):
        listener["name"] = f"seed_{name}_{suffix}"
    return listeners, plain, mtls


def listener_clients(envoy_pool, configs: dict, directions: dict | None = None, **opts) -> dict:
    """Start ONE Envoy (through the ``envoy_pool`` fixture, so a module-scoped fixture can share it) that serves every ``configs`` entry (name -> plugin configuration) on its own
    plain/mTLS listener pair; returns name -> Client. ``directions``: name -> ``OUTBOUND`` for listeners
    that stand in for a sidecar's outbound side (default ``INBOUND``). ``opts`` go to the first
    (bootstrap) configuration's render (e.g. ``node_metadata``)."""
    directions = directions or {}
    names = list(configs)
    first, rest = names[0], names[1:]
    extra, ports = [], {}
    for name in rest:
        listeners, plain, mtls = _extra_pair(name, configs[name], directions.get(name, "INBOUND"))
        extra += listeners
        ports[name] = (plain, mtls)
    main = envoy_pool.get(configs[first], extra_listeners=extra, traffic_direction=directions.get(first, "INBOUND"), **opts)
    clients = {first: main}
    for name in rest:
        plain, mtls = ports[name]
        clients[name] = dataclasses.replace(main, plain_port=plain, mtls_port=mtls)
    return clients
