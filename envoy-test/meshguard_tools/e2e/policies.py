"""Builders for meshguard plugin configurations and common assertions (imported by the e2e tests)."""
from __future__ import annotations

import copy

from meshguard_tools.certs import IDENTITIES  # noqa: F401  (client certificate name -> SPIFFE identity)

DENY_BODY = b"RBAC: access denied"
OK_BODY = b"ok\n"


def policy(name: str, spec: dict, namespace: str = "default", annotations: dict | None = None,
           api_version: str = "security.istio.io/v1") -> dict:
    """An AuthorizationPolicy as `kubectl get -o json` shows it."""
    meta: dict = {"name": name, "namespace": namespace}
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": api_version, "kind": "AuthorizationPolicy", "metadata": meta, "spec": copy.deepcopy(spec)}


def allow(name: str, rules=None, **kw) -> dict:
    spec: dict = {"action": "ALLOW"}
    if rules is not None:
        spec["rules"] = rules
    return policy(name, spec, **kw)


def deny(name: str, rules, **kw) -> dict:
    return policy(name, {"action": "DENY", "rules": rules}, **kw)


def config(*resources: dict, namespace: str = "default", labels: dict | None = None,
           root_namespace: str = "istio-system", trust_domain: str = "cluster.local",
           aliases: list | None = None, decision_header: bool = True, decision_filter_state: bool = True) -> dict:
    """A plugin configuration (the JSON contract) for a workload in `namespace` with `labels`; the decision
    header and filter state on (tests read them)."""
    return {
        "workload": {"namespace": namespace, "labels": dict(labels if labels is not None else {"app": "details"})},
        "rootNamespace": root_namespace,
        "trustDomain": trust_domain,
        "trustDomainAliases": list(aliases or []),
        "decisionHeader": decision_header,
        "decisionFilterState": decision_filter_state,
        "resources": list(resources),
    }


def to(**operation) -> dict:
    return {"operation": operation}


def src(**source) -> dict:
    return {"source": source}


def rule(from_=None, to_=None, when=None) -> dict:
    r: dict = {}
    if from_ is not None:
        r["from"] = from_
    if to_ is not None:
        r["to"] = to_
    if when is not None:
        r["when"] = when
    return r


def assert_allowed(resp, what: str = "") -> None:
    assert resp.status == 200, f"expected 200 (allowed) {what}: {resp!r}"
    assert resp.body == OK_BODY, f"allowed but body is not the route's direct_response {what}: {resp!r}"


def assert_denied(resp, what: str = "") -> None:
    assert resp.status == 403, f"expected 403 (denied) {what}: {resp!r}"
