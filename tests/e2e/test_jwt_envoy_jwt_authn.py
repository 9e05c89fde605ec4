"""``jwtSource: envoyJwtAuthn``: Envoy's own ``envoy.filters.http.jwt_authn`` (configured as istiod does for a
RequestAuthentication: ``payload_in_metadata: payload``, ``forward: false``, ``requires_any[provider,
allow_missing]``, space-delimited ``scope``) runs before meshguard, which authorizes on the payload it left in
dynamic metadata (README "Configuration"; jwt.md §3.4, §3.6; authz-semantics §8, §14).

The same Envoy is also the reference for meshguard's own verifier: for a set of bad tokens, meshguard with an
equivalent RequestAuthentication must answer exactly what jwt_authn answers (status, body, www-authenticate).
"""
import time

import jwt as pyjwt
import pytest

from meshguard_tools import envoy_config
from meshguard_tools.e2e.policies import DENY_BODY, OK_BODY, allow, config, rule, src, to
from meshguard_tools.e2e.jwt_tokens import (
    ALICE, BOB, KEYCLOAK_ISS, b64url, bearer, jwt_rule, keycloak_claims, keys, principal, realm_jwks,
    request_authentication, sign, token, unsigned, with_segments,
)

WEB_API = {"app": "web-api"}
AUDIENCES = ["web-api"]

JWT_AUTHN = envoy_config.istio_jwt_authn({
    "origins-0": {"issuer": KEYCLOAK_ISS, "audiences": AUDIENCES, "local_jwks": {"inline_string": realm_jwks()}},
})
POLICY = allow("web-api", [
    rule(from_=[src(requestPrincipals=["*"])], to_=[to(paths=["/admin/*"])],
         when=[{"key": "request.auth.claims[realm_access][roles]", "values": ["admin"]}]),
    rule(from_=[src(requestPrincipals=[principal(ALICE)])], to_=[to(paths=["/me/*"])]),
    rule(to_=[to(paths=["/email/*"])], when=[{"key": "request.auth.claims[scope]", "values": ["email"]}]),
    rule(from_=[src(requestPrincipals=["*"])], to_=[to(paths=["/any/*"])]),
])
ENVOY_AUTHN = dict(config(POLICY, labels=WEB_API), jwtSource="envoyJwtAuthn")
# meshguard verifying the same tokens itself
OWN_AUTHN = config(request_authentication("keycloak", jwt_rule(audiences=AUDIENCES), labels=WEB_API), POLICY,
                   labels=WEB_API)


@pytest.fixture
def c(envoy):
    return envoy(ENVOY_AUTHN, jwt_authn=JWT_AUTHN)


def get(c, path, tok=None):
    return c.request("GET", path, headers=[bearer(tok)] if tok else [])


def assert_ok(r, rule_index):
    assert (r.status, r.body) == (200, OK_BODY), r
    assert r.header("x-meshguard-decision") == f"allow ns[default]-policy[web-api]-rule[{rule_index}]", r


def assert_rbac_denied(r):
    assert (r.status, r.body) == (403, DENY_BODY), r
    assert r.header("x-meshguard-decision") == "deny none", r


def test_realm_role_from_jwt_authn_metadata(c):
    assert_ok(get(c, "/admin/users", token(realm_roles=["user", "admin"])), 0)
    assert_rbac_denied(get(c, "/admin/users", token(realm_roles=["user"])))


def test_request_principal_from_jwt_authn_metadata(c):
    assert_ok(get(c, "/me/profile", token(sub=ALICE)), 1)
    assert_rbac_denied(get(c, "/me/profile", token(sub=BOB)))


def test_scope_normalized_by_jwt_authn(c):
    # jwt_authn's normalize_payload_in_metadata turned "openid profile email" into a list
    assert_ok(get(c, "/email/x", token(scope="openid profile email")), 2)
    assert_rbac_denied(get(c, "/email/x", token(scope="openid profile")))


def test_no_token_and_request_principals_star(c):
    # allow_missing: jwt_authn lets it through with no payload; requestPrincipals ["*"] does not match
    assert_rbac_denied(get(c, "/any/x"))
    assert_ok(get(c, "/any/x", token()), 3)


def test_invalid_token_is_answered_by_jwt_authn_itself(c):
    before = jwt_authn_denied(c)
    r = get(c, "/any/x", token(keys().impostor))
    assert (r.status, r.text) == (401, "Jwt verification fails"), r
    assert r.header("www-authenticate") == 'Bearer realm="http://localhost/any/x", error="invalid_token"', r
    assert r.header("x-meshguard-decision") is None, r
    # Envoy's filter counted it (meshguard, with no RequestAuthentication, never answers 401)
    assert poll_stat(lambda: jwt_authn_denied(c) >= before + 1)


def jwt_authn_denied(c) -> int:
    for line in c.admin("/stats?filter=jwt_authn").splitlines():
        name, _, value = line.partition(": ")
        if name == "http.inbound_plain.jwt_authn.denied":
            return int(value)
    return 0


def poll_stat(check, timeout=3.0):
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


# --- parity: meshguard's verifier against Envoy's jwt_authn ------------------------------------------


def now() -> int:
    return int(time.time())


# name -> token factory (made when the test runs: several cases sit within seconds of the 60 s skew)
PARITY = {
    "expired": lambda: token(exp_in=-3600),
    "expired-in-skew": lambda: token(exp_in=-20),
    "not-yet-valid": lambda: token(nbf=now() + 600),
    "nbf-in-skew": lambda: token(nbf=now() + 20),
    "no-exp": lambda: token(exp_in=None),
    "bad-signature": lambda: token(keys().impostor),
    "tampered": lambda: with_segments(payload=b64url(b'{"iss":"%s","sub":"x","aud":"web-api"}' % KEYCLOAK_ISS.encode())),
    "unknown-issuer": lambda: token(iss="https://keycloak.test/realms/other"),
    "no-issuer": lambda: sign({k: v for k, v in keycloak_claims().items() if k != "iss"}),
    "wrong-audience": lambda: token(aud="other-api"),
    "audience-list": lambda: token(aud=["account", "web-api"]),
    "audience-url": lambda: token(aud="https://web-api/"),
    "no-audience": lambda: token(aud=None),
    "unknown-kid": lambda: token(keys().rotated),
    "no-kid": lambda: sign(keycloak_claims(), keys().ed, kid=None),
    "enc-key": lambda: sign(keycloak_claims(), keys().enc, alg="RS256"),
    "es256": lambda: token(keys().ec),
    "eddsa": lambda: token(keys().ed),
    "hs256": lambda: pyjwt.encode(keycloak_claims(), "k" * 32, algorithm="HS256", headers={"kid": "rsa-1"}),
    "alg-none": lambda: unsigned(keycloak_claims(), signature="c2ln"),
    "alg-none-empty-sig": lambda: unsigned(keycloak_claims()),
    "two-segments": lambda: "a.b",
    "no-dots": lambda: "not-a-jwt",
    "header-not-json": lambda: f"{b64url(b'hello')}.{b64url(b'{}')}.c2ln",
    "payload-not-json": lambda: with_segments(payload=b64url(b"hello")),
    "exp-string": lambda: sign(keycloak_claims(exp=str(now() + 600))),
    "aud-number": lambda: sign(keycloak_claims(aud=42)),
    "iss-number": lambda: sign(keycloak_claims(iss=7)),
}


@pytest.mark.parametrize("name", sorted(PARITY))
def test_meshguard_answers_bad_tokens_exactly_like_jwt_authn(envoy, name):
    tok = PARITY[name]()
    reference = envoy(ENVOY_AUTHN, jwt_authn=JWT_AUTHN)
    own = envoy(OWN_AUTHN)

    def answer(client):
        r = get(client, "/any/x?y=1", tok)
        return r.status, r.text, r.header("www-authenticate")

    expected, got = answer(reference), answer(own)
    assert got == expected, f"{name}: meshguard {got!r}, Envoy jwt_authn {expected!r}"


def _expired():
    return token(exp_in=-3600)


# name -> (method, path, headers) factories: token locations, several tokens, CORS preflight
PARITY_REQUESTS = {
    "valid-header-expired-param": lambda: ("GET", f"/any/x?access_token={_expired()}", [bearer(token())]),
    "expired-header-valid-param": lambda: ("GET", f"/any/x?access_token={token()}", [bearer(_expired())]),
    "two-authorization-headers": lambda: ("GET", "/any/x", [bearer(token()), bearer(_expired())]),
    "same-token-twice": lambda: (lambda t: ("GET", f"/any/x?access_token={t}", [bearer(t)]))(token()),
    "bearer-inside-value": lambda: ("GET", "/any/x", [("authorization", f"xBearer {token()}")]),
    "lowercase-bearer": lambda: ("GET", "/any/x", [("authorization", f"bearer {_expired()}")]),
    "token-then-garbage": lambda: ("GET", "/any/x", [("authorization", f"Bearer {token()} trailing")]),
    "one-char-signature": lambda: ("GET", "/any/x", [bearer(token().rsplit(".", 1)[0] + ".A")]),
    "non-base64-signature": lambda: ("GET", "/any/x", [bearer(token().rsplit(".", 1)[0] + ".a*b")]),
    "param-only-expired": lambda: ("GET", f"/any/x?a=1&access_token={_expired()}&b=2", []),
    "cors-preflight-expired": lambda: ("OPTIONS", "/any/x", [bearer(_expired()), ("origin", "https://frontend.test"),
                                                             ("access-control-request-method", "GET")]),
    "options-without-origin": lambda: ("OPTIONS", "/any/x", [bearer(_expired()),
                                                             ("access-control-request-method", "GET")]),
    "original-path-header": lambda: ("GET", "/any/x", [bearer(_expired()), ("x-envoy-original-path", "/orig")]),
}


@pytest.mark.parametrize("name", sorted(PARITY_REQUESTS))
def test_meshguard_extracts_tokens_like_jwt_authn(envoy, name):
    method, path, headers = PARITY_REQUESTS[name]()
    reference = envoy(ENVOY_AUTHN, jwt_authn=JWT_AUTHN)
    own = envoy(OWN_AUTHN)

    def answer(client):
        r = client.request(method, path, headers=headers)
        return r.status, r.text, r.header("www-authenticate")

    expected, got = answer(reference), answer(own)
    assert got == expected, f"{name}: meshguard {got!r}, Envoy jwt_authn {expected!r}"
