"""Bypass suite, class F (known-bypasses.md F1-F14, jwt.md §3, authz-semantics §14): tokens that must never
authenticate, through the real Envoy.

One configuration: a RequestAuthentication (Keycloak realm keys, audience web-api, default locations, output
headers), ``require-jwt`` (ALLOW requestPrincipals ``*``) on ``/p/*`` and ``/echo/p*``, ``claim-header`` (ALLOW
``/h/admin`` when the output header ``x-jwt-role`` is ``admin``), ``deny-guest-header`` (DENY ``/h/deny`` when
``x-jwt-role`` is ``guest``), everything else open. ``/echo...`` goes to a loopback upstream that shows the headers it
received.

Istio runs jwt_authn before RBAC: RBAC sees the output headers jwt_authn wrote (client copies removed, claim values
set), so a ``request.headers[<outputClaimToHeaders header>]`` condition is a condition on the verified claim.
"""
import base64
import hashlib
import hmac
import json
import math
import time

import pytest
from cryptography.hazmat.primitives import serialization

from meshguard_tools.e2e.bypass import check
from meshguard_tools.e2e.policies import allow, config, deny, rule, src, to
from meshguard_tools.e2e.jwt_tokens import (
    ALICE, KEYCLOAK_ISS, b64url, bearer, jwt_rule, keycloak_claims, keys, request_authentication, sign, token, unsigned,
    with_segments,
)

WEB_API = {"app": "web-api"}
OUTPUTS = dict(outputPayloadToHeader="x-jwt-payload",
               outputClaimToHeaders=[{"header": "x-jwt-sub", "claim": "sub"}, {"header": "x-jwt-role", "claim": "role"}])
JWT = config(
    request_authentication("web-api-jwt", jwt_rule(audiences=["web-api"], **OUTPUTS), labels=WEB_API),
    allow("require-jwt", [rule(from_=[src(requestPrincipals=["*"])], to_=[to(paths=["/p/*", "/echo/p*"])])]),
    allow("claim-header", [rule(to_=[to(paths=["/h/admin", "/echo/h/admin"])],
                                when=[{"key": "request.headers[x-jwt-role]", "values": ["admin"]}])]),
    allow("open", [rule(to_=[to(notPaths=["/p/*", "/echo/p*", "/h/admin", "/echo/h/admin"])])]),
    deny("deny-guest-header", [rule(to_=[to(paths=["/h/deny"])],
                                    when=[{"key": "request.headers[x-jwt-role]", "values": ["guest"]}])]),
    labels=WEB_API,
)


@pytest.fixture
def client(envoy, echo_server):
    return envoy(JWT, echo_port=echo_server.port)


def status_401(resp, what):
    assert resp.status == 401, f"{what}: expected 401, got {resp!r}"
    assert (resp.header("www-authenticate") or "").startswith('Bearer realm="'), f"{what}: {resp!r}"


def hs256(header: dict, claims: dict, secret: bytes) -> str:
    signing_input = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
    sig = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64url(sig)


def _rsa_public_pem() -> bytes:
    return keys().rsa.private.public_key().public_bytes(serialization.Encoding.PEM,
                                                        serialization.PublicFormat.SubjectPublicKeyInfo)


def rs256_raw(payload_json: str) -> str:
    """A correctly RS256-signed token whose payload is ``payload_json`` verbatim (JSON a library would not write)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    header = b64url(json.dumps({"alg": "RS256", "typ": "JWT", "kid": "rsa-1"}).encode())
    signing_input = header + "." + b64url(payload_json.encode())
    sig = keys().rsa.private.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return signing_input + "." + b64url(sig)


def nested_token(depth: int) -> str:
    claims = json.dumps(keycloak_claims())
    return rs256_raw(claims[:-1] + ', "nest": ' + "[" * depth + '"deep"' + "]" * depth + "}")


# --- tokens that must be rejected (401; 403 for the audience) --------------------------------------------------

BAD_TOKENS = [
    ("alg-none-empty-sig", lambda: unsigned(keycloak_claims()), 401, "alg none, empty signature (RFC 7519 unsecured)"),
    ("alg-none-with-sig", lambda: unsigned(keycloak_claims(), signature="AAAA"), 401, "alg none is not a supported alg"),
    ("alg-None-case", lambda: with_segments(header=b64url(json.dumps({"alg": "None", "typ": "JWT"}).encode()),
                                             base=token()), 401, "case variants of none"),
    ("hs256-with-rsa-pem", lambda: hs256({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}, keycloak_claims(),
                                          _rsa_public_pem()), 401, "HS/RS confusion: RSA public key PEM as HMAC secret"),
    ("hs256-with-rsa-n", lambda: hs256({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}, keycloak_claims(),
                                        keys().rsa.jwk()["n"].encode()), 401, "HS/RS confusion: JWK `n` as HMAC secret"),
    ("hs256-no-kid", lambda: hs256({"alg": "HS256", "typ": "JWT"}, keycloak_claims(), _rsa_public_pem()), 401,
     "HS/RS confusion without kid: tries every key of alg HS256 (there is none)"),
    ("wrong-kid", lambda: sign(keycloak_claims(), kid="nope"), 401, "kid not in the JWKS"),
    ("kid-of-other-alg", lambda: sign(keycloak_claims(), kid="ec-1"), 401, "RS256 token naming the EC key's kid"),
    ("impostor-key", lambda: sign(keycloak_claims(), keys().impostor), 401, "right kid, another private key"),
    ("enc-key", lambda: sign(keycloak_claims(), keys().enc, alg="RS256"), 401, "the `use: enc` key never verifies"),
    ("tampered-payload", lambda: with_segments(payload=b64url(json.dumps(keycloak_claims(sub="admin")).encode()),
                                               base=token()), 401, "payload swapped after signing"),
    ("wrong-iss", lambda: token(iss="https://evil.test/realms/quarkus"), 401, "issuer not configured (ISTIO-SECURITY-2021-001)"),
    ("iss-trailing-slash", lambda: token(iss=KEYCLOAK_ISS + "/"), 401, "issuer compared exactly"),
    ("wrong-aud", lambda: token(aud="other-api"), 403, "audience not allowed: 403"),
    ("no-aud", lambda: token(aud=None), 403, "missing audience: 403"),
    ("expired-long-ago", lambda: token(exp_in=-3600), 401, "expired"),
    ("exp-negative", lambda: token(exp=-1, exp_in=None), 401, "negative exp"),
    ("exp-string", lambda: token(exp="99999999999", exp_in=None), 401, "exp must be an integer"),
    ("nbf-far-future", lambda: token(nbf=int(time.time()) + 3600), 401, "not yet valid"),
    ("oversized-bad-sig", lambda: with_segments(signature="A" * 342, base=token(pad="x" * 17000)), 401,
     "over 16 KB with a broken signature"),
    ("deeply-nested-payload", lambda: nested_token(2000), 401,
     "payload nested 2000 deep: over Envoy's JSON depth limit (1000, CVE-2026-48042)"),
    ("two-dots-missing", lambda: token().replace(".", "", 1), 401, "not three segments"),
    ("garbage", lambda: "not-a-jwt", 401, "not a JWT at all"),
]


@pytest.mark.parametrize("name,make,status,reason", BAD_TOKENS, ids=[c[0] for c in BAD_TOKENS])
def test_bad_token_rejected(client, name, make, status, reason):
    tok = make()
    for path in ("/p/x", "/open"):  # rejected before authorization, on protected and open paths alike
        r = client.request("GET", path, headers=[bearer(tok)])
        if status == 401:
            status_401(r, f"{name} {path} ({reason})")
        else:
            assert r.status == 403 and r.text == "Audiences in Jwt are not allowed", f"{name} {path}: {r!r}"
    # and the VM keeps working (no trap: FAIL_CLOSED would turn it into 503s)
    check(client.request("GET", "/p/x", headers=[bearer(token())]), "allow", f"after {name}")


def test_oversized_valid_token_never_passes_without_verification(client):
    """A correctly signed token over 16 KB: Envoy would verify it; meshguard refuses tokens over 16 KB (401).
    Either way it never reaches /p/ without a verified identity."""
    tok = token(pad="x" * 17000)
    assert len(tok) > 16 * 1024
    r = client.request("GET", "/p/x", headers=[bearer(tok)])
    assert r.status in (200, 401), r
    if r.status == 200:
        check(r, "allow", "verified oversized token")


# --- time edges: 60 s clock skew, ±1 s around each boundary ---------------------------------------------------


def _edge(client, make, expect_ok: bool, what: str):
    """``make(t)`` builds claims from ``t`` (a whole second >= now). The result is decisive only if Envoy answered
    before ``t + 1``; on a loaded machine retry a few times."""
    for _ in range(4):
        now = time.time()
        t = math.ceil(now)
        tok = sign(make(t))
        r = client.request("GET", "/p/x", headers=[bearer(tok)])
        if time.time() < t + 1:
            if expect_ok:
                check(r, "allow", what)
            else:
                status_401(r, what)
            return
    pytest.skip(f"{what}: the machine is too slow to hit a 1 s window")


@pytest.mark.parametrize("name,make,ok,reason", [
    ("exp-59s-ago", lambda t: keycloak_claims(exp_in=None, exp=t - 59), True, "within the 60 s skew"),
    ("exp-62s-ago", lambda t: keycloak_claims(exp_in=None, exp=t - 62), False, "beyond the 60 s skew (>= 1 s past it)"),
    ("nbf-in-58s", lambda t: keycloak_claims(nbf=t + 58), True, "within the 60 s skew"),
    ("nbf-in-61s", lambda t: keycloak_claims(nbf=t + 61), False, "beyond the 60 s skew"),
], ids=["exp-59s-ago", "exp-62s-ago", "nbf-in-58s", "nbf-in-61s"])
def test_clock_skew_edges(client, name, make, ok, reason):
    _edge(client, make, ok, f"{name} ({reason})")


def test_cached_token_expires(client):
    """Verified tokens are cached: a token accepted just inside the skew must be refused once it has expired."""
    t = math.ceil(time.time())
    tok = sign(keycloak_claims(exp_in=None, exp=t - 59))
    r = client.request("GET", "/p/x", headers=[bearer(tok)])
    if time.time() >= t + 1:
        pytest.skip("too slow to hit the 1 s window")
    check(r, "allow", "inside the skew")
    time.sleep(max(0.0, t + 2.2 - time.time()))
    status_401(client.request("GET", "/p/x", headers=[bearer(tok)]), "same token after expiry (cache must not keep it)")


# --- several tokens, unconfigured locations, CORS preflight --------------------------------------------------

EXPIRED = lambda: token(exp_in=-3600)  # noqa: E731
MULTI = [
    ("header-ok-param-expired", lambda: ([bearer(token())], f"?access_token={EXPIRED()}"), 401, "every token must verify"),
    ("header-expired-param-ok", lambda: ([bearer(EXPIRED())], f"?access_token={token()}"), 401, "order does not matter"),
    ("param-ok-param-bad", lambda: ([], f"?access_token={token()}&access_token=garbage"), None,
     "Envoy takes the first value of a parameter: never 200 without a verified first token"),
    ("two-headers-one-bad", lambda: ([bearer(token()), bearer("garbage")], ""), 401, "repeated Authorization"),
    ("two-headers-bad-first", lambda: ([bearer(EXPIRED()), bearer(token())], ""), 401, "repeated Authorization"),
    ("header-ok-param-ok", lambda: ([bearer(token(sub="bob"))], f"?access_token={token()}"), 200, "both verify"),
]


@pytest.mark.parametrize("name,make,status,reason", MULTI, ids=[c[0] for c in MULTI])
def test_several_tokens(client, name, make, status, reason):
    headers, query = make()
    r = client.request("GET", "/p/x" + query, headers=headers)
    if status == 401:
        status_401(r, f"{name} ({reason})")
    elif status == 200:
        check(r, "allow", f"{name} ({reason})")
    else:
        assert r.status in (200, 401), r  # 200 only with the first (valid) token verified


UNCONFIGURED = [
    ("x-token-header", [("x-token", token())], "", "a header no rule configures"),
    ("token-param", [], f"?token={token()}", "a parameter no rule configures"),
    ("cookie", [("cookie", f"access_token={token()}")], "", "cookies are not a default location"),
    ("bearer-lower-case", [("authorization", f"bearer {token()}")], "", "prefix `Bearer ` is case-sensitive"),
    ("bearer-no-space", [("authorization", f"Bearer{token()}")], "", "prefix needs its space"),
    ("basic-scheme", [("authorization", "Basic " + base64.b64encode(b"alice:pw").decode())], "", "not a bearer token"),
]


@pytest.mark.parametrize("name,headers,query,reason", UNCONFIGURED, ids=[c[0] for c in UNCONFIGURED])
def test_token_in_unconfigured_location_gives_no_identity(client, name, headers, query, reason):
    # no identity: requestPrincipals `*` is not satisfied (403, not 200 and not 401)
    check(client.request("GET", "/p/x" + query, headers=headers), "deny:none", f"{name} ({reason})")


def test_bad_token_in_unconfigured_location_is_ignored(client):
    check(client.request("GET", "/open", headers=[("x-token", "garbage")]), "allow", "not a token location")


def test_cors_preflight_grants_no_identity(client):
    cors = [("origin", "https://frontend.test"), ("access-control-request-method", "GET")]
    r = client.request("OPTIONS", "/p/x", headers=cors + [bearer(EXPIRED())])
    check(r, "deny:none", "preflight skips JWT validation but gets no identity (F8)")
    status_401(client.request("OPTIONS", "/p/x", headers=[bearer(EXPIRED())]), "OPTIONS without Origin is validated")


# --- output headers (C3): client-sent copies never reach the backend or the policy ----------------------------

SPOOFED = [("x-jwt-sub", "admin-user"), ("x-jwt-role", "admin"), ("x-jwt-payload", b64url(b'{"sub":"admin-user"}'))]


def _upstream(resp) -> dict:
    assert resp.status == 200 and resp.header("content-type") == "application/json", resp
    return json.loads(resp.body)


def _values(doc, name):
    return [v for k, v in doc["headers"] if k == name]


def test_output_headers_from_client_are_removed_without_token(client):
    doc = _upstream(client.request("GET", "/echo/open", headers=SPOOFED + [("X-JWT-Role", "admin")]))
    for name, _ in SPOOFED:
        assert _values(doc, name) == [], f"{name} reached the backend: {doc['headers']}"


def test_output_headers_are_replaced_with_the_token_claims(client):
    doc = _upstream(client.request("GET", "/echo/open", headers=[bearer(token(role="user"))] + SPOOFED))
    assert _values(doc, "x-jwt-sub") == [ALICE], doc["headers"]
    assert _values(doc, "x-jwt-role") == ["user"], doc["headers"]
    payload = _values(doc, "x-jwt-payload")
    assert len(payload) == 1 and json.loads(base64.urlsafe_b64decode(payload[0] + "==="))["sub"] == ALICE, payload
    assert _values(doc, "authorization") == [], "the token header is removed (forwardOriginalToken false)"


@pytest.mark.parametrize("name,headers,expect,reason", [
    ("spoof-no-token", [("x-jwt-role", "admin")], "deny:none", "a client-sent output header is not trusted"),
    ("spoof-repeated", [("x-jwt-role", "user"), ("x-jwt-role", "admin")], "deny:none", "nor a repeated one"),
    ("spoof-with-user-token", "user-token", "deny:none", "the claim (user) replaces the client's `admin`"),
    ("spoof-with-bad-token", "bad-token", "401", "a bad token is refused whatever the headers"),
    ("spoof-control-admin-token", "admin-token", "allow", "control: Istio's RBAC sees the header jwt_authn set"),
], ids=["spoof-no-token", "spoof-repeated", "spoof-with-user-token", "spoof-with-bad-token", "control-admin-token"])
def test_policy_on_output_header_trusts_only_the_claim(client, name, headers, expect, reason):
    if headers == "user-token":
        headers = [bearer(token(role="user")), ("x-jwt-role", "admin")]
    elif headers == "admin-token":
        headers = [bearer(token(role="admin"))]
    elif headers == "bad-token":
        headers = [bearer(EXPIRED()), ("x-jwt-role", "admin")]
    r = client.request("GET", "/h/admin", headers=headers)
    if expect == "401":
        status_401(r, f"{name} ({reason})")
    else:
        check(r, expect, f"{name} ({reason})")


@pytest.mark.parametrize("name,headers,expect,reason", [
    ("deny-guest-token", lambda: [bearer(token(role="guest"))], "deny:deny-guest-header",
     "the claim written to x-jwt-role is what the DENY sees"),
    ("deny-guest-token-spoof-user", lambda: [bearer(token(role="guest")), ("x-jwt-role", "user")],
     "deny:deny-guest-header", "a client copy cannot replace the claim"),
    ("deny-no-token", lambda: [], "allow", "control: no token, no header"),
], ids=["deny-guest-token", "deny-guest-token-spoof-user", "deny-no-token"])
def test_deny_on_output_header_sees_the_claim(client, name, headers, expect, reason):
    check(client.request("GET", "/h/deny", headers=headers()), expect, f"{name} ({reason})")
