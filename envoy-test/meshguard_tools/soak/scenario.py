"""The pieces of the soak (`make soak`, meshguard_tools/soak/soak.py) that the e2e smoke test reuses.

* :func:`plugin_config` -- policy generation ``g``: the same AuthorizationPolicies and RequestAuthentication
  every time, with ``-g<g>`` in every policy name (so the ``x-meshguard-decision`` header names the
  generation that decided) and two paths whose verdict flips between even and odd generations.
* :data:`KINDS` / :func:`expected` -- the request kinds sent (plaintext straight to the server Envoy, mTLS
  through a client-side Envoy with the productpage SPIFFE certificate) and the response each one must get
  under generation ``g``: ``(status, decision header or "-")``. The oracle is written from the policy text
  above, not recorded from a run.
* :func:`server_bootstrap` / :func:`write_lds` -- the server Envoy takes its listeners from a watched
  directory (``dynamic_resources.lds_config.path_config_source``); an update is written to a temporary
  file outside that directory and renamed into it (atomic, one inotify move event).
"""
from __future__ import annotations

import copy
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from meshguard_tools import envoy_config

ISSUER = "https://issuer.soak.meshguard.test"
KID = "soak-rs256"
PRODUCTPAGE = "cluster.local/ns/default/sa/productpage"
KIND_HEADER = "x-soak-kind"
DECISION_HEADER = "x-meshguard-decision"
NS = "default"


# ---- tokens -------------------------------------------------------------------------------------------


class Tokens:
    """An RS256 key made now, its JWKS, and tokens: valid, expired, signed by another key, not a JWT."""

    def __init__(self):
        import jwt  # PyJWT
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
        jwk.update({"kid": KID, "alg": "RS256", "use": "sig"})
        self.jwks = json.dumps({"keys": [jwk]}, separators=(",", ":"))
        now = int(time.time())

        def sign(k, sub: str, iat: int, exp: int) -> str:
            claims = {"iss": ISSUER, "sub": sub, "iat": iat, "exp": exp}
            return jwt.encode(claims, k, algorithm="RS256", headers={"kid": KID})

        self.valid = sign(key, "soak-user", now - 60, now + 7 * 24 * 3600)
        self.expired = sign(key, "soak-user", now - 7200, now - 3600)
        self.bad_signature = sign(other, "soak-user", now - 60, now + 7 * 24 * 3600)
        self.garbage = "not.a.jwt"


# ---- policies -----------------------------------------------------------------------------------------


def _ap(name: str, spec: dict) -> dict:
    return {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
            "metadata": {"name": name, "namespace": NS}, "spec": spec}


def plugin_config(gen: int, jwks: str) -> dict:
    """Policy generation ``gen``. Even generations allow /flip-a/ and deny /flip-b/, odd ones the reverse."""
    even = gen % 2 == 0
    return {
        "workload": {"namespace": NS, "labels": {"app": "soak"}},
        "decisionHeader": True,
        "resources": [
            {"apiVersion": "security.istio.io/v1", "kind": "RequestAuthentication",
             "metadata": {"name": f"jwt-g{gen}", "namespace": NS},
             "spec": {"jwtRules": [{"issuer": ISSUER, "jwks": jwks}]}},
            _ap(f"deny-admin-g{gen}", {"action": "DENY", "rules": [{"to": [{"operation": {
                "paths": ["/admin", "/admin/*"]}}]}]}),
            _ap(f"deny-flip-g{gen}", {"action": "DENY", "rules": [{"to": [{"operation": {
                "paths": ["/flip-b/*" if even else "/flip-a/*"]}}]}]}),
            _ap(f"allow-g{gen}", {"action": "ALLOW", "rules": [
                {"from": [{"source": {"principals": [PRODUCTPAGE]}}],
                 "to": [{"operation": {"methods": ["GET"], "paths": ["/api/*"]}}]},
                {"from": [{"source": {"requestPrincipals": [f"{ISSUER}/*"]}}],
                 "to": [{"operation": {"paths": ["/jwt/*"]}}]},
                {"to": [{"operation": {"paths": ["/public/*"]}}]},
                {"to": [{"operation": {"paths": ["/flip-a/*", "/flip-b/*"]}}]},
            ]}),
        ],
    }


def invalid_plugin_config(gen: int, jwks: str, how: str) -> dict | str:
    """A configuration meshguard refuses in on_configure (valid JSON, or not JSON at all)."""
    pc = plugin_config(gen, jwks)
    if how == "bad-cidr":
        pc["resources"][1]["spec"]["rules"][0]["from"] = [{"source": {"ipBlocks": ["10.0.0.300/8"]}}]
        return pc
    if how == "unknown-field":
        pc["resources"][3]["spec"]["rules"][0]["from"][0]["source"]["principal"] = [PRODUCTPAGE]
        return pc
    if how == "not-json":
        return json.dumps(pc)[:-7]
    raise ValueError(how)


# ---- request kinds and the oracle ----------------------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    name: str
    listener: str  # "plain": straight to the server; "mtls": via the client-side Envoy (productpage cert)
    method: str
    path: str
    token: str | None = None  # attribute of Tokens
    weight: int = 2  # slots in the rotation

    def headers(self, tokens: Tokens) -> dict:
        h = {"Host": "soak.local", KIND_HEADER: self.name}
        if self.token:
            h["Authorization"] = "Bearer " + getattr(tokens, self.token)
        return h


KINDS = [
    Kind("public", "plain", "GET", "/public/a"),
    Kind("api-no-identity", "plain", "GET", "/api/a"),
    Kind("admin", "plain", "GET", "/admin/x"),
    Kind("jwt-valid", "plain", "GET", "/jwt/a", "valid"),
    Kind("jwt-missing", "plain", "GET", "/jwt/a"),
    Kind("jwt-expired", "plain", "GET", "/jwt/a", "expired"),
    Kind("jwt-bad-signature", "plain", "GET", "/jwt/a", "bad_signature", weight=1),  # an RSA verify each time
    Kind("flip-a", "plain", "GET", "/flip-a/x"),
    Kind("flip-b", "plain", "GET", "/flip-b/x"),
    Kind("mtls-api", "mtls", "GET", "/api/a"),
    Kind("mtls-api-post", "mtls", "POST", "/api/a"),
    Kind("mtls-admin", "mtls", "GET", "/admin"),
    Kind("mtls-jwt-valid", "mtls", "GET", "/jwt/b", "valid"),
    Kind("mtls-jwt-garbage", "mtls", "GET", "/jwt/b", "garbage"),
    Kind("mtls-flip-a", "mtls", "GET", "/flip-a/y"),
    Kind("mtls-flip-b", "mtls", "GET", "/flip-b/y"),
]
KIND_BY_NAME = {k.name: k for k in KINDS}


def _allow(gen: int, rule: int) -> tuple[int, str]:
    return 200, f"allow ns[{NS}]-policy[allow-g{gen}]-rule[{rule}]"


def _deny(gen: int, policy: str) -> tuple[int, str]:
    return 403, f"deny ns[{NS}]-policy[{policy}-g{gen}]-rule[0]"


NO_ALLOW_MATCHED = (403, "deny none")  # ALLOW policies exist, none matched: no policy id to name
JWT_REJECTED = (401, "-")  # a present but invalid token: 401 before authorization, no decision header


def expected(kind: str, gen: int) -> tuple[int, str]:
    """(status, x-meshguard-decision or "-") that ``kind`` must get under generation ``gen``."""
    even = gen % 2 == 0
    flip_a = _allow(gen, 3) if even else _deny(gen, "deny-flip")
    flip_b = _deny(gen, "deny-flip") if even else _allow(gen, 3)
    return {
        "public": _allow(gen, 2),
        "api-no-identity": NO_ALLOW_MATCHED,  # no peer identity on plaintext
        "admin": _deny(gen, "deny-admin"),
        "jwt-valid": _allow(gen, 1),
        "jwt-missing": NO_ALLOW_MATCHED,
        "jwt-expired": JWT_REJECTED,
        "jwt-bad-signature": JWT_REJECTED,
        "flip-a": flip_a,
        "flip-b": flip_b,
        "mtls-api": _allow(gen, 0),
        "mtls-api-post": NO_ALLOW_MATCHED,  # rule 0 is GET only
        "mtls-admin": _deny(gen, "deny-admin"),
        "mtls-jwt-valid": _allow(gen, 1),
        "mtls-jwt-garbage": JWT_REJECTED,
        "mtls-flip-a": flip_a,
        "mtls-flip-b": flip_b,
    }[kind]


def generation_of(decision: str) -> int | None:
    """The generation a decision header names (``...-g<N>]...``), or None (``deny none``, no header)."""
    i = decision.find("-g")
    while i >= 0:
        j = i + 2
        while j < len(decision) and decision[j].isdigit():
            j += 1
        if j > i + 2 and j < len(decision) and decision[j] == "]":
            return int(decision[i + 2:j])
        i = decision.find("-g", i + 1)
    return None


def live_generations(gens: dict, sec: int, drain_s: float) -> list[int]:
    """Generations that may decide a response stamped with wall-clock second ``sec``. ``gens``: generation ->
    {"written": t, "applied": t, "retired": t (when the next one was applied)}. A generation may decide from
    a second before its file was written until ``drain_s`` + 2 s after it was replaced (connections opened
    on the old filter chain finish their drain)."""
    slack = drain_s + 2
    return [g for g, w in gens.items()
            if "applied" in w and int(w["written"]) - 1 <= sec <= w.get("retired", 1e18) + slack]


def check_tallies(tallies, gens: dict, drain_s: float) -> dict:
    """Classify tallied responses ``(kind, status, decision, second, count)``: a status other than
    200/401/403 is an error; a response that is not ``expected(kind, g)`` for a generation ``g`` live at its
    second is a wrong decision (a missing decision where one is due included)."""
    per_kind: dict[str, dict] = {}
    by_gen: dict[str, int] = {}
    out = {"requests": 0, "wrong": 0, "errors": 0, "wrong_examples": [], "error_examples": [],
           "per_kind": per_kind, "by_generation": by_gen}
    for kind, status, dec, sec, count in tallies:
        out["requests"] += count
        pk = per_kind.setdefault(kind, {"requests": 0, "by_response": {}})
        pk["requests"] += count
        key = f"{status} {dec}"
        pk["by_response"][key] = pk["by_response"].get(key, 0) + count
        g = generation_of(dec)
        gk = str(g) if g is not None else "unnamed"
        by_gen[gk] = by_gen.get(gk, 0) + count
        if status not in (200, 401, 403):
            out["errors"] += count
            if len(out["error_examples"]) < 20:
                out["error_examples"].append(f"{count} x {kind}: {status} {dec} at {sec}")
            continue
        live = live_generations(gens, sec, drain_s)
        if kind not in KIND_BY_NAME or not any(expected(kind, g2) == (status, dec) for g2 in live):
            out["wrong"] += count
            if len(out["wrong_examples"]) < 20:
                out["wrong_examples"].append(f"{count} x {kind}: {status} {dec} at {sec} (live generations {live})")
    return out


# ---- Envoy configuration ---------------------------------------------------------------------------------


def _echo_kind_filter() -> dict:
    """First HTTP filter: copies the request's x-soak-kind into the response, local replies included
    (a reply sent by a later filter passes back through this one), so a client can tally per kind."""
    return {
        "name": "envoy.filters.http.header_mutation",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation",
            "mutations": {"response_mutations": [{"append": {
                "header": {"key": KIND_HEADER, "value": f"%REQ({KIND_HEADER})%"},
                "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}}]},
        },
    }


def listeners(plugin_cfg, *, wasm_path: str, cert_dir: str, plain_port: int, mtls_port: int,
              failure_policy: str = "FAIL_CLOSED") -> list:
    """The two server listeners (plaintext, mTLS) of envoy_config.render() as LDS resources."""
    cfg = envoy_config.render(plugin_cfg, wasm_path=wasm_path, cert_dir=cert_dir, plain_port=plain_port,
                              mtls_port=mtls_port)
    out = []
    for listener in cfg["static_resources"]["listeners"]:
        listener = copy.deepcopy(listener)
        for chain in listener["filter_chains"]:
            for nf in chain["filters"]:
                hf = nf["typed_config"]["http_filters"]
                for f in hf:
                    if f["name"] == "envoy.filters.http.wasm":
                        f["typed_config"]["config"]["failure_policy"] = failure_policy
                hf.insert(0, _echo_kind_filter())
        listener["@type"] = "type.googleapis.com/envoy.config.listener.v3.Listener"
        out.append(listener)
    return out


@dataclass
class LdsDir:
    """``lds/listeners.json`` watched by Envoy; ``tmp/`` next to it for the atomic rename."""

    root: Path
    writes: int = field(default=0)

    def __post_init__(self):
        (self.root / "lds").mkdir(parents=True, exist_ok=True)
        (self.root / "tmp").mkdir(parents=True, exist_ok=True)

    @property
    def path(self) -> Path:
        return self.root / "lds" / "listeners.json"

    def write(self, resources: list) -> None:
        self.writes += 1
        tmp = self.root / "tmp" / f"listeners-{self.writes}.json"
        tmp.write_text(json.dumps({"resources": resources}, separators=(",", ":")), encoding="utf-8")
        os.replace(tmp, self.path)


def server_bootstrap(lds: LdsDir, admin_port: int) -> dict:
    return {
        "node": {"id": "sidecar~127.0.0.1~soak.default~default.svc.cluster.local", "cluster": "soak"},
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}},
        "dynamic_resources": {"lds_config": {
            "resource_api_version": "V3",
            "path_config_source": {"path": str(lds.path), "watched_directory": {"path": str(lds.path.parent)}},
        }},
    }


def lds_counters(stats: dict) -> dict:
    """listener_manager.lds.update_{attempt,success,rejected} from an admin /stats dict."""
    return {k: int(stats.get(f"listener_manager.lds.update_{k}", 0) or 0) for k in ("attempt", "success", "rejected")}
