"""Istio 1.4's legacy RBAC subject lists (`names`, `groups`, `namespaces`, `ips` and their `not_` forms)
and the `destination.user` and `experimental.envoy.filters.*` constraints are refused at load with a
reason naming the field (README, "Legacy RBAC"): Envoy does not start (`envoy --mode validate`), the
log names the field, and `meshguard lint` answers the same."""
import json
import subprocess

import pytest

from test_cli_parity import cli  # noqa: F401 (a fixture)

NS = "default"


def legacy(subject: dict | None = None, constraint: dict | None = None) -> dict:
    rule = {"services": ["*"], "methods": ["GET"]}
    if constraint:
        rule["constraints"] = [constraint]
    return {"workload": {"namespace": NS, "labels": {"app": "details"}}, "resources": [
        {"apiVersion": "rbac.istio.io/v1alpha1", "kind": "ClusterRbacConfig",
         "metadata": {"name": "default"}, "spec": {"mode": "ON"}},
        {"apiVersion": "rbac.istio.io/v1alpha1", "kind": "ServiceRole",
         "metadata": {"name": "reader", "namespace": NS}, "spec": {"rules": [rule]}},
        {"apiVersion": "rbac.istio.io/v1alpha1", "kind": "ServiceRoleBinding",
         "metadata": {"name": "readers", "namespace": NS},
         "spec": {"subjects": [subject or {"user": "*"}], "roleRef": {"kind": "ServiceRole", "name": "reader"}}}]}


REFUSED = {f: legacy(subject={f: ["x"]}) for f in
           ("names", "not_names", "groups", "not_groups", "namespaces", "not_namespaces", "ips", "not_ips")}
REFUSED["destination.user"] = legacy(constraint={"key": "destination.user", "values": ["sa"]})
REFUSED["experimental.envoy.filters.a.b[c]"] = legacy(
    constraint={"key": "experimental.envoy.filters.a.b[c]", "values": ["v"]})


def test_the_valid_form_loads(validate):
    rc, out = validate(legacy(subject={"user": "cluster.local/ns/default/sa/x"}))
    assert rc == 0, out[-3000:]


@pytest.mark.parametrize("field", sorted(REFUSED))
def test_legacy_field_is_refused_with_its_reason(validate, cli, tmp_path, field):
    rc, out = validate(REFUSED[field])
    assert rc != 0, out[-3000:]
    assert "not supported" in out and "refuses" in out, out[-3000:]
    f = tmp_path / "c.json"
    f.write_text(json.dumps(REFUSED[field]), encoding="utf-8")
    p = subprocess.run([cli, "lint", str(f)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 1, (p.stdout, p.stderr)
    said = p.stdout + p.stderr
    assert "refuses" in said and (field in said or field.split("[")[0] in said), said
