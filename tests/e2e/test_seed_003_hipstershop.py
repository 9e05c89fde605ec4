"""Seed 003 (Istio security intro, Hipstershop on GKE), step by step, through a real Envoy.

Each step is one manifest of wasmplugin/hipstershop/ (one namespace-wide WasmPlugin, replaced at each
step). The frontend and productcatalogservice sidecars are listener pairs of one Envoy; the caller is
productcatalogservice's mesh identity (client certificate spiffe://cluster.local/ns/default/sa/
productcatalogservice), as in the tutorial's `kubectl exec ... -c istio-proxy -- curl https://frontend:80/
--cert ...`.

JWT: the manifests verify tokens against Istio's sample JWKS (jwksUri, issuer testing@secure.istio.io,
the key of the tutorial's demo.jwt). The test inlines a JWKS of a key made at test time instead and signs
tokens shaped like demo.jwt (iss = sub = testing@secure.istio.io, foo: bar)."""
import time

import pytest

from meshguard_tools.e2e import jwt_tokens as jt
from meshguard_tools.e2e.policies import OK_BODY
from meshguard_tools.e2e.seeds import MTLS_REQUIRED, RBAC_DENIED, inline_jwks, listener_clients, node, plugin_config, with_workload

DIR = "hipstershop"
ISS = jt.ISTIO_TEST_ISS
CALLER = "productcatalogservice"


def cfg(step: str) -> dict:
    return inline_jwks(plugin_config(f"{DIR}/{step}"), jt.jwks(jt.keys().rsa))


@pytest.fixture(scope="module")
def sidecars(envoy_pool):
    return listener_clients(envoy_pool, {
        "s1-frontend": plugin_config(f"{DIR}/01-mtls-frontend.yaml"),  # unchanged, workload from node metadata
        "s1-catalog": with_workload(cfg("01-mtls-frontend.yaml"), "productcatalogservice"),
        "s2-frontend": with_workload(cfg("02-mtls-default-ns.yaml"), "frontend"),
        "s2-catalog": with_workload(cfg("02-mtls-default-ns.yaml"), "productcatalogservice"),
        "s3-frontend": with_workload(cfg("03-jwt-frontend.yaml"), "frontend"),
        "s4-frontend": with_workload(cfg("04-enable-authz.yaml"), "frontend"),
        "s5-frontend": with_workload(cfg("05-rbac-frontend.yaml"), "frontend"),
    }, node_metadata=node("frontend"))


def demo_token(key=None, **overrides) -> str:
    """A token like Istio's samples/demo.jwt."""
    now = int(time.time())
    claims = {"iss": ISS, "sub": ISS, "foo": "bar", "iat": now, "exp": now + 3600, **overrides}
    return jt.sign(claims, key)


def call(c, *, identity=CALLER, token=None, headers=(), method="GET"):
    h = list(headers)
    if token is not None:
        h.append(jt.bearer(token))
    return c.request(method, "/", headers=h, identity=identity, body=b"" if method == "POST" else None)


def ok(r):
    return r.status == 200 and r.body == OK_BODY


def test_step1_mtls_for_the_frontend(sidecars):
    c = sidecars["s1-frontend"]
    # Plain HTTP to the frontend: refused (Istio: the TLS handshake fails, curl exit 56).
    r = call(c, identity=None)
    assert (r.status, r.body) == (403, MTLS_REQUIRED), r
    # HTTPS with productcatalogservice's certificate: 200.
    assert ok(call(c))
    # The rest of the namespace still accepts plaintext (mesh PERMISSIVE).
    assert ok(call(sidecars["s1-catalog"], identity=None))


def test_step2_mtls_for_the_default_namespace(sidecars):
    for name in ("s2-frontend", "s2-catalog"):
        r = call(sidecars[name], identity=None)
        assert (r.status, r.body) == (403, MTLS_REQUIRED), (name, r)
        assert ok(call(sidecars[name], identity="reviews")), name


def test_step3_jwt_on_the_frontend(sidecars):
    c = sidecars["s3-frontend"]
    # With a valid token: 200.
    assert ok(call(c, token=demo_token()))
    # An invalid token: 401 with Envoy jwt_authn's reason, as in 2019.
    jt.assert_jwt_rejected(call(c, token=demo_token(jt.keys().impostor)), "Jwt verification fails")
    jt.assert_jwt_rejected(call(c, token=demo_token(exp=int(time.time()) - 3600)), "Jwt is expired")
    jt.assert_jwt_rejected(call(c, token=demo_token(iss="https://other.example")), "Jwt issuer is not configured")
    # Without a token. 2019 (origins + principalBinding USE_ORIGIN): 401. Today RequestAuthentication lets a
    # request without a token through with no identity, and the AuthorizationPolicy frontend-require-jwt
    # (requestPrincipals ["*"]) refuses it: 403 RBAC: access denied.
    r = call(c)
    assert (r.status, r.body) == (403, RBAC_DENIED), r
    # mTLS still comes first.
    r = call(c, identity=None, token=demo_token())
    assert (r.status, r.body) == (403, MTLS_REQUIRED), r


def test_step4_enabling_rbac_locks_the_frontend(sidecars):
    c = sidecars["s4-frontend"]
    r = call(c, token=demo_token())
    assert (r.status, r.body) == (403, RBAC_DENIED), r
    assert call(c, token=demo_token(), headers=[("hello", "world")]).status == 403


def test_step5_rbac_binding_on_the_hello_world_header(sidecars):
    c = sidecars["s5-frontend"]
    tok = demo_token()
    r = call(c, token=tok)
    assert (r.status, r.body) == (403, RBAC_DENIED), r
    assert ok(call(c, token=tok, headers=[("hello", "world")]))
    assert call(c, token=tok, headers=[("hello", "World")]).status == 403
    # frontend-viewer: GET and HEAD only.
    assert call(c, token=tok, headers=[("hello", "world")], method="HEAD").status == 200
    assert call(c, token=tok, headers=[("hello", "world")], method="POST").status == 403
    # Tokens that are sent are still verified ...
    jt.assert_jwt_rejected(call(c, token=demo_token(jt.keys().impostor), headers=[("hello", "world")]),
                           "Jwt verification fails")
    # ... but with v1alpha1 RBAC and no AuthorizationPolicy nothing requires one any more (2019: 401;
    # see 04-enable-authz.yaml).
    assert ok(call(c, headers=[("hello", "world")]))
    # And plaintext is still refused first.
    r = call(c, identity=None, token=tok, headers=[("hello", "world")])
    assert (r.status, r.body) == (403, MTLS_REQUIRED), r
