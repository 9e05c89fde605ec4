"""Every ``wasmplugin/*.yaml`` against Istio's WasmPlugin CRD schema, and its ``pluginConfig`` through the real
loader (the ``meshguard lint`` CLI). No Envoy is started here.

The CRD is vendored verbatim in ``wasmplugin/crd/wasmplugin-crd.gen.yaml`` (its header names the istio/istio
commit). Here it is applied independently of the CLI: jsonschema with the OpenAPI keywords mapped (``nullable``,
unknown fields refused unless ``x-kubernetes-preserve-unknown-fields``, as strict validation does), and
:func:`cel_errors` for the CEL rules (``x-kubernetes-validations``). Every case is also given to ``meshguard lint``,
whose own validator (cli/src/crd.rs) must agree.
"""
from __future__ import annotations

import copy
import json
import os
import subprocess
import urllib.parse
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft7Validator

REPO = Path(__file__).resolve().parents[2]
CRD_PATH = REPO / "wasmplugin" / "crd" / "wasmplugin-crd.gen.yaml"
MANIFESTS = sorted((REPO / "wasmplugin").glob("*.yaml"))
CRD_DOC = yaml.safe_load(CRD_PATH.read_text())
CRD = next(v for v in CRD_DOC["spec"]["versions"] if v["name"] == "v1alpha1")["schema"]["openAPIV3Schema"]


def structural(schema):
    """OpenAPI ``nullable: true`` -> JSON Schema null type; an object schema with ``properties`` and without
    ``x-kubernetes-preserve-unknown-fields`` refuses other fields (strict field validation)."""
    if isinstance(schema, dict):
        out = {k: structural(v) for k, v in schema.items()}
        if out.pop("nullable", False) and isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
        if "properties" in out and not out.get("x-kubernetes-preserve-unknown-fields"):
            out.setdefault("additionalProperties", False)
        return out
    if isinstance(schema, list):
        return [structural(v) for v in schema]
    return schema


ROOT = structural(CRD)
ROOT["properties"].update({"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                           "metadata": {"type": "object"}})
VALIDATOR = Draft7Validator(ROOT)


def cel_errors(spec: dict) -> list[str]:
    """The CRD's x-kubernetes-validations (CEL) rules, in Python."""
    errs = []
    if sum(k in spec for k in ("selector", "targetRef", "targetRefs")) > 1:
        errs.append("only one of targetRefs or selector can be set")
    url = spec.get("url", "")
    scheme = urllib.parse.urlsplit(url if "://" in url else "http://" + url).scheme if url else ""
    if "://" in url and scheme not in ("http", "https", "oci", "file"):
        errs.append("url must have schema one of [http, https, file, oci]")
    for k, v in ((spec.get("selector") or {}).get("matchLabels") or {}).items():
        if "*" in k or "*" in str(v):
            errs.append("wildcard not allowed in label key/value match")
        if not k:
            errs.append("key must not be empty")
    refs = list(spec.get("targetRefs") or []) + ([spec["targetRef"]] if "targetRef" in spec else [])
    for ref in refs:
        if ref.get("namespace"):
            errs.append("cross namespace referencing is not currently supported")
    env = (spec.get("vmConfig") or {}).get("env") or []
    for e in env:
        if isinstance(e, dict) and e.get("valueFrom") == "HOST" and "value" in e:
            errs.append("value may only be set when valueFrom is INLINE")
    if len({e.get("name") for e in env if isinstance(e, dict)}) != len(env):
        errs.append("vmConfig.env names must be unique")
    for m in spec.get("match") or []:
        numbers = [p.get("number") if isinstance(p, dict) else p for p in m.get("ports") or []]
        if len(set(numbers)) != len(numbers):
            errs.append("match ports must be unique")
    return errs


def crd_errors(doc: dict) -> list[str]:
    errs = [f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in VALIDATOR.iter_errors(doc)]
    if doc.get("apiVersion") != "extensions.istio.io/v1alpha1" or doc.get("kind") != "WasmPlugin":
        errs.append(f"not a WasmPlugin: {doc.get('apiVersion')}/{doc.get('kind')}")
    if not (doc.get("metadata") or {}).get("name"):
        errs.append("metadata.name is required")
    return errs + cel_errors(doc.get("spec") or {})


# --------------------------------------------------------------------------------------------------
# the CLI


@pytest.fixture(scope="session")
def meshguard_cli() -> str:
    """The CLI, built by cargo in the dev profile (``target/debug/meshguard``: `cargo test` has usually built it
    already, so this is instant; a release build would redo LTO). MESHGUARD_CLI=/path overrides, e.g.
    ``target/release/meshguard``."""
    env = os.environ.get("MESHGUARD_CLI")
    if env:
        return env
    p = subprocess.run(["cargo", "build", "--bin", "meshguard"], cwd=REPO, capture_output=True,
                       text=True, timeout=900)
    if p.returncode != 0:
        pytest.fail(f"cargo build --bin meshguard failed:\n{p.stderr[-3000:]}", pytrace=False)
    return str(REPO / "target" / "debug" / "meshguard")


def lint(cli: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([cli, "lint", *args], input=stdin, capture_output=True, text=True, timeout=60)


# --------------------------------------------------------------------------------------------------


def test_vendored_crd_is_a_valid_schema_with_its_source():
    Draft7Validator.check_schema(ROOT)
    header = CRD_PATH.read_text().split("apiVersion:", 1)[0]
    assert "istio/istio" in header and "crd-all.gen.yaml" in header
    assert any(len(w) == 40 and all(c in "0123456789abcdef" for c in w) for w in header.split())
    assert CRD_DOC["metadata"]["name"] == "wasmplugins.extensions.istio.io"
    spec = CRD["properties"]["spec"]
    assert spec["required"] == ["url"]
    assert spec["properties"]["pluginConfig"]["x-kubernetes-preserve-unknown-fields"] is True


def test_there_are_manifests():
    assert MANIFESTS, "no wasmplugin/*.yaml"


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_manifest_matches_the_crd(path):
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    assert docs
    for doc in docs:
        assert crd_errors(doc) == [], path.name


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_manifest_plugin_config_loads(path, meshguard_cli):
    # The whole manifest (the CLI takes spec.pluginConfig) ...
    p = lint(meshguard_cli, str(path))
    assert p.returncode == 0, p.stdout + p.stderr
    assert ": ok: " in p.stdout
    # ... and each pluginConfig alone, as the JSON string Istio hands the filter.
    for doc in yaml.safe_load_all(path.read_text()):
        if doc is None:
            continue
        config = json.dumps(doc["spec"].get("pluginConfig") or {})
        p = lint(meshguard_cli, "-", stdin=config)
        assert p.returncode == 0, p.stdout + p.stderr


BASE = {
    "apiVersion": "extensions.istio.io/v1alpha1",
    "kind": "WasmPlugin",
    "metadata": {"name": "m", "namespace": "default"},
    "spec": {
        "selector": {"matchLabels": {"app": "x"}},
        "url": "oci://registry.example.com/meshguard:0.1.0",
        "sha256": "a" * 64,
        "phase": "AUTHZ",
        "priority": 100,
        "failStrategy": "FAIL_CLOSE",
        "match": [{"mode": "SERVER", "ports": [{"number": 8080}]}],
        "vmConfig": {"env": [{"name": "POD_NAME", "valueFrom": "HOST"}, {"name": "A", "value": "b"}]},
        "type": "HTTP",
        "imagePullPolicy": "IfNotPresent",
        "pluginConfig": {"anything": {"goes": [1, 2]}},
    },
}

BAD = {
    "no url": ({"url": None}, "'url' is a required property"),
    "phase": ({"phase": "AUTHORIZATION"}, "is not one of"),
    "upper-case sha256": ({"sha256": "A" * 64}, "does not match"),
    "short sha256": ({"sha256": "abc"}, "does not match"),
    "failStrategy": ({"failStrategy": "FAIL_CLOSED"}, "is not one of"),
    "pull policy": ({"imagePullPolicy": "Never"}, "is not one of"),
    "match mode": ({"match": [{"mode": "INBOUND"}]}, "is not one of"),
    "port 0": ({"match": [{"ports": [{"number": 0}]}]}, "less than the minimum"),
    "port 65536": ({"match": [{"ports": [{"number": 65536}]}]}, "greater than the maximum"),
    "type": ({"type": "TCP"}, "is not one of"),
    "valueFrom": ({"vmConfig": {"env": [{"name": "x", "valueFrom": "ENV"}]}}, "is not one of"),
    "env without name": ({"vmConfig": {"env": [{"value": "x"}]}}, "'name' is a required property"),
    "priority string": ({"priority": "high"}, "is not of type"),
    "pluginConfig list": ({"pluginConfig": [1]}, "is not of type 'object'"),
    "selector and targetRefs": ({"targetRefs": [{"kind": "Gateway", "group": "gateway.networking.k8s.io", "name": "g"}]},
                                "only one of targetRefs or selector"),
    "url scheme": ({"url": "ftp://example.com/x.wasm"}, "url must have schema"),
    "HOST with value": ({"vmConfig": {"env": [{"name": "x", "valueFrom": "HOST", "value": "y"}]}}, "valueFrom is INLINE"),
    "wildcard label": ({"selector": {"matchLabels": {"app": "*"}}}, "wildcard"),
    "cross-namespace ref": ({"selector": None, "targetRefs": [{"kind": "Service", "name": "s", "namespace": "other"}]},
                            "cross namespace"),
    "misspelled field": ({"failStratgy": "FAIL_CLOSE"}, "Additional properties are not allowed"),
    "lower-case phase": ({"phase": "authz"}, "is not one of"),
    "port numbers": ({"match": [{"ports": [9080]}]}, "is not of type 'object'"),
    "selector without matchLabels": ({"selector": {"app": "details"}}, "Additional properties are not allowed"),
}


def with_spec(changes: dict) -> dict:
    doc = copy.deepcopy(BASE)
    for k, v in changes.items():
        if v is None:
            doc["spec"].pop(k, None)
        else:
            doc["spec"][k] = v
    return doc


def test_full_manifest_is_accepted():
    assert crd_errors(BASE) == []
    assert crd_errors(with_spec({"priority": None})) == []
    assert crd_errors(dict(copy.deepcopy(BASE), spec=dict(BASE["spec"], priority=None))) == [], "priority is nullable"
    assert crd_errors(with_spec({"selector": None, "targetRefs": [
        {"kind": "Gateway", "group": "gateway.networking.k8s.io", "name": "gw"}]})) == []
    assert crd_errors(with_spec({"url": "file:///opt/meshguard.wasm", "sha256": ""})) == []


@pytest.mark.parametrize("name", sorted(BAD))
def test_schema_and_cel_reject(name):
    changes, want = BAD[name]
    errs = crd_errors(with_spec(changes))
    assert any(want in e for e in errs), f"{name}: {errs}"


def test_lint_agrees_with_the_independent_validator(meshguard_cli):
    """meshguard lint's own CRD validator accepts the full manifest and rejects every BAD case, and
    ``--output json`` reports each CRD error."""
    base = with_spec({"pluginConfig": {}})
    p = lint(meshguard_cli, "-", stdin=json.dumps(base))
    assert p.returncode == 0, p.stdout + p.stderr
    for name, (changes, _) in sorted(BAD.items()):
        doc = with_spec({"pluginConfig": {}, **changes})
        p = lint(meshguard_cli, "--output", "json", "-", stdin=json.dumps(doc))
        assert p.returncode == 1, name
        report = json.loads(p.stdout)
        assert report["valid"] is False and report["errors"] >= 1, (name, report)


def test_convert_output_matches_the_crd(meshguard_cli, tmp_path):
    src = tmp_path / "policies.yaml"
    src.write_text(
        "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: a, namespace: shop}\n"
        "spec: {action: DENY, rules: [{to: [{operation: {paths: [/admin]}}]}]}\n"
    )
    p = subprocess.run([meshguard_cli, "convert", str(src), "--namespace", "shop", "--selector", "app=web",
                        "--sha256", "b" * 64], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    doc = yaml.safe_load(p.stdout)
    assert crd_errors(doc) == []
    assert doc["spec"]["sha256"] == "b" * 64
    out = tmp_path / "wasmplugin.yaml"
    out.write_text(p.stdout)
    assert lint(meshguard_cli, str(out)).returncode == 0
