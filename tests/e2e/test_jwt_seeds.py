"""The two JWT walkthroughs of the seeds, step by step, with current Istio (v1/v1beta1) resources.

* seed 003 (Hipstershop "Introduction to Istio Security", 2019): mTLS for ``frontend``, then end-user JWT
  authentication on ``frontend``, then RBAC that lets GET/HEAD through only with a ``hello: world`` header.
  Calls come from ``productcatalogservice`` (its client certificate) over the mTLS listener.
* seed 004 (Keycloak + Quarkus cloud-native-starter): ``web-api`` reached with a Keycloak access token over
  plaintext (PERMISSIVE), then only over mTLS (STRICT), and realm-role authorization.

No PeerAuthentication here: the mTLS listener requires a client certificate (a handshake without one fails, as
``curl`` exit 56 in the seed), and the plaintext listener is the path from outside the mesh. Where a seed relies
on STRICT mTLS to refuse plaintext, the policy says so with the Istio idiom DENY ``notPrincipals: ["*"]``
(a plaintext peer has no principal: authz-semantics §6.1, §9), so meshguard fails it closed with 403.
"""
import http.client
import ssl
import time

import pytest

from meshguard_tools import certs
from meshguard_tools.paths import CERT_DIR
from meshguard_tools.e2e.policies import DENY_BODY, OK_BODY, allow, config, deny, rule, src, to
from meshguard_tools.e2e.jwt_tokens import (
    ISTIO_TEST_ISS, KEYCLOAK_ISS, assert_jwt_rejected, bearer, jwks, jwt_rule, keys, request_authentication, sign,
    token,
)

EXTRA_IDENTITIES = {
    "productcatalogservice": "spiffe://cluster.local/ns/default/sa/productcatalogservice",
    "istio-ingressgateway": "spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account",
}


@pytest.fixture(scope="module", autouse=True)
def seed_certs(cert_dir):
    """Client certificates for the seeds' workloads, signed by the same test CA (certs.sh keeps what exists)."""
    certs.make_certs(CERT_DIR, *[f"{n}={u}" for n, u in EXTRA_IDENTITIES.items()])
    return cert_dir


def assert_ok(r, what=""):
    assert (r.status, r.body) == (200, OK_BODY), f"{what}: {r!r}"


def assert_rbac_denied(r, decision: str, what=""):
    assert (r.status, r.body) == (403, DENY_BODY), f"{what}: {r!r}"
    assert r.header("x-meshguard-decision") == decision, f"{what}: {r!r}"
    assert r.header("www-authenticate") is None, r


# ==================================================================================================
# seed 003: Hipstershop frontend

FRONTEND = {"app": "frontend"}
PCS = "productcatalogservice"

# step 1 (istio/mtls-frontend.yaml): mTLS required for the frontend
REQUIRE_MTLS = deny("frontend-require-mtls", [rule(from_=[src(notPrincipals=["*"])])])

# step 2 (istio/jwt-frontend.yaml): origin authentication with Istio's test issuer
ISTIO_JWKS = jwks(keys().rsa, enc=False)
FRONTEND_RA = request_authentication("frontend-authn", jwt_rule(ISTIO_TEST_ISS, jwks_doc=ISTIO_JWKS), labels=FRONTEND)
# The 2019 seed used a v1alpha1 Policy with `origins` and `principalBinding: USE_ORIGIN`, under which a
# request without a token got 401. Since Istio 1.5 (v1beta1) RequestAuthentication alone lets a request
# without a token through, and requiring one is an AuthorizationPolicy, so the denial is 403 "RBAC: access
# denied" (authz-semantics §14, §6.5). meshguard follows current Istio: we assert 403.
REQUIRE_JWT = deny("frontend-require-jwt", [rule(from_=[src(notRequestPrincipals=["*"])])])

# step 3a (istio/enable-authz.yaml): authorization on for the frontend, nobody whitelisted yet: an ALLOW
# policy without rules matches nothing, so everything is denied (authz-semantics §3.3)
ENABLE_AUTHZ = allow("frontend-enable-authz")
# step 3b (istio/rbac-frontend.yaml): ServiceRole frontend-viewer (GET, HEAD) bound to subjects with the
# property request.headers[hello] == "world"
FRONTEND_VIEWER = allow("frontend-viewer", [
    rule(to_=[to(methods=["GET", "HEAD"])], when=[{"key": "request.headers[hello]", "values": ["world"]}]),
])


def frontend(*resources):
    return config(*resources, labels=FRONTEND)


def istio_test_token(**extra) -> str:
    """A token shaped like Istio's security/tools/jwt/samples/demo.jwt, signed with our key."""
    now = int(time.time())
    claims = {"iss": ISTIO_TEST_ISS, "sub": ISTIO_TEST_ISS, "foo": "bar", "iat": now, "exp": now + 3600}
    claims.update(extra)
    return sign(claims)


def https_without_client_certificate(client, path="/"):
    """The seed's `curl https://frontend/` without --cert: the handshake or the first read fails."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile=str(client.cert_dir / "ca.crt"))
    conn = http.client.HTTPSConnection("localhost", client.mtls_port, context=ctx, timeout=5)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    finally:
        conn.close()


def test_seed003_step1_mtls_for_frontend(envoy):
    c = envoy(frontend(REQUIRE_MTLS))
    # mTLS with productcatalogservice's certificate: 200
    assert_ok(c.request("GET", "/", identity=PCS), "mTLS")
    # no client certificate: the TLS listener refuses the connection (the seed's curl exit 56)
    with pytest.raises((ssl.SSLError, ConnectionError, http.client.HTTPException)):
        https_without_client_certificate(c)
    # plaintext from outside the mesh: no peer identity, fails closed
    assert_rbac_denied(c.request("GET", "/"), "deny ns[default]-policy[frontend-require-mtls]-rule[0]", "plaintext")


def test_seed003_step2_jwt_origin_authentication(envoy):
    c = envoy(frontend(REQUIRE_MTLS, FRONTEND_RA, REQUIRE_JWT))
    tok = istio_test_token()
    # mTLS, no token: 403 here (401 in the 2019 seed, see REQUIRE_JWT)
    assert_rbac_denied(c.request("GET", "/", identity=PCS),
                       "deny ns[default]-policy[frontend-require-jwt]-rule[0]", "mTLS without token")
    # mTLS and a token: 200
    assert_ok(c.request("GET", "/", identity=PCS, headers=[bearer(tok)]), "mTLS + JWT")
    # a token alone is not enough: plaintext is still refused
    assert_rbac_denied(c.request("GET", "/", headers=[bearer(tok)]),
                       "deny ns[default]-policy[frontend-require-mtls]-rule[0]", "plaintext + JWT")
    # a bad token is a 401 from authentication
    expired = istio_test_token(exp=int(time.time()) - 3600)
    assert_jwt_rejected(c.request("GET", "/", identity=PCS, headers=[bearer(expired)]), "Jwt is expired",
                        realm="https://localhost/")
    other = sign({"iss": "https://accounts.example.com", "sub": "x", "exp": int(time.time()) + 600})
    assert_jwt_rejected(c.request("GET", "/", identity=PCS, headers=[bearer(other)]), "Jwt issuer is not configured",
                        realm="https://localhost/")


def test_seed003_step3a_authorization_enabled_denies_everyone(envoy):
    c = envoy(frontend(REQUIRE_MTLS, FRONTEND_RA, REQUIRE_JWT, ENABLE_AUTHZ))
    assert_rbac_denied(c.request("GET", "/", identity=PCS, headers=[bearer(istio_test_token())]), "deny none",
                       "mTLS + JWT, nobody allowed yet")


def test_seed003_step3b_rbac_hello_world_header(envoy):
    c = envoy(frontend(REQUIRE_MTLS, FRONTEND_RA, REQUIRE_JWT, FRONTEND_VIEWER))
    auth = [bearer(istio_test_token())]
    assert_rbac_denied(c.request("GET", "/", identity=PCS, headers=auth), "deny none", "without hello: world")
    r = c.request("GET", "/", identity=PCS, headers=auth + [("hello", "world")])
    assert_ok(r, "with hello: world")
    assert r.header("x-meshguard-decision") == "allow ns[default]-policy[frontend-viewer]-rule[0]", r
    r = c.request("HEAD", "/product/OLJCESPC7Z", identity=PCS, headers=auth + [("hello", "world")])
    assert (r.status, r.body) == (200, b""), r
    # the role is GET/HEAD only; header values are case-sensitive; the JWT is still required
    assert_rbac_denied(c.request("POST", "/cart", identity=PCS, headers=auth + [("hello", "world")], body=b""),
                       "deny none", "POST")
    assert_rbac_denied(c.request("GET", "/", identity=PCS, headers=auth + [("hello", "World")]), "deny none", "World")
    assert_rbac_denied(c.request("GET", "/", identity=PCS, headers=[("hello", "world")]),
                       "deny ns[default]-policy[frontend-require-jwt]-rule[0]", "no JWT")


# ==================================================================================================
# seed 004: Keycloak realm "quarkus", web-api

WEB_API = {"app": "web-api"}
WEB_API_RA = request_authentication("web-api-jwt", jwt_rule(KEYCLOAK_ISS), labels=WEB_API)
WEB_API_REQUIRE_JWT = deny("web-api-require-jwt", [rule(from_=[src(notRequestPrincipals=["*"])])])
WEB_API_STRICT = deny("web-api-strict-mtls", [rule(from_=[src(notPrincipals=["*"])])])
# 7 - Istio Authorization: reading articles needs the realm role "user", writing needs "admin"
WEB_API_ROLES = allow("web-api-roles", [
    rule(to_=[to(methods=["GET"], paths=["/articles*"])],
         when=[{"key": "request.auth.claims[realm_access][roles]", "values": ["user"]}]),
    rule(to_=[to(methods=["POST"], paths=["/articles*"])],
         when=[{"key": "request.auth.claims[realm_access][roles]", "values": ["admin"]}]),
])
INGRESS = "istio-ingressgateway"


def alice_token(**kw):
    # "an access-token is only valid for 60 seconds" in the seed's realm
    return token(sub="alice-id", username="alice", aud="account", exp_in=60, **kw)


def test_seed004_task1_permissive_plaintext_with_token(envoy):
    c = envoy(config(WEB_API_RA, WEB_API_REQUIRE_JWT, labels=WEB_API))
    tok = alice_token()
    # NodePort, plain HTTP, with the token: 200 (PERMISSIVE lets plaintext in)
    assert_ok(c.request("GET", "/articles", headers=[bearer(tok)]), "plaintext + token")
    # the token is what protects it
    assert_rbac_denied(c.request("GET", "/articles"), "deny ns[default]-policy[web-api-require-jwt]-rule[0]",
                       "plaintext, no token")
    # through the ingress gateway (mTLS) with the token: 200 as well
    assert_ok(c.request("GET", "/articles", identity=INGRESS, headers=[bearer(tok)]), "mTLS + token")


def test_seed004_task2_strict_mtls(envoy):
    c = envoy(config(WEB_API_RA, WEB_API_REQUIRE_JWT, WEB_API_STRICT, labels=WEB_API))
    tok = alice_token()
    # "you can no longer access the service, even if you know its NodePort"
    assert_rbac_denied(c.request("GET", "/articles", headers=[bearer(tok)]),
                       "deny ns[default]-policy[web-api-strict-mtls]-rule[0]", "plaintext + token")
    assert_ok(c.request("GET", "/articles", identity=INGRESS, headers=[bearer(tok)]), "mTLS + token")
    assert_rbac_denied(c.request("GET", "/articles", identity=INGRESS),
                       "deny ns[default]-policy[web-api-require-jwt]-rule[0]", "mTLS, no token")


def test_seed004_realm_roles(envoy):
    c = envoy(config(WEB_API_RA, WEB_API_REQUIRE_JWT, WEB_API_STRICT, WEB_API_ROLES, labels=WEB_API))
    user = [bearer(alice_token(realm_roles=["default-roles-quarkus", "offline_access", "user"]))]
    admin = [bearer(alice_token(realm_roles=["default-roles-quarkus", "user", "admin"]))]
    nobody = [bearer(alice_token(realm_roles=["default-roles-quarkus"]))]
    r = c.request("GET", "/articles", identity=INGRESS, headers=user)
    assert_ok(r, "user reads")
    assert r.header("x-meshguard-decision") == "allow ns[default]-policy[web-api-roles]-rule[0]", r
    assert_rbac_denied(c.request("POST", "/articles", identity=INGRESS, headers=user, body=b"{}"), "deny none",
                       "user writes")
    r = c.request("POST", "/articles", identity=INGRESS, headers=admin, body=b"{}")
    assert_ok(r, "admin writes")
    assert r.header("x-meshguard-decision") == "allow ns[default]-policy[web-api-roles]-rule[1]", r
    assert_rbac_denied(c.request("GET", "/articles", identity=INGRESS, headers=nobody), "deny none", "no role")
    # an expired access token (Keycloak's 60 s lifetime is long past, beyond the 60 s skew) is a 401
    stale = alice_token(exp=int(time.time()) - 180)
    assert_jwt_rejected(c.request("GET", "/articles", identity=INGRESS, headers=[bearer(stale)]), "Jwt is expired",
                        realm="https://localhost/articles")
