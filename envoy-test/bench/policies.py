"""Benchmark policies: Istio AuthorizationPolicies, and the Envoy RBAC filters istiod would generate for them.

Both sides of the comparison come from the same AuthorizationPolicy objects:

* meshguard gets them verbatim as its plugin configuration (``resources``);
* native Envoy gets ``envoy.filters.http.rbac`` filters produced by :func:`istio_rbac_filters`, a small
  translator that follows istiod's sidecar generator (``pilot/pkg/security/authz/builder`` and ``model``)
  for the fields used here: one RBAC filter for DENY policies, then one for ALLOW policies; one RBAC policy
  per rule, named ``ns[<ns>]-policy[<name>]-rule[<i>]``; ``to`` entries -> permissions (OR), the fields of
  one operation -> ``and_rules`` of ``or_rules``; ``from`` entries -> principals (OR), the fields of one
  source plus the principal-side ``when`` conditions (``request.headers[...]``) -> ``and_ids`` of
  ``or_ids``; ``not*`` fields -> ``not_rule`` / ``not_id``.

Value forms as istiod translates them:

* ``principals``: ``spiffe://`` prepended, ``authenticated.principal_name`` exact / prefix (``x*``) /
  suffix-regex (``*x``) / ``.+`` (``*``).
* ``namespaces``: ``authenticated.principal_name`` safe_regex ``.*/ns/<ns>/.*``.
* ``paths``: ``url_path`` exact / prefix / suffix, and ``{*}``/``{**}`` templates as
  ``envoy.path.match.uri_template.uri_template_matcher`` with ``*``/``**``.
* ``methods``: header ``:method`` exact.
* ``request.headers[h]``: header ``h`` exact / prefix / suffix / present (``*``).

Envoy's RBAC engine keeps its policies in a map ordered by name and stops at the first match; rule
numbers are zero-padded so that name order is numeric order and "the last rule" is last for both
engines (meshguard keeps resource order).
"""
from __future__ import annotations

import re

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
    cfg = {
        "workload": {"namespace": NAMESPACE, "labels": dict(WORKLOAD_LABELS)},
        "rootNamespace": "istio-system",
        "trustDomain": "cluster.local",
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


def _string_match(v: str) -> dict:
    if v == "*":
        return {"safe_regex": {"regex": ".+"}}
    if v.endswith("*"):
        return {"prefix": v[:-1]}
    if v.startswith("*"):
        return {"suffix": v[1:]}
    return {"exact": v}


def _principal_name(v: str) -> dict:
    if v == "*":
        m = {"safe_regex": {"regex": ".+"}}
    elif v.endswith("*"):
        m = {"prefix": "spiffe://" + v[:-1]}
    elif v.startswith("*"):
        m = {"safe_regex": {"regex": "spiffe://.*" + re.escape(v[1:])}}
    else:
        m = {"exact": "spiffe://" + v}
    return {"authenticated": {"principal_name": m}}


def _namespace(v: str) -> dict:
    regex = ".*/ns/" + ".*".join(re.escape(p) for p in v.split("*")) + "/.*"
    return {"authenticated": {"principal_name": {"safe_regex": {"regex": regex}}}}


def _path(v: str) -> dict:
    if "{" in v:
        template = v.replace("{**}", "**").replace("{*}", "*")
        return {
            "uri_template": {
                "name": "uri-template",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.path.match.uri_template.v3.UriTemplateMatchConfig",
                    "path_template": template,
                },
            }
        }
    return {"url_path": {"path": _string_match(v)}}


def _method(v: str) -> dict:
    return {"header": {"name": ":method", "string_match": {"exact": v}}}


def _header(name: str, v: str) -> dict:
    if v == "*":
        return {"header": {"name": name, "present_match": True}}
    return {"header": {"name": name, "string_match": _string_match(v)}}


def _or_rules(items: list) -> dict:
    return {"or_rules": {"rules": items}}


def _or_ids(items: list) -> dict:
    return {"or_ids": {"ids": items}}


PERMISSION_FIELDS = {"paths": _path, "methods": _method}
PRINCIPAL_FIELDS = {"principals": _principal_name, "namespaces": _namespace}


def _permission(operation: dict) -> dict:
    rules = []
    for field, conv in PERMISSION_FIELDS.items():
        if operation.get(field):
            rules.append(_or_rules([conv(v) for v in operation[field]]))
        nf = "not" + field[0].upper() + field[1:]
        if operation.get(nf):
            rules.append({"not_rule": _or_rules([conv(v) for v in operation[nf]])})
    unknown = set(operation) - set(PERMISSION_FIELDS) - {"not" + f[0].upper() + f[1:] for f in PERMISSION_FIELDS}
    if unknown:
        raise ValueError(f"translator does not handle operation fields {sorted(unknown)}")
    return {"and_rules": {"rules": rules}} if rules else {"any": True}


def _when_ids(when: list) -> list:
    ids = []
    for cond in when:
        m = re.fullmatch(r"request\.headers\[(.+)\]", cond["key"])
        if not m:
            raise ValueError(f"translator does not handle when key {cond['key']}")
        name = m.group(1).lower()
        if cond.get("values"):
            ids.append(_or_ids([{"header": _header(name, v)["header"]} for v in cond["values"]]))
        if cond.get("notValues"):
            ids.append({"not_id": _or_ids([{"header": _header(name, v)["header"]} for v in cond["notValues"]])})
    return ids


def _principal(source: dict | None, when_ids: list) -> dict:
    ids = []
    for field, conv in PRINCIPAL_FIELDS.items():
        if source and source.get(field):
            ids.append(_or_ids([conv(v) for v in source[field]]))
        nf = "not" + field[0].upper() + field[1:]
        if source and source.get(nf):
            ids.append({"not_id": _or_ids([conv(v) for v in source[nf]])})
    if source:
        unknown = set(source) - set(PRINCIPAL_FIELDS) - {"not" + f[0].upper() + f[1:] for f in PRINCIPAL_FIELDS}
        if unknown:
            raise ValueError(f"translator does not handle source fields {sorted(unknown)}")
    ids.extend(when_ids)
    return {"and_ids": {"ids": ids}} if ids else {"any": True}


def _rbac_policy(rule: dict) -> dict:
    permissions = [_permission(t["operation"]) for t in rule.get("to", [])] or [{"any": True}]
    when_ids = _when_ids(rule.get("when", []))
    froms = rule.get("from", [])
    principals = [_principal(f["source"], when_ids) for f in froms] or [_principal(None, when_ids)]
    return {"permissions": permissions, "principals": principals}


def _rbac_filter(action: str, policies: dict) -> dict:
    return {
        "name": "envoy.filters.http.rbac",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC",
            "rules": {"action": action, "policies": policies},
        },
    }


def istio_rbac_filters(resources: list) -> list:
    """The HTTP filters istiod generates for these AuthorizationPolicies: DENY filter, then ALLOW filter."""
    by_action: dict = {"DENY": {}, "ALLOW": {}}
    for res in resources:
        spec = res["spec"]
        action = spec.get("action", "ALLOW")
        if action not in by_action:
            raise ValueError(f"translator does not handle action {action}")
        ns = res["metadata"].get("namespace", NAMESPACE)
        for k, rule in enumerate(spec.get("rules", [])):
            by_action[action][f"ns[{ns}]-policy[{res['metadata']['name']}]-rule[{k}]"] = _rbac_policy(rule)
    filters = []
    if by_action["DENY"]:
        filters.append(_rbac_filter("DENY", by_action["DENY"]))
    if by_action["ALLOW"]:
        filters.append(_rbac_filter("ALLOW", by_action["ALLOW"]))
    return filters
