"""Random AuthorizationPolicy sets and requests for the differential test (meshguard vs Envoy RBAC).

Everything comes from one ``random.Random`` so a seed reproduces a campaign exactly.

Policies use every AuthorizationPolicy field meshguard supports that Envoy's RBAC filter can express
without JWT metadata: actions ALLOW / DENY / AUDIT, the dry-run annotation, selectors and namespaces
(targeting), ``from`` (principals, namespaces, serviceAccounts, trustDomains, ipBlocks, remoteIpBlocks
and their ``not*``), ``to`` (hosts, ports, methods, paths incl. ``{*}``/``{**}`` templates, and
``not*``), ``when`` (request.headers[...] incl. pseudo-headers, source.ip, remote.ip,
source.principal/namespace/serviceAccount/trustDomain, destination.ip/port, connection.sni), empty
shapes (ALLOW ``spec`` without rules, ``rules: [{}]``), ``targetRefs``. Values use the forms ``abc``,
``abc*``, ``*abc``, ``*`` and some odd ones (``*abc*``, a literal star in the middle, regex
metacharacters). A set also picks the mesh trust domain and aliases.

Requests are aimed at one rule of the set most of the time (:func:`requests_for`): its identities, source
and X-Forwarded-For addresses, SNI, paths (then respelled as in known-bypasses.md A1-A8), hosts, methods
and header values, with repeated, empty and non-UTF-8 values mixed in.

Excluded by rule (README, "Reliability"):

* ``requestPrincipals`` / ``notRequestPrincipals`` / ``request.auth.*``: RBAC needs jwt_authn metadata
  (JWT parity is tested separately against Envoy's jwt_authn);
* ``experimental.envoy.filters.*``: dynamic metadata no filter here produces;
* values istiod skips or widens silently and meshguard refuses at load time (README, deliberate
  differences): never generated, every generated value is valid for both;
* CUSTOM: refused by meshguard;
* client certificates with several URI SANs (Wasm sees the first only; README, deliberate differences):
  every test certificate has at most one;
* ``source.ip`` behind X-Forwarded-For without the ``meshguard.direct_peer`` filter state (README,
  deliberate differences): every listener has the ``set_filter_state`` filter.

The listener port is not known when a policy is generated: ``ports`` / ``notPorts`` /
``destination.port`` may hold the token :data:`PORT`, which :func:`bind_port` replaces with each
listener's own port (the meshguard and the native listener of a pair have different ports).
"""
from __future__ import annotations

import copy
import ipaddress
import random
import re

from meshguard_tools.certs import IDENTITIES  # client certificate name -> SPIFFE URI SAN (or None)

PORT = "PORT"  # replaced by the listener's port (bind_port)
OTHER_PORT = "9080"
NAMESPACE = "default"
ROOT_NAMESPACE = "istio-system"
LABELS = {"app": "details", "version": "v1"}

# client source addresses (loopback only; 127.0.0.0/8 is all loopback on Linux)
SOURCES = ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.10"]
H2_SHARE = 0.08
KEEPALIVE_SHARE = 0.12  # followed by 1-2 more requests on the same HTTP/1.1 connection
SNIS = [None, "localhost", "outbound_.9080_._.details.default.svc.cluster.local", "Details.Default.svc"]

# ---- value pools (forms: exact, prefix*, *suffix, *, odd ones) ----------------------------------------
PRINCIPALS = [
    "cluster.local/ns/default/sa/productpage", "cluster.local/ns/default/sa/reviews",
    "cluster.local/ns/foo/sa/bar", "other-td/ns/foo/sa/bar", "cluster.local/ns/istio-system/sa/ingress",
    "cluster.local/ns/default/*", "cluster.local/ns/default/sa/review*", "*/ns/foo/sa/bar", "*/sa/ingress",
    "*", "cluster.local/ns/default/sa/product.age", "*td/ns/foo/sa/bar", "cluster.local/ns/*/sa/bar",
]
NAMESPACES = ["default", "foo", "istio-system", "other", "*", "de*", "*o", "f*o", "*-system", "d.fault", "*s*"]
SERVICE_ACCOUNTS = ["productpage", "reviews", "default/reviews", "foo/bar", "istio-system/ingress", "bar", "default/product.age"]
TRUST_DOMAINS = ["cluster.local", "other-td", "*", "cluster*", "*-td", "*.local", "other*"]
IP_BLOCKS = ["127.0.0.1", "127.0.0.2/32", "127.0.0.0/30", "127.0.0.0/8", "10.0.0.0/8", "127.0.0.10", "::1", "127.0.0.3/32"]
REMOTE_IP_BLOCKS = IP_BLOCKS + ["10.1.2.3", "192.0.2.0/24", "10.1.0.0/16"]
DEST_IPS = ["127.0.0.1", "127.0.0.0/8", "10.0.0.1", "127.0.0.1/32", "::1/128"]
HOSTS = ["example.com", "*.example.com", "api.*", "example.com:*", "*", "localhost", "EXAMPLE.com", "*:80",
         "Api.Example.Com", "*.local*"]
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "*", "get", "PO*", "*ETE"]
PATHS = ["/admin", "/admin*", "/api/*", "*.html", "*", "/public/*", "/api/{*}/items", "/store/{**}/cart",
         "/public/{**}", "/a/*b", "/", "/api/v1/items", "*/secret", "/Admin", "/admin/", "/{*}", "/{**}",
         "/x;y", "/a%2Fb"]
SNI_VALUES = ["localhost", "outbound_*", "*", "*.svc", "details.default.svc", "outbound_.9080_._.details.default.svc.cluster.local"]
HEADER_NAMES = ["x-role", "x-tenant", "X-Role", "x_role", "cookie"]
HEADER_VALUES = ["admin", "user", "adm*", "*min", "*", "a", "admin,user", "User", "*er*", "caf\u00e9", "caf*",
                 "*\u00e9", "a=1", "a=1; b=2"]
# a header value byte that is not UTF-8 (0xE9 alone): "\udce9" is sent as that raw byte (surrogateescape)
RAW_E9 = "\udce9"
# pseudo-headers and headers Envoy sets, strips or rewrites before any filter (both filters see its result)
SPECIAL_HEADERS = {
    ":authority": HOSTS[:4] + ["localhost*"],
    ":method": ["GET", "POST", "P*"],
    ":path": ["/admin", "/admin*", "*?q=1", "/api/*"],
    ":scheme": ["http", "https", "*"],
    "host": ["localhost", "example.com", "*"],
    "x-forwarded-proto": ["http", "https", "*"],
    "x-request-id": ["*"],
    "x-forwarded-client-cert": ["*", "By=*", "*productpage"],
    "x-forwarded-for": ["*", "10.1.2.3", "*10.1.2.3"],
}


def _some(rng: random.Random, pool: list, k_max: int = 3) -> list:
    k = rng.randint(1, min(k_max, len(pool)))
    return rng.sample(pool, k)


def _ports(rng: random.Random) -> list:
    return rng.choice([[PORT], [OTHER_PORT], [PORT, OTHER_PORT], ["80"]])


# ---- policies -------------------------------------------------------------------------------------------

SOURCE_FIELDS = {
    "principals": PRINCIPALS,
    "namespaces": NAMESPACES,
    "serviceAccounts": SERVICE_ACCOUNTS,
    "trustDomains": TRUST_DOMAINS,
    "ipBlocks": IP_BLOCKS,
    "remoteIpBlocks": REMOTE_IP_BLOCKS,
}
OPERATION_FIELDS = {"hosts": HOSTS, "ports": None, "methods": METHODS, "paths": PATHS}


def _field_values(rng: random.Random, pools: dict, field: str) -> list:
    pool = pools[field]
    return _ports(rng) if pool is None else _some(rng, pool)


def _fields(rng: random.Random, pools: dict, exclusive: tuple = ()) -> dict:
    """1-3 fields (positive and/or ``not*``) of a source or operation."""
    out: dict = {}
    names = list(pools)
    for field in rng.sample(names, rng.randint(1, 3)):
        if field in exclusive and any(f in exclusive and f != field for f in out):
            continue
        nf = "not" + field[0].upper() + field[1:]
        form = rng.random()
        if form < 0.5:
            out[field] = _field_values(rng, pools, field)
        elif form < 0.85:
            out[nf] = _field_values(rng, pools, field)
        else:
            out[field] = _field_values(rng, pools, field)
            out[nf] = _field_values(rng, pools, field)
    return out


def _source(rng: random.Random) -> dict:
    # istiod validation: serviceAccounts may not be combined with principals / namespaces
    src = _fields(rng, SOURCE_FIELDS)
    if any(k.lower().endswith("serviceaccounts") for k in src):
        for k in ("principals", "notPrincipals", "namespaces", "notNamespaces"):
            src.pop(k, None)
    return src


def _operation(rng: random.Random) -> dict:
    return _fields(rng, OPERATION_FIELDS)


def _condition(rng: random.Random) -> dict:
    kind = rng.choice(["header", "header", "header", "pseudo", "source.ip", "remote.ip", "source.principal",
                       "source.namespace", "source.serviceAccount", "source.trustDomain", "destination.ip",
                       "destination.port", "connection.sni"])
    if kind == "header":
        key, pool = f"request.headers[{rng.choice(HEADER_NAMES)}]", HEADER_VALUES
    elif kind == "pseudo":
        name = rng.choice(sorted(SPECIAL_HEADERS))
        key, pool = f"request.headers[{name}]", SPECIAL_HEADERS[name]
    else:
        key = kind
        pool = {
            "source.ip": IP_BLOCKS, "remote.ip": REMOTE_IP_BLOCKS, "source.principal": PRINCIPALS,
            "source.namespace": NAMESPACES, "source.serviceAccount": SERVICE_ACCOUNTS,
            "source.trustDomain": TRUST_DOMAINS, "destination.ip": DEST_IPS, "destination.port": None,
            "connection.sni": SNI_VALUES,
        }[kind]

    def values() -> list:
        return _ports(rng) if pool is None else _some(rng, pool, 2)

    r = rng.random()
    cond: dict = {"key": key}
    if r < 0.55:
        cond["values"] = values()
    elif r < 0.85:
        cond["notValues"] = values()
    else:
        cond["values"], cond["notValues"] = values(), values()
    return cond


def _rule(rng: random.Random) -> dict:
    if rng.random() < 0.08:
        return {}
    rule: dict = {}
    if rng.random() < 0.55:
        rule["from"] = [{"source": _source(rng)} for _ in range(rng.choice([1, 1, 2]))]
    if rng.random() < 0.6:
        rule["to"] = [{"operation": _operation(rng)} for _ in range(rng.choice([1, 1, 2]))]
    if rng.random() < 0.4:
        rule["when"] = [_condition(rng) for _ in range(rng.choice([1, 1, 2]))]
    return rule


def policy(rng: random.Random, name: str) -> dict:
    action = rng.choices(["ALLOW", "DENY", "AUDIT"], weights=[45, 38, 17])[0]
    meta: dict = {"name": name, "namespace": rng.choices([NAMESPACE, ROOT_NAMESPACE, "other"], weights=[80, 14, 6])[0]}
    if action != "AUDIT" and rng.random() < 0.12:
        meta["annotations"] = {"istio.io/dry-run": rng.choice(["true", "true", "false", "1", "F"])}
    spec: dict = {}
    r = rng.random()
    if r < 0.3:
        spec["selector"] = {"matchLabels": {"app": "details"}}
    elif r < 0.36:
        spec["selector"] = {"matchLabels": dict(LABELS)}
    elif r < 0.46:
        spec["selector"] = {"matchLabels": {"app": "ratings"}}
    elif r < 0.5:
        spec["selector"] = {"matchLabels": {}}
    elif r < 0.53:  # never applies to a sidecar
        spec["targetRefs"] = [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "gw"}]
    if action != "ALLOW" or rng.random() < 0.8:
        spec["action"] = action
    r = rng.random()
    if action == "ALLOW" and r < 0.05:
        pass  # spec without rules: deny everything
    elif action == "ALLOW" and r < 0.08:
        spec["rules"] = []
    else:
        spec["rules"] = [_rule(rng) for _ in range(rng.choice([1, 1, 2, 3]))]
    return {"apiVersion": rng.choice(["security.istio.io/v1", "security.istio.io/v1beta1"]),
            "kind": "AuthorizationPolicy", "metadata": meta, "spec": spec}


def policy_set(rng: random.Random, index: int) -> list:
    """1-4 AuthorizationPolicies for one workload (one listener pair)."""
    return [policy(rng, f"p{index}-{k}") for k in range(rng.choice([1, 1, 2, 2, 3, 4]))]


def bind_port(obj, port: int):
    """A deep copy with every :data:`PORT` token replaced by ``port``."""
    if isinstance(obj, dict):
        return {k: bind_port(v, port) for k, v in obj.items()}
    if isinstance(obj, list):
        return [bind_port(v, port) for v in obj]
    return str(port) if obj == PORT else obj


# (mesh trust domain, aliases): the client certificates are all cluster.local but other-td/ns/foo/sa/bar
TRUST = [("cluster.local", [])] * 14 + [("cluster.local", ["other-td"])] * 3 + [("other-td", ["cluster.local"])] * 2 \
    + [("td.example", [])]


def meshguard_config(resources: list, trust_domain: str = "cluster.local", aliases: list | None = None) -> dict:
    return {
        "workload": {"namespace": NAMESPACE, "labels": dict(LABELS)},
        "rootNamespace": ROOT_NAMESPACE,
        "trustDomain": trust_domain,
        "trustDomainAliases": list(aliases or []),
        "decisionHeader": True,
        "resources": copy.deepcopy(resources),
    }


# ---- requests -------------------------------------------------------------------------------------------


HINT_KINDS = ("paths", "hosts", "methods", "headers", "identities", "sources", "remote", "snis")
IDENTITY_FIELDS = {"principals": "source.principal", "namespaces": "source.namespace",
                   "serviceAccounts": "source.serviceAccount", "trustDomains": "source.trustDomain"}


def _hints(rule: dict) -> dict:
    """The values one rule mentions (positive and negative), by kind: requests built from them sit on the
    rule's decision boundary instead of missing it."""
    seen: dict = {k: [] for k in HINT_KINDS}

    def both(d: dict, field: str) -> list:
        return list(d.get(field) or []) + list(d.get("not" + field[0].upper() + field[1:]) or [])

    for t in rule.get("to") or []:
        op = t["operation"]
        for kind in ("paths", "hosts", "methods"):
            seen[kind] += both(op, kind)
    for f in rule.get("from") or []:
        src = f["source"]
        for field, key in IDENTITY_FIELDS.items():
            seen["identities"] += [(key, v) for v in both(src, field)]
        seen["sources"] += both(src, "ipBlocks")
        seen["remote"] += both(src, "remoteIpBlocks")
    for c in rule.get("when") or []:
        key, vals = c["key"], list(c.get("values") or []) + list(c.get("notValues") or [])
        if key.startswith("request.headers["):
            name = key[len("request.headers["):-1]
            kind = {":authority": "hosts", "host": "hosts", ":method": "methods", ":path": "paths"}.get(name.lower())
            if kind:
                seen[kind] += vals
            else:
                seen["headers"] += [(name, v) for v in vals]
        elif key in IDENTITY_FIELDS.values():
            seen["identities"] += [(key, v) for v in vals]
        elif key == "source.ip":
            seen["sources"] += vals
        elif key == "remote.ip":
            seen["remote"] += vals
        elif key == "connection.sni":
            seen["snis"] += vals
    return seen


def _identity_matches(key: str, pattern: str, uri: str | None, policy_ns: str = NAMESPACE) -> bool:
    """Roughly istiod's identity matchers (only used to aim requests; the engines decide)."""
    if uri is None:
        return pattern == "*" and key == "source.principal"
    rest = uri[len("spiffe://"):]
    td, _, path = rest.partition("/")
    ns = path.split("/")[1] if path.startswith("ns/") else ""
    if key == "source.principal":
        return form_matches(pattern, rest)
    if key == "source.namespace":
        return re.fullmatch(".*".join(re.escape(p) for p in pattern.split("*")), ns) is not None
    if key == "source.serviceAccount":
        want_ns, _, sa = pattern.rpartition("/")
        return (want_ns or policy_ns) == ns and path.endswith("/sa/" + sa)
    return form_matches(pattern, td)


def _fill(rng: random.Random, pattern: str, filler: list) -> str:
    """A concrete string matching a value form (``*`` -> a random filler)."""
    if pattern == "*":
        return rng.choice(filler)
    if pattern.startswith("*"):
        return rng.choice(filler) + pattern[1:]
    if pattern.endswith("*"):
        return pattern[:-1] + rng.choice(filler)
    return pattern


SEGMENTS = ["admin", "api", "public", "store", "items", "v1", "x", "secret", "cart", "index.html", "Admin", "a.b"]


def _path_from(rng: random.Random, pattern: str) -> str:
    if "{" in pattern:
        out = []
        for seg in pattern.split("/"):
            if seg == "{*}":
                out.append(rng.choice(SEGMENTS + ["", "a%2Fb", "x.y~z"]))
            elif seg == "{**}":
                out.append(rng.choice(["", "a", "a/b", "a//b", "b/../c"]))
            else:
                out.append(seg)
        return "/".join(out)
    p = _fill(rng, pattern, ["", "/", "x", "/x", "istrator", "/a/b", ".html", "/../admin"])
    return p if p.startswith("/") else "/" + p


def _tricky(rng: random.Random, path: str) -> str:
    """One spelling change of the kind that caused bypasses (known-bypasses.md A1-A8)."""
    segs = path.split("/")
    k = rng.randrange(len(segs))
    choice = rng.randrange(18)
    if choice == 0:
        return path.replace("/", "//", 1)
    if choice == 1:
        return "/./" + path.lstrip("/")
    if choice == 2:
        return "/x/.." + path
    if choice == 3:
        return "/x/%2e%2e" + path
    if choice == 4:
        return path.replace("/", "%2F", 2).replace("%2F", "/", 1)
    if choice == 5:
        return path.replace("/", "\\", 2).replace("\\", "/", 1)
    if choice == 6:
        return path.replace("/", "%5C", 2).replace("%5C", "/", 1)
    if choice == 7:
        return path + rng.choice([";a=b", ";", ";jsessionid=1/x"])
    if choice == 8:
        return path + rng.choice(["?", "?q=1", "?a=/admin&b=..", "?#"])
    if choice == 9:
        return path + rng.choice(["#frag", "#", "%23"])
    if choice == 10:
        return path.upper()
    if choice == 11:
        return "/".join(s if i != k else s.replace("a", "%61").replace("d", "%64") for i, s in enumerate(segs))
    if choice == 12:
        return path + "/"
    if choice == 13:
        return path.replace(".", "%2e")
    if choice == 14:
        return "/".join(s if i != k else s + "/." for i, s in enumerate(segs))
    if choice == 15:
        return path + rng.choice(["%00", "%20", "%2F", "%23x", "%252e"])
    if choice == 16:
        return rng.choice(["http://example.com", "http://Example.COM:80", "https://api.example.com"]) + path
    return "/".join(s if i != k else s + "/x/.." for i, s in enumerate(segs))


def _host(rng: random.Random, seen: list) -> str:
    if seen and rng.random() < 0.6:
        h = _fill(rng, rng.choice(seen), ["api.", "www.", "example.com", "x", "local", ":80", ""])
    else:
        h = rng.choice(["localhost", "example.com", "api.example.com", "details", "10.0.0.1", "api.test"])
    r = rng.random()
    if r < 0.1:
        h = h.upper()
    elif r < 0.2:
        h += rng.choice([":80", ":8080", ":", ":443"])
    elif r < 0.26:
        h += "."
    elif r < 0.3:
        h = h.capitalize()
    return h or "localhost"


REAL_METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]


def form_matches(pattern: str, value: str) -> bool:
    """Does ``value`` match an Istio value form (``*``, ``*suffix``, ``prefix*``, exact)?"""
    if pattern == "*":
        return True
    if pattern.startswith("*"):
        return value.endswith(pattern[1:])
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    return value == pattern


def _method(rng: random.Random, seen: list) -> str:
    # Envoy 1.40 answers 400 to methods it does not know (and to lower-case ones): a few of those only
    if seen and rng.random() < 0.55:
        candidates = [m for m in REAL_METHODS if form_matches(rng.choice(seen), m)]
        if candidates:
            return rng.choice(candidates)
    return rng.choices(REAL_METHODS + ["get", "Post", "FOO"], weights=[30, 15, 8, 8, 4, 4, 4, 2, 1, 1])[0]


def _headers(rng: random.Random, seen: list) -> list:
    out: list = []
    for _ in range(rng.choice([0, 1, 1, 2, 3])):
        if seen and rng.random() < 0.7:
            name, v = rng.choice(seen)
            value = _fill(rng, v, ["", "x", "admin", "adm", "in"])
        else:
            name = rng.choice(["x-role", "x-tenant", "x-other", "cookie", "x_role"])
            value = rng.choice(["admin", "user", "", "admin,user", "ADMIN", "a", " admin", "caf\u00e9", "caf" + RAW_E9,
                                "a=1", "b=2"])
        name = name if rng.random() < 0.8 else name.upper()
        if name.startswith(":"):
            continue  # :scheme (the others are hosts / methods / paths hints)
        out.append([name, value.strip() if rng.random() < 0.9 else value])
        if rng.random() < 0.25:  # a repeated header, the other value first or last
            extra = [name, rng.choice(["user", "admin", "", "x"])]
            out.insert(len(out) - 1 if rng.random() < 0.5 else len(out), extra)
    if rng.random() < 0.2:
        out.append(["X-Forwarded-For", rng.choice(["10.1.2.3", "192.0.2.7", "192.0.2.7, 10.1.2.3", "127.0.0.2",
                                                    "not-an-ip", "::1"])])
    return out


def _address_in(rng: random.Random, block: str) -> str | None:
    net = ipaddress.ip_network(block, strict=False)
    if net.version != 4:
        return None
    hosts = [str(net.network_address + k) for k in (0, 1, 2, 3, 10) if k < net.num_addresses]
    return rng.choice(hosts)


def request(rng: random.Random, seen: dict) -> dict:
    """One request: the HTTP/1.1 message and its connection (TLS, client certificate, SNI, source)."""
    if seen["paths"] and rng.random() < 0.7:
        path = _path_from(rng, rng.choice(seen["paths"]))
    else:
        path = rng.choice(["/", "/admin", "/api/v1/items", "/public/index.html", "/store/a/cart", "/x"])
    while rng.random() < 0.3:
        path = _tricky(rng, path)
    tls = rng.random() < 0.7
    identity = rng.choice(list(IDENTITIES) + [None, None]) if tls else None
    if seen["identities"] and rng.random() < 0.7:
        key, pattern = rng.choice(seen["identities"])
        fits = [n for n, uri in IDENTITIES.items() if _identity_matches(key, pattern, uri)]
        if fits and rng.random() < 0.85:
            tls, identity = True, rng.choice(fits)
    source = rng.choice(SOURCES)
    if seen["sources"] and rng.random() < 0.6:
        source = next((a for a in [_address_in(rng, rng.choice(seen["sources"]))] if a in SOURCES), source)
    headers = [["Host", _host(rng, seen["hosts"])]] + _headers(rng, seen["headers"])
    if seen["remote"] and rng.random() < 0.6:
        addr = _address_in(rng, rng.choice(seen["remote"]))
        if addr:
            headers.append(["X-Forwarded-For", rng.choice([addr, f"192.0.2.9, {addr}", f"{addr}, 192.0.2.9"])])
    sni = None
    if tls:
        sni = rng.choice(SNIS)
        if seen["snis"] and rng.random() < 0.6:
            sni = _fill(rng, rng.choice(seen["snis"]), ["localhost", "x.svc", "outbound_.1_._.a", "a"])
            sni = ".".join(label for label in sni.split(".") if label) or None  # no empty DNS labels
    req = {"method": _method(rng, seen["methods"]), "path": path, "headers": headers, "tls": tls,
           "identity": identity, "sni": sni, "source": source}
    if rng.random() < H2_SHARE and path.startswith("/"):
        req["h2"] = True  # sent with curl (one process per request, so only a share)
    return req


def requests_for(rng: random.Random, resources: list, n: int) -> list:
    """``n`` requests: most aimed at one rule of the set (its values, with spelling changes), some at the
    values of all rules, some at none."""
    rules = [r for res in resources for r in (res["spec"].get("rules") or [])]
    every: dict = {k: [] for k in HINT_KINDS}
    for r in rules:
        for k, v in _hints(r).items():
            every[k] += v
    out = []
    for _ in range(n):
        x = rng.random()
        if rules and x < 0.6:
            seen = _hints(rng.choice(rules))
        elif x < 0.85:
            seen = every
        else:
            seen = {k: [] for k in HINT_KINDS}
        req = request(rng, seen)
        if not req.get("h2") and rng.random() < KEEPALIVE_SHARE:
            req["then"] = [{k: more[k] for k in ("method", "path", "headers")}
                           for more in (request(rng, seen) for _ in range(rng.choice([1, 2])))]
        out.append(req)
    return out
