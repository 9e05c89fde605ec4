"""Benchmark policies: Istio AuthorizationPolicies, and the Envoy RBAC filters istiod would generate for them.

Both sides of the comparison come from the same AuthorizationPolicy objects:

* meshguard gets them verbatim as its plugin configuration (``resources``);
* native Envoy gets the ``envoy.filters.http.rbac`` filters istiod would generate, from
  :func:`istio_rbac_filters` (``meshguard_tools/istio_rbac.py``, the translator the differential test uses too).

Envoy's RBAC engine keeps its policies in a map ordered by name and stops at the first match; rule
numbers are zero-padded so that name order is numeric order and "the last rule" is last for both
engines (meshguard keeps resource order).
"""
from __future__ import annotations

from meshguard_tools import istio_rbac

NAMESPACE = "default"
WORKLOAD_LABELS = {"app": "bench"}
NAMESPACES = 20  # principals are spread over ns0..ns19


def _width(n: int) -> int:
    return max(5, len(str(n)))


def identity(i: int) -> str:
    """Istio principal (without spiffe://) allowed by rule i."""
    return f"cluster.local/ns/ns{i % NAMESPACES}/sa/sa{i}"


def spiffe(i: int) -> str:
    return "spiffe://" + identity(i)


def _ap(name: str, action: str, rules: list) -> dict:
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"selector": {"matchLabels": dict(WORKLOAD_LABELS)}, "action": action, "rules": rules},
    }


def allow_rule(i: int, templates: bool = True) -> dict:
    """Rule i: principal sa{i} may GET/POST /svc{i}/* and /api/{*}/items{i} with x-tenant: t{i}.

    ``templates=False`` drops the ``/api/{*}/items{i}`` path template (``bench.py --no-templates``)."""
    source: dict = {"principals": [identity(i)]}
    if i % 5 == 0:
        source["notPrincipals"] = [f"cluster.local/ns/ns{i % NAMESPACES}/sa/blocked{i}"]
    paths = [f"/svc{i}/*", f"/api/{{*}}/items{i}"] if templates else [f"/svc{i}/*"]
    operation: dict = {"methods": ["GET", "POST"], "paths": paths}
    if i % 3 == 0:
        operation["notPaths"] = [f"/svc{i}/internal*"]
    return {
        "from": [{"source": source}],
        "to": [{"operation": operation}],
        "when": [{"key": "request.headers[x-tenant]", "values": [f"t{i}"]}],
    }


def deny_policies() -> list:
    """The few DENY policies of the workload (evaluated first by both engines)."""
    return [
        _ap("deny-admin", "DENY", [{"to": [{"operation": {"paths": ["/admin*"]}}]}]),
        _ap(
            "deny-foreign-namespaces",
            "DENY",
            [{"from": [{"source": {"notNamespaces": [f"ns{k}" for k in range(NAMESPACES)]}}]}],
        ),
        _ap("deny-delete", "DENY", [{"to": [{"operation": {"methods": ["DELETE"]}}]}]),
    ]


def authorization_policies(n: int, templates: bool = True) -> list:
    """DENY policies, then n ALLOW policies with one rule each (rule n-1 is the caller's)."""
    w = _width(n)
    allows = [_ap(f"allow-svc{i:0{w}d}", "ALLOW", [allow_rule(i, templates)]) for i in range(n)]
    return deny_policies() + allows


def meshguard_config(resources: list, **extra) -> dict:
    """The plugin configuration; ``direction: inbound`` as the ``mode: SERVER`` manifests in ``wasmplugin/`` set
    it (the measured Envoy is an inbound sidecar; ``auto`` costs one property read per request, measured by the
    ``--callgrind`` variants)."""
    cfg = {
        "workload": {"namespace": NAMESPACE, "labels": dict(WORKLOAD_LABELS)},
        "rootNamespace": "istio-system",
        "trustDomain": "cluster.local",
        "direction": "inbound",
        "resources": resources,
    }
    cfg.update(extra)
    return cfg


def caller_requests(n: int, templates: bool = True) -> dict:
    """Requests of the caller (identity of the last rule, n-1), by expected status.

    ``allowed``: matches the last ALLOW rule (worst case for a linear scan); ``mix``: half denied, in
    a fixed rotation (allowed prefix path, DENY /admin, allowed path template, no ALLOW rule matches)."""
    last = n - 1
    ok = {"method": "GET", "path": f"/svc{last}/items/42", "headers": {"x-tenant": f"t{last}"}, "expect": 200}
    tmpl = {"method": "GET", "path": f"/api/v1/items{last}", "headers": {"x-tenant": f"t{last}"},
            "expect": 200 if templates else 403}
    admin = {"method": "GET", "path": "/admin/config", "headers": {"x-tenant": f"t{last}"}, "expect": 403}
    nomatch = {"method": "GET", "path": f"/svc{last}/items/42", "headers": {"x-tenant": "nobody"}, "expect": 403}
    return {"allowed": [ok], "mix": [ok, admin, tmpl, nomatch]}


# ---- istiod-like translation to Envoy RBAC ----------------------------------------------------------
# The translator is shared with the differential test: meshguard_tools/istio_rbac.py.
istio_rbac_filters = istio_rbac.istio_rbac_filters
