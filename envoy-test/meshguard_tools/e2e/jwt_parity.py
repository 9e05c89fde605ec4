"""Hostile-token parity between meshguard's own JWT verifier (``jwtSource: filter``) and Envoy's
``jwt_authn`` + RBAC, in one Envoy.

Each scenario is a RequestAuthentication + AuthorizationPolicy pair served by two listeners of the same
Envoy, both routing to one loopback echo upstream:

* ``mg_<scenario>``: meshguard with the RequestAuthentication and the AuthorizationPolicies;
* ``ref_<scenario>``: ``envoy.filters.http.jwt_authn`` shaped as istiod builds it (``policy_applier.go``:
  ``requires_any[provider, allow_missing]`` for one rule, the nested shape for several,
  ``payload_in_metadata: payload``, ``forward: forwardOriginalToken``, no ``jwt_cache_config``), then the
  RBAC filters istiod would generate for the policies (claims and request principals as metadata matchers
  on the jwt_authn payload).

A case is one request; both answers are reduced to (status, body, www-authenticate, and for a request
that reached the upstream: the :path and every token/output header it received, in order) and must be
equal. Keys and tokens are generated when the cases are built (``cases()``); the classes group them
by the issue they exercise, and ``run()`` reports counts per class.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import time
from dataclasses import dataclass, field
from urllib.parse import quote

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from meshguard_tools import envoy_config
from meshguard_tools.istio_rbac import path_rule, string_match

ISS = "https://idp.parity.test"
ISS2 = "https://other.parity.test"
NS = "default"
LABELS = {"app": "web-api"}
JWT_FILTER = "envoy.filters.http.jwt_authn"

# headers whose values reaching the upstream are compared (token locations and output headers)
WATCHED = ("authorization", "x-raw", "x-tok", "cookie", "x-jwt-payload", "x-sub", "x-num", "x-big", "x-float",
           "x-neg", "x-empty", "x-bool", "x-nested", "x-list", "x-obj", "x-scope", "x-exp")


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _int_b64(n: int, size: int | None = None) -> str:
    return b64(n.to_bytes(size or (n.bit_length() + 7) // 8, "big"))


# ---- keys --------------------------------------------------------------------------------------------


class Key:
    def __init__(self, kid: str | None, alg: str, private=None, secret: bytes | None = None):
        self.kid, self.alg, self.private, self.secret = kid, alg, private, secret

    def jwk(self, **override) -> dict:
        d: dict = {}
        if self.kid is not None:
            d["kid"] = self.kid
        if self.secret is not None:
            d.update({"kty": "oct", "alg": self.alg, "k": b64(self.secret)})
        else:
            pub = self.private.public_key()
            if isinstance(pub, rsa.RSAPublicKey):
                n = pub.public_numbers()
                d.update({"kty": "RSA", "alg": self.alg, "use": "sig", "n": _int_b64(n.n), "e": _int_b64(n.e)})
            elif isinstance(pub, ec.EllipticCurvePublicKey):
                n = pub.public_numbers()
                size = (pub.curve.key_size + 7) // 8
                crv = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}[pub.curve.name]
                d.update({"kty": "EC", "alg": self.alg, "use": "sig", "crv": crv,
                          "x": _int_b64(n.x, size), "y": _int_b64(n.y, size)})
            else:
                from cryptography.hazmat.primitives import serialization
                raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
                d.update({"kty": "OKP", "alg": self.alg, "use": "sig", "crv": "Ed25519", "x": b64(raw)})
        for k, v in override.items():
            if v is None:
                d.pop(k, None)
            else:
                d[k] = v
        return d

    def sign(self, data: bytes, alg: str | None = None, salt: int | None = None) -> bytes:
        alg = alg or self.alg
        bits = {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}
        if self.secret is not None:
            return hmac.new(self.secret, data, {"256": hashlib.sha256, "384": hashlib.sha384,
                                                "512": hashlib.sha512}[alg[2:]]).digest()
        if alg.startswith("RS"):
            return self.private.sign(data, padding.PKCS1v15(), bits[alg[2:]])
        if alg.startswith("PS"):
            h = bits[alg[2:]]
            return self.private.sign(data, padding.PSS(padding.MGF1(h), h.digest_size if salt is None else salt), h)
        if alg.startswith("ES"):
            r, s = decode_dss_signature(self.private.sign(data, ec.ECDSA(bits[alg[2:]])))
            size = (self.private.curve.key_size + 7) // 8
            return r.to_bytes(size, "big") + s.to_bytes(size, "big")
        return self.private.sign(data)


@dataclass
class KeyRing:
    rsa: Key
    ps: Key
    ec: Key
    ec384: Key
    ed: Key
    hs: Key
    other: Key  # not in any JWKS: bad signatures

    @classmethod
    def generate(cls) -> "KeyRing":
        rsa_priv = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return cls(
            rsa=Key("rsa-1", "RS256", rsa_priv),
            ps=Key("ps-1", "PS256", rsa.generate_private_key(public_exponent=65537, key_size=2048)),
            ec=Key("ec-1", "ES256", ec.generate_private_key(ec.SECP256R1())),
            ec384=Key("ec-2", "ES384", ec.generate_private_key(ec.SECP384R1())),
            ed=Key("ed-1", "EdDSA", ed25519.Ed25519PrivateKey.generate()),
            hs=Key("hs-1", "HS256", secret=hashlib.sha256(str(time.time()).encode()).digest()),
            other=Key("rsa-1", "RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        )

    def jwks(self, extra: list | None = None, only: list | None = None) -> str:
        keys = [k.jwk() for k in (only or [self.rsa, self.ps, self.ec, self.ec384, self.ed, self.hs])]
        return json.dumps({"keys": keys + list(extra or [])})


# ---- tokens ------------------------------------------------------------------------------------------


def now() -> int:
    return int(time.time())


def claims(sub: str = "alice", **extra) -> dict:
    c = {"iss": ISS, "sub": sub, "aud": "web-api", "iat": now(), "exp": now() + 600, "scope": "read write",
         "num": 42}
    for k, v in extra.items():
        if v is None:
            c.pop(k, None)
        else:
            c[k] = v
    return c


def raw_json(value) -> bytes:
    return value if isinstance(value, bytes) else (value.encode() if isinstance(value, str)
                                                   else json.dumps(value, separators=(",", ":")).encode())


def forge(payload=None, key: Key | None = None, *, header=None, alg: str | None = None, kid="key",
          sig: bytes | None = None, sig_text: str | None = None, h_text: str | None = None,
          p_text: str | None = None) -> str:
    """A compact JWS with full control: ``header``/``payload`` as dict, str or bytes (raw JSON text),
    signed over exactly the segments used; ``sig``/``sig_text`` replace the signature."""
    key = key or RING.rsa
    alg = alg or key.alg
    if header is None:
        header = {"alg": alg, "typ": "JWT"}
        k = key.kid if kid == "key" else kid
        if k is not None:
            header["kid"] = k
    h = h_text if h_text is not None else b64(raw_json(header))
    p = p_text if p_text is not None else b64(raw_json(payload if payload is not None else claims()))
    if sig_text is not None:
        return f"{h}.{p}.{sig_text}"
    signature = sig if sig is not None else key.sign(f"{h}.{p}".encode(), alg)
    return f"{h}.{p}.{b64(signature)}"


RING: KeyRing  # set by cases()


def _int_b64_bytes(key: Key) -> bytes:
    n = key.private.public_key().public_numbers().n
    return n.to_bytes((n.bit_length() + 7) // 8, "big")


def bad_p384_keys(key: Key) -> list:
    """P-384 JWKs BoringSSL's EC_KEY_set_public_key_affine_coordinates refuses, kids ec-bad-*."""
    pub = key.private.public_key().public_numbers()
    p = 2**384 - 2**128 - 2**96 + 2**32 - 1
    g256 = ec.derive_private_key(1, ec.SECP256R1()).public_key().public_numbers()
    size = lambda v: max(48, (v.bit_length() + 7) // 8)  # noqa: E731
    return [key.jwk(kid=kid, x=_int_b64(x, size(x)), y=_int_b64(y, size(y))) for kid, x, y in [
        ("ec-bad-y", pub.x, pub.y ^ 1),
        ("ec-bad-x-plus-p", pub.x + p, pub.y),
        ("ec-bad-zero", 0, 0),
        ("ec-bad-p256-point", g256.x, g256.y),
    ]]


# ---- scenarios ---------------------------------------------------------------------------------------


@dataclass
class Scenario:
    name: str
    rules: list  # RequestAuthentication jwtRules (camelCase)

    def plugin_config(self, policies: list) -> dict:
        ra = {"apiVersion": "security.istio.io/v1", "kind": "RequestAuthentication",
              "metadata": {"name": f"ra-{self.name}", "namespace": NS},
              "spec": {"selector": {"matchLabels": LABELS}, "jwtRules": self.rules}}
        return {"workload": {"namespace": NS, "labels": LABELS}, "resources": [ra] + policies}

    def jwt_authn(self) -> dict:
        """istiod's conversion: providers ``origins-<i>`` in issuer order."""
        providers = {}
        for i, r in enumerate(sorted(self.rules, key=lambda r: r.get("issuer", ""))):
            p: dict = {"issuer": r["issuer"], "local_jwks": {"inline_string": r["jwks"]},
                       "forward": bool(r.get("forwardOriginalToken", False)), "payload_in_metadata": "payload",
                       "normalize_payload_in_metadata": {
                           "space_delimited_claims": ["scope", "permission"] + list(r.get("spaceDelimitedClaims", []))}}
            if r.get("audiences"):
                p["audiences"] = r["audiences"]
            if "fromHeaders" in r:
                p["from_headers"] = [{"name": h["name"], **({"value_prefix": h["prefix"]} if "prefix" in h else {})}
                                     for h in r["fromHeaders"]]
            if "fromParams" in r:
                p["from_params"] = r["fromParams"]
            if "fromCookies" in r:
                p["from_cookies"] = r["fromCookies"]
            if r.get("outputPayloadToHeader"):
                p["forward_payload_header"] = r["outputPayloadToHeader"]
            if r.get("outputClaimToHeaders"):
                p["claim_to_headers"] = [{"header_name": c["header"], "claim_name": c["claim"]}
                                         for c in r["outputClaimToHeaders"]]
            providers[f"origins-{i}"] = p
        return envoy_config.istio_jwt_authn(providers, space_delimited_claims=None)


OUTPUTS = [{"header": h, "claim": c} for h, c in (
    ("x-sub", "sub"), ("x-num", "num"), ("x-big", "big"), ("x-float", "float"), ("x-neg", "neg"),
    ("x-empty", "empty"), ("x-bool", "flag"), ("x-nested", "org.team"), ("x-list", "groups"), ("x-obj", "org"),
    ("x-scope", "scope"), ("x-exp", "exp"))]


def scenarios(ring: KeyRing) -> list[Scenario]:
    jwks = ring.jwks()
    return [
        # the default locations (Authorization: Bearer, access_token), outputs, token removed
        Scenario("default", [{"issuer": ISS, "jwks": jwks, "audiences": ["web-api"],
                              "outputPayloadToHeader": "x-jwt-payload", "outputClaimToHeaders": OUTPUTS}]),
        # custom header / prefixed header / param / cookie; the token is forwarded
        Scenario("locations", [{"issuer": ISS, "jwks": jwks, "forwardOriginalToken": True,
                                "fromHeaders": [{"name": "x-raw"}, {"name": "x-tok", "prefix": "Tok "}],
                                "fromParams": ["tok", "t k"], "fromCookies": ["session"],
                                "outputClaimToHeaders": [{"header": "x-sub", "claim": "sub"}]}]),
        # the same locations, token not forwarded (query parameter removed from :path)
        Scenario("strip", [{"issuer": ISS, "jwks": jwks,
                            "fromHeaders": [{"name": "x-raw"}, {"name": "authorization", "prefix": "Bearer "}],
                            "fromParams": ["tok", "access_token"], "fromCookies": ["session"],
                            "outputClaimToHeaders": [{"header": "x-sub", "claim": "sub"}]}]),
        # two rules with the same issuer and different keys (Envoy tries each provider)
        Scenario("same-issuer", [{"issuer": ISS, "jwks": ring.jwks(only=[ring.rsa]),
                                  "outputClaimToHeaders": [{"header": "x-sub", "claim": "sub"}]},
                                 {"issuer": ISS, "jwks": ring.jwks(only=[ring.ec, ring.ed]),
                                  "outputClaimToHeaders": [{"header": "x-num", "claim": "num"}]}]),
        # JWKS entries Envoy accepts although they look odd: EC without crv (alg implies P-256), a padded
        # modulus with a leading zero byte, alg "", use enc with a signing alg, an ES384 key without alg;
        # and P-384 keys it refuses (off the curve, x + p, (0, 0), the P-256 generator)
        Scenario("odd-jwks", [{"issuer": ISS, "jwks": json.dumps({"keys": [
            ring.ec.jwk(crv=None),
            ring.rsa.jwk(n=b64(b"\x00" + _int_b64_bytes(ring.rsa)) + "=" * (-len(b64(b"\x00" + _int_b64_bytes(ring.rsa))) % 4)),
            ring.ed.jwk(alg=""),
            ring.ps.jwk(use="enc"),
            ring.ec384.jwk(alg=None),
            *bad_p384_keys(ring.ec384),
            {"kty": "EC", "crv": "P-256", "alg": "ES384", "x": "AA", "y": "AA"},
            {"kty": "RSA", "alg": "RS256", "kid": "weak", "n": "AQAB", "e": "AQAB"},
            {"kty": "oct", "alg": "RS256", "k": "c2VjcmV0"},
            "not-an-object",
        ]})}]),
        # two issuers with their own header and a shared parameter
        Scenario("split-locations", [{"issuer": ISS, "jwks": jwks, "fromHeaders": [{"name": "x-raw"}],
                                      "fromParams": ["tok"], "outputClaimToHeaders": [{"header": "x-sub", "claim": "sub"}]},
                                     {"issuer": ISS2, "jwks": jwks, "fromHeaders": [{"name": "x-tok", "prefix": "Tok "}],
                                      "fromParams": ["tok"], "outputClaimToHeaders": [{"header": "x-num", "claim": "num"}]}]),
        # two issuers sharing the default locations
        Scenario("issuers", [{"issuer": ISS, "jwks": jwks, "outputClaimToHeaders": [{"header": "x-sub", "claim": "sub"}]},
                             {"issuer": ISS2, "jwks": jwks,
                              "outputClaimToHeaders": [{"header": "x-num", "claim": "num"}]}]),
    ]


# ---- policies: meshguard resources and the RBAC istiod generates for them -----------------------------


def _claim(name: str, value: str) -> dict:
    sm = string_match(value)
    return {"metadata": {"filter": JWT_FILTER, "path": [{"key": "payload"}, {"key": name}],
                         "value": {"or_match": {"value_matchers": [{"list_match": {"one_of": {"string_match": sm}}},
                                                                   {"string_match": sm}]}}}}


def _payload(name: str, value: str) -> dict:
    return {"metadata": {"filter": JWT_FILTER, "path": [{"key": "payload"}, {"key": name}],
                         "value": {"string_match": string_match(value)}}}


def _paths(prefix: str) -> dict:
    return {"and_rules": {"rules": [{"or_rules": {"rules": [path_rule(prefix + "*")]}}]}}


def _ids(*ids) -> dict:
    return {"and_ids": {"ids": [{"or_ids": {"ids": [i]}} for i in ids]}}


ANY = {"any": True}

# (resource rule, RBAC policy) per rule; paths name what each rule is about
DENY_RULES = [
    ({"to": [{"operation": {"paths": ["/deny-scope*"]}}],
      "when": [{"key": "request.auth.claims[scope]", "values": ["*"]}]},
     {"permissions": [_paths("/deny-scope")], "principals": [_ids(_claim("scope", "*"))]}),
    ({"to": [{"operation": {"paths": ["/deny-admin*"]}}],
      "when": [{"key": "request.auth.claims[role]", "values": ["admin"]}]},
     {"permissions": [_paths("/deny-admin")], "principals": [_ids(_claim("role", "admin"))]}),
]
ALLOW_RULES = [
    ({"to": [{"operation": {"paths": ["/open*", "/any*", "/deny-*"]}}]},
     {"permissions": [{"and_rules": {"rules": [{"or_rules": {"rules": [path_rule("/open*"), path_rule("/any*"),
                                                                        path_rule("/deny-*")]}}]}}],
      "principals": [ANY]}),
    ({"from": [{"source": {"requestPrincipals": [f"{ISS}/alice", f"{ISS2}/alice"]}}],
      "to": [{"operation": {"paths": ["/alice*"]}}]},
     {"permissions": [_paths("/alice")],
      "principals": [_ids({"or_ids": {"ids": [{"and_ids": {"ids": [_payload("iss", iss), _payload("sub", "alice")]}}
                                              for iss in (ISS, ISS2)]}})]}),
    ({"to": [{"operation": {"paths": ["/scope*"]}}], "when": [{"key": "request.auth.claims[scope]", "values": ["read"]}]},
     {"permissions": [_paths("/scope")], "principals": [_ids(_claim("scope", "read"))]}),
    ({"to": [{"operation": {"paths": ["/group*"]}}], "when": [{"key": "request.auth.claims[groups]", "values": ["ops"]}]},
     {"permissions": [_paths("/group")], "principals": [_ids(_claim("groups", "ops"))]}),
]


def policies() -> list:
    def res(name, action, rules):
        return {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
                "metadata": {"name": name, "namespace": NS},
                "spec": {"selector": {"matchLabels": LABELS}, "action": action, "rules": [r for r, _ in rules]}}
    return [res("deny", "DENY", DENY_RULES), res("allow", "ALLOW", ALLOW_RULES)]


def rbac_filters() -> list:
    def f(action, prefix, rules):
        return {"name": "envoy.filters.http.rbac", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC",
            "rules": {"action": action, "policies": {f"ns[{NS}]-policy[{prefix}]-rule[{i}]": p
                                                     for i, (_, p) in enumerate(rules)}}}}
    return [f("DENY", "deny", DENY_RULES), f("ALLOW", "allow", ALLOW_RULES)]


# ---- cases -------------------------------------------------------------------------------------------


@dataclass
class Case:
    klass: str
    name: str
    scenario: str
    path: str
    headers: list = field(default_factory=list)
    method: str = "GET"


def cases(ring: KeyRing) -> list[Case]:
    global RING
    RING = ring
    from meshguard_tools.e2e.jwt_parity_cases import build
    return build(ring)


# ---- running -----------------------------------------------------------------------------------------


def send(port: int, case: Case) -> tuple:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest(case.method, case.path, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", "parity.test")
        for k, v in case.headers:
            conn.putheader(k, v)
        conn.endheaders()
        resp = conn.getresponse()
        body = resp.read()
    finally:
        conn.close()
    status = resp.status
    challenge = resp.getheader("www-authenticate")
    if status == 200:
        try:
            echo = json.loads(body)
        except ValueError:
            return (status, body.decode("utf-8", "replace"), challenge, None, None)
        seen = [(k, v) for k, v in echo["headers"] if k in WATCHED]
        return (status, "", challenge, echo["path"], seen)
    return (status, body.decode("utf-8", "replace"), challenge, None, None)


def listeners(ring: KeyRing, echo_port: int, wasm_path: str, free_port) -> tuple[list, dict]:
    """Listener dicts for every scenario pair and {scenario: (mg_port, ref_port)}."""
    out, ports = [], {}
    pol = policies()
    for s in scenarios(ring):
        mg_port, ref_port = free_port(), free_port()
        ports[s.name] = (mg_port, ref_port)
        mg = envoy_config.http_connection_manager(f"mg_{s.name}", s.plugin_config(pol), wasm_path=wasm_path,
                                                  echo_port=echo_port, echo_prefix="/")
        ref = envoy_config.http_connection_manager(f"ref_{s.name}", None, wasm=False, jwt_authn=s.jwt_authn(),
                                                   extra_filters=rbac_filters(), echo_port=echo_port, echo_prefix="/")
        for name, port, hcm in ((f"mg_{s.name}", mg_port, mg), (f"ref_{s.name}", ref_port, ref)):
            out.append({"name": name, "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
                        "traffic_direction": "INBOUND",
                        "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                                                        "typed_config": hcm}]}]})
    return out, ports


def run(all_cases: list[Case], ports: dict) -> tuple[dict, list]:
    """Sends every case to both listeners of its scenario; returns ({class: [compared, mismatches]}, mismatches)."""
    counts: dict = {}
    mismatches = []
    for c in all_cases:
        mg_port, ref_port = ports[c.scenario]
        expected, got = send(ref_port, c), send(mg_port, c)
        entry = counts.setdefault(c.klass, [0, 0])
        entry[0] += 1
        if expected != got:
            entry[1] += 1
            mismatches.append((c, expected, got))
    return counts, mismatches


def pct(s: str) -> str:
    return quote(s, safe="")
