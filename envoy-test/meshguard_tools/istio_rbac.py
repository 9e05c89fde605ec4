"""Istio AuthorizationPolicy -> Envoy RBAC HTTP filters, the way istiod builds them for a sidecar.

The one translator of the repository: ``make bench`` (``meshguard_tools/bench/policies.py``) and the
differential test (``meshguard_tools/difftest/``) both use :func:`istio_rbac_filters`. It follows istiod's
sidecar generator (``pilot/pkg/security/authz/{builder,model,matcher}``, summarized in
``/work/shared/reference/authz-semantics.md`` sections 3-9 and 11):

* targeting: policies of the root namespace and of the workload's namespace whose ``selector`` is absent
  or a subset of the workload labels; ``targetRef(s)`` never apply to a sidecar;
* filters in this order, each only if it has policies: AUDIT (RBAC action ``LOG``), DENY, ALLOW;
  ``istio.io/dry-run`` policies go to ``shadow_rules`` (never enforced) with
  ``shadow_rules_stat_prefix`` ``istio_dry_run_deny_`` / ``istio_dry_run_allow_`` (none for AUDIT); one RBAC
  policy per rule,
  named ``ns[<ns>]-policy[<name>]-rule[<i>]``; an ALLOW policy without rules gets the never-matching
  policy (deny by default, nothing allowed);
* a rule: ``to`` entries -> permissions (OR), the fields of one operation plus the permission-side
  ``when`` keys (``destination.ip``, ``destination.port``, ``connection.sni``) -> ``and_rules``;
  ``from`` entries -> principals (OR), the fields of one source plus the principal-side ``when``
  keys -> ``and_ids``; values -> ``or_rules`` / ``or_ids``; ``not*`` / ``notValues`` -> ``not_rule`` / ``not_id``.

Value forms (matcher/{string,header}.go): ``*`` = presence (header matchers: ``present_match``; string
matchers: regex ``.+``), ``*x`` = suffix (checked before) ``x*`` = prefix, else exact. Hosts match
``:authority`` ignoring case. ``principals`` get ``spiffe://`` prepended (a leading ``*`` becomes the
regex ``spiffe://.*<quoted rest>``), ``namespaces`` / ``serviceAccounts`` / ``trustDomains`` are the
principal regexes / prefixes of authz-semantics sections 6.2-6.4. Paths: ``url_path`` (query and
fragment removed by Envoy) or, with ``{*}`` / ``{**}``, the ``uri_template`` path matcher.

Trust domain aliases (``pilot/pkg/security/trustdomain/bundle.go``): a principal ``td/ns/x/sa/y`` whose
``td`` is in the bundle (trust domain + aliases; a ``*``-prefixed ``td`` by suffix) or is ``cluster.local``
stands for one principal per bundle member; ``trustDomains`` values equal to a member stand for all.

Not translated (``UnsupportedPolicy``): ``requestPrincipals`` / ``request.auth.*`` (need jwt_authn
metadata), ``experimental.envoy.filters.*``, ``CUSTOM``. Rules istiod would
silently skip or widen (bad values) are not modelled: meshguard refuses them at load time.
"""
from __future__ import annotations

import ipaddress
import re

DRY_RUN_ANNOTATION = "istio.io/dry-run"
GO_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
GO_BOOLS = GO_TRUE | {"0", "f", "F", "FALSE", "false", "False"}


class UnsupportedPolicy(ValueError):
    """A field or key this translator (deliberately) does not translate."""


def go_quote_meta(s: str) -> str:
    """Go's regexp.QuoteMeta: backslash-escape ``\\.+*?()|[]{}^$`` (RE2 syntax)."""
    return re.sub(r"([\\.+*?()|\[\]{}^$])", r"\\\1", s)


# ---- matchers (pilot/pkg/security/authz/matcher) ------------------------------------------------------


def string_match(v: str, prefix: str = "") -> dict:
    """``StringMatcherWithPrefix``: ``*`` -> regex ``.+``; ``*x`` -> suffix (or regex with a prefix);
    ``x*`` -> prefix; else exact. The leading-star test comes first (``*x*`` is suffix ``x*``)."""
    if v == "*":
        return {"safe_regex": {"regex": ".+"}}
    if v.startswith("*"):
        if not prefix:
            return {"suffix": v[1:]}
        return {"safe_regex": {"regex": go_quote_meta(prefix) + ".*" + go_quote_meta(v[1:])}}
    if v.endswith("*"):
        return {"prefix": prefix + v[:-1]}
    return {"exact": prefix + v}


def header_match(name: str, v: str) -> dict:
    """``HeaderMatcher``: ``*`` -> present (an empty value matches too)."""
    if v == "*":
        return {"header": {"name": name, "present_match": True}}
    if v.startswith("*"):
        sm = {"suffix": v[1:]}
    elif v.endswith("*"):
        sm = {"prefix": v[:-1]}
    else:
        sm = {"exact": v}
    return {"header": {"name": name, "string_match": sm}}


def host_match(v: str) -> dict:
    """``HostMatcher``: like ``HeaderMatcher`` on ``:authority`` with ``ignore_case``."""
    m = header_match(":authority", v)
    if "string_match" in m["header"]:
        m["header"]["string_match"]["ignore_case"] = True
    return m


def cidr(v: str) -> dict:
    net = ipaddress.ip_network(v, strict=False)
    return {"address_prefix": str(net.network_address), "prefix_len": net.prefixlen}


def _authenticated(m: dict) -> dict:
    return {"authenticated": {"principal_name": m}}


def principal_id(v: str) -> dict:
    """``principals`` / ``source.principal``: ``spiffe://`` prepended (``*`` alone is ``.+``)."""
    return _authenticated(string_match(v, "spiffe://"))


def namespace_id(v: str) -> dict:
    """``namespaces`` / ``source.namespace``: regex ``.*/ns/<ns>/.*``, every ``*`` a glob."""
    return _authenticated({"safe_regex": {"regex": ".*/ns/" + ".*".join(go_quote_meta(p) for p in v.split("*")) + "/.*"}})


def service_account_id(v: str, policy_namespace: str) -> dict:
    """``serviceAccounts`` / ``source.serviceAccount``: ``sa`` or ``ns/sa`` (namespace: the policy's)."""
    ns, _, sa = v.rpartition("/")
    ns = ns or policy_namespace
    regex = f"spiffe://.+/ns/{go_quote_meta(ns)}/(.+/|)sa/{go_quote_meta(sa)}(/.+)?"
    return _authenticated({"safe_regex": {"regex": regex}})


def trust_domain_id(v: str) -> dict:
    """``trustDomains`` / ``source.trustDomain``."""
    if v == "*":
        return _authenticated({"prefix": "spiffe://"})
    if "*" not in v:
        return _authenticated({"prefix": f"spiffe://{v}/"})
    pre, suf = (v[:-1], "") if v.endswith("*") else ("", v[1:])
    return _authenticated({"safe_regex": {"regex": f"spiffe://{go_quote_meta(pre)}[^/]*{go_quote_meta(suf)}/.*"}})


def path_rule(v: str) -> dict:
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
    return {"url_path": {"path": string_match(v)}}


def port_value(v: str) -> int:
    return int(v)


# ---- fields and keys -> permission rules / principal ids ---------------------------------------------

# operation field -> value -> permission
PERMISSION_FIELDS = {
    "hosts": host_match,
    "ports": lambda v: {"destination_port": port_value(v)},
    "methods": lambda v: header_match(":method", v),
    "paths": path_rule,
}
# source field -> (value, policy namespace) -> principal
PRINCIPAL_FIELDS = {
    "principals": lambda v, ns: principal_id(v),
    "namespaces": lambda v, ns: namespace_id(v),
    "serviceAccounts": service_account_id,
    "trustDomains": lambda v, ns: trust_domain_id(v),
    "ipBlocks": lambda v, ns: {"direct_remote_ip": cidr(v)},
    "remoteIpBlocks": lambda v, ns: {"remote_ip": cidr(v)},
}
# when key -> value -> permission (connection / destination attributes)
PERMISSION_KEYS = {
    "destination.ip": lambda v: {"destination_ip": cidr(v)},
    "destination.port": lambda v: {"destination_port": port_value(v)},
    "connection.sni": lambda v: {"requested_server_name": string_match(v)},
}
# when key -> (value, policy namespace) -> principal
PRINCIPAL_KEYS = {
    "source.ip": lambda v, ns: {"direct_remote_ip": cidr(v)},
    "remote.ip": lambda v, ns: {"remote_ip": cidr(v)},
    "source.principal": lambda v, ns: principal_id(v),
    "source.namespace": lambda v, ns: namespace_id(v),
    "source.serviceAccount": service_account_id,
    "source.trustDomain": lambda v, ns: trust_domain_id(v),
}
HEADER_KEY = re.compile(r"request\.headers\[(.+)\]")


def _not(field: str) -> str:
    return "not" + field[0].upper() + field[1:]


def _or_rules(items: list) -> dict:
    return {"or_rules": {"rules": items}}


def _or_ids(items: list) -> dict:
    return {"or_ids": {"ids": items}}


def _when(conditions: list, ns: str) -> tuple[list, list]:
    """(permission rules, principal ids) of a rule's ``when`` conditions."""
    perm, princ = [], []
    for cond in conditions:
        key = cond["key"]
        m = HEADER_KEY.fullmatch(key)
        if m:
            name = m.group(1).lower()
            side, conv = princ, (lambda v, name=name: header_match(name, v))
        elif key in PERMISSION_KEYS:
            side, conv = perm, PERMISSION_KEYS[key]
        elif key in PRINCIPAL_KEYS:
            side, conv = princ, (lambda v, f=PRINCIPAL_KEYS[key]: f(v, ns))
        else:
            raise UnsupportedPolicy(f"when key {key!r} is not translated")
        wrap_or = _or_rules if side is perm else _or_ids
        if cond.get("values"):
            side.append(wrap_or([conv(v) for v in cond["values"]]))
        if cond.get("notValues"):
            neg = wrap_or([conv(v) for v in cond["notValues"]])
            side.append({"not_rule": neg} if side is perm else {"not_id": neg})
    return perm, princ


def _permission(operation: dict | None, extra: list) -> dict:
    rules = []
    operation = operation or {}
    unknown = set(operation) - set(PERMISSION_FIELDS) - {_not(f) for f in PERMISSION_FIELDS}
    if unknown:
        raise UnsupportedPolicy(f"operation fields {sorted(unknown)} are not translated")
    for field, conv in PERMISSION_FIELDS.items():
        if operation.get(field):
            rules.append(_or_rules([conv(v) for v in operation[field]]))
        if operation.get(_not(field)):
            rules.append({"not_rule": _or_rules([conv(v) for v in operation[_not(field)]])})
    rules.extend(extra)
    return {"and_rules": {"rules": rules}} if rules else {"any": True}


def _principal(source: dict | None, extra: list, ns: str) -> dict:
    ids = []
    source = source or {}
    unknown = set(source) - set(PRINCIPAL_FIELDS) - {_not(f) for f in PRINCIPAL_FIELDS}
    if unknown:
        raise UnsupportedPolicy(f"source fields {sorted(unknown)} are not translated")
    for field, conv in PRINCIPAL_FIELDS.items():
        if source.get(field):
            ids.append(_or_ids([conv(v, ns) for v in source[field]]))
        if source.get(_not(field)):
            ids.append({"not_id": _or_ids([conv(v, ns) for v in source[_not(field)]])})
    ids.extend(extra)
    return {"and_ids": {"ids": ids}} if ids else {"any": True}


def rbac_policy(rule: dict, ns: str) -> dict:
    """One AuthorizationPolicy rule as an Envoy RBAC ``Policy``."""
    perm_when, princ_when = _when(rule.get("when") or [], ns)
    tos = rule.get("to") or [{}]
    froms = rule.get("from") or [{}]
    return {
        "permissions": [_permission(t.get("operation"), perm_when) for t in tos],
        "principals": [_principal(f.get("source"), princ_when, ns) for f in froms],
    }


# istiod's rbacPolicyMatchNever: an ALLOW policy without rules
MATCH_NEVER = {"permissions": [{"not_rule": {"any": True}}], "principals": [{"not_id": {"any": True}}]}


# ---- trust domain aliases (bundle.go) ---------------------------------------------------------------------


def _suffix_match(td: str, pattern: str) -> bool:
    return pattern.startswith("*") and td.endswith(pattern[1:])


def expand_principal(principal: str, bundle: list) -> list:
    parts = principal.split("/")
    if len(parts) != 5 or parts[0] == "*":
        return [principal]
    td = parts[0]
    if not any(t == td or _suffix_match(t, td) for t in bundle) and td != "cluster.local":
        return [principal]
    out: list = []
    for t in bundle:
        p = principal if _suffix_match(t, td) else "/".join([t] + parts[1:])
        if p not in out:
            out.append(p)
    return out


def expand_trust_domain(value: str, bundle: list) -> list:
    return list(bundle) if value in bundle else [value]


def with_aliases(resources: list, bundle: list) -> list:
    """The policies with their principals and trust domains expanded over the trust ``bundle``."""
    if bundle == ["cluster.local"]:
        return resources
    principal_lists = ("principals", "notPrincipals")
    td_lists = ("trustDomains", "notTrustDomains")

    def expand(values: list, fn) -> list:
        return [x for v in values for x in fn(v, bundle)]

    out = []
    for res in resources:
        res = {**res, "spec": dict(res.get("spec") or {})}
        rules = []
        for rule in res["spec"].get("rules") or []:
            rule = dict(rule or {})
            if rule.get("from"):
                froms = []
                for f in rule["from"]:
                    src = dict(f.get("source") or {})
                    for k in principal_lists:
                        if src.get(k):
                            src[k] = expand(src[k], expand_principal)
                    for k in td_lists:
                        if src.get(k):
                            src[k] = expand(src[k], expand_trust_domain)
                    froms.append({"source": src})
                rule["from"] = froms
            if rule.get("when"):
                conds = []
                for c in rule["when"]:
                    fn = {"source.principal": expand_principal, "source.trustDomain": expand_trust_domain}.get(c["key"])
                    c = dict(c)
                    if fn:
                        for k in ("values", "notValues"):
                            if c.get(k):
                                c[k] = expand(c[k], fn)
                    conds.append(c)
                rule["when"] = conds
            rules.append(rule)
        if "rules" in res["spec"]:
            res["spec"]["rules"] = rules
        out.append(res)
    return out


# ---- targeting and filters ------------------------------------------------------------------------------


def applies(resource: dict, namespace: str, labels: dict, root_namespace: str = "istio-system") -> bool:
    """Does this AuthorizationPolicy select the sidecar workload (``namespace``, ``labels``)?"""
    spec = resource.get("spec") or {}
    if spec.get("targetRef") or spec.get("targetRefs"):
        return False
    if resource["metadata"].get("namespace", namespace) not in (namespace, root_namespace):
        return False
    selector = (spec.get("selector") or {}).get("matchLabels") or {}
    return all(labels.get(k) == v for k, v in selector.items())


def is_dry_run(resource: dict) -> bool:
    v = (resource["metadata"].get("annotations") or {}).get(DRY_RUN_ANNOTATION)
    return v in GO_TRUE


def _rbac_filter(action: str, policies: dict, shadow: dict) -> dict:
    config: dict = {"@type": "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC"}
    if policies:
        config["rules"] = {"action": action, "policies": policies}
    if shadow:
        config["shadow_rules"] = {"action": action, "policies": shadow}
        # builder.go shadowRuleStatPrefix: none for the AUDIT (LOG) filter.
        if action != "LOG":
            config["shadow_rules_stat_prefix"] = f"istio_dry_run_{action.lower()}_"
    return {"name": "envoy.filters.http.rbac", "typed_config": config}


def istio_rbac_filters(resources: list, namespace: str | None = None, labels: dict | None = None,
                       root_namespace: str = "istio-system", trust_domain: str = "cluster.local",
                       trust_domain_aliases: list | tuple = ()) -> list:
    """The HTTP filters istiod generates for these AuthorizationPolicies: AUDIT (LOG), DENY, ALLOW.

    With ``namespace``/``labels`` only the policies that select that workload are used (istiod's
    targeting); without, every resource is taken to apply. Policy order inside a filter does not
    matter for the decision (any match wins)."""
    resources = with_aliases(resources, [trust_domain] + list(trust_domain_aliases))
    by_action: dict = {a: ({}, {}) for a in ("LOG", "DENY", "ALLOW")}
    for res in resources:
        if namespace is not None and not applies(res, namespace, labels or {}, root_namespace):
            continue
        spec = res.get("spec") or {}
        action = spec.get("action", "ALLOW")
        if action not in ("ALLOW", "DENY", "AUDIT"):
            raise UnsupportedPolicy(f"action {action} is not translated")
        enforced, shadow = by_action["LOG" if action == "AUDIT" else action]
        target = shadow if is_dry_run(res) else enforced
        ns = res["metadata"].get("namespace", namespace or "default")
        prefix = f"ns[{ns}]-policy[{res['metadata']['name']}]"
        rules = spec.get("rules") or []
        if not rules and action == "ALLOW":
            target[f"{prefix}-rule[0]"] = MATCH_NEVER
        for k, rule in enumerate(rules):
            target[f"{prefix}-rule[{k}]"] = rbac_policy(rule or {}, ns)
    return [_rbac_filter(a, *by_action[a]) for a in ("LOG", "DENY", "ALLOW") if any(by_action[a])]
