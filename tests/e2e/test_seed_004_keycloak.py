"""Seed 004 (Keycloak + Quarkus "cloud native starter" security: strict mTLS, then Istio authorization),
step by step, through a real Envoy.

Each step is one manifest of wasmplugin/keycloak-quarkus/ (one namespace-wide WasmPlugin, replaced at each
step) on the web-api sidecar. Plaintext requests stand for the tutorial's `curl $webapi/articles` to the
NodePort; mTLS requests carry the ingress gateway's identity (the tutorial's HTTPS path through the Istio
ingress). Tokens are Keycloak-shaped access tokens (meshguard_tools/e2e/jwt_tokens.py) from the tutorial's realm
issuer https://demo.k8s.local/auth/realms/quarkus, signed with a key made at test time whose JWKS replaces
the manifest's jwksUri (the in-mesh Keycloak)."""
import time

import pytest

from meshguard_tools.e2e import jwt_tokens as jt
from meshguard_tools.e2e.policies import OK_BODY
from meshguard_tools.e2e.seeds import MTLS_REQUIRED, RBAC_DENIED, inline_jwks, listener_clients, node, plugin_config, with_workload

DIR = "keycloak-quarkus"
REALM = "https://demo.k8s.local/auth/realms/quarkus"
GATEWAY = "ingress"  # spiffe://cluster.local/ns/istio-system/sa/ingress


@pytest.fixture(scope="module")
def web_api(envoy_pool):
    def cfg(step):
        return with_workload(inline_jwks(plugin_config(f"{DIR}/{step}"), jt.realm_jwks()), "web-api")

    return listener_clients(envoy_pool, {
        "permissive": plugin_config(f"{DIR}/01-permissive.yaml"),  # unchanged, workload from node metadata
        "strict": cfg("02-strict-mtls.yaml"),
        "authz": cfg("03-authorization.yaml"),
    }, node_metadata=node("web-api", version="v1"))


def access_token(**overrides) -> str:
    """alice's access token (realm roles include `user`), valid 60 s as in the tutorial's realm."""
    return jt.token(iss=REALM, exp_in=60, **overrides)


def articles(c, token=None, identity=None, method="GET"):
    headers = [jt.bearer(token)] if token else []
    return c.request(method, "/articles", headers=headers, identity=identity,
                     body=b"{}" if method == "POST" else None)


def ok(r):
    return r.status == 200 and r.body == OK_BODY


def test_task1_permissive_plaintext_with_token_is_served(web_api):
    c = web_api["permissive"]
    assert ok(articles(c, access_token()))  # "HTTP/1.1 200 OK"
    assert ok(articles(c, access_token(), identity=GATEWAY))


def test_task2_strict_refuses_plaintext_and_serves_mtls(web_api):
    c = web_api["strict"]
    r = articles(c, access_token())
    assert (r.status, r.body) == (403, MTLS_REQUIRED), r
    assert ok(articles(c, access_token(), identity=GATEWAY))


def test_authorization_on_keycloak_realm_roles(web_api):
    c = web_api["authz"]
    # alice has the realm role `user`: may read.
    assert ok(articles(c, access_token(), identity=GATEWAY))
    # ... not write (needs `admin`).
    r = articles(c, access_token(), identity=GATEWAY, method="POST")
    assert (r.status, r.body) == (403, RBAC_DENIED), r
    admin = access_token(realm_roles=("default-roles-quarkus", "user", "admin"), username="admin")
    assert ok(articles(c, admin, identity=GATEWAY, method="POST"))
    # bob has no `user` role.
    bob = access_token(sub=jt.BOB, username="bob", realm_roles=("default-roles-quarkus", "offline_access"))
    assert articles(c, bob, identity=GATEWAY).status == 403
    # No token: no claims, no rule matches.
    assert articles(c, identity=GATEWAY).status == 403
    # An expired token ("an access-token is only valid for 60 seconds") or a forged one: 401.
    jt.assert_jwt_rejected(articles(c, access_token(exp=int(time.time()) - 120), identity=GATEWAY), "Jwt is expired")
    jt.assert_jwt_rejected(articles(c, jt.sign(jt.keycloak_claims(iss=REALM), jt.keys().impostor),
                                    identity=GATEWAY), "Jwt verification fails")
    # A token of another realm.
    jt.assert_jwt_rejected(articles(c, jt.token(), identity=GATEWAY), "Jwt issuer is not configured")
    # Still STRICT: plaintext is refused first, whatever the token.
    r = articles(c, access_token())
    assert (r.status, r.body) == (403, MTLS_REQUIRED), r
