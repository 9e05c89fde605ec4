"""Remote ``jwksUri``: meshguard fetches the JWKS with ``dispatch_http_call`` through an Envoy cluster (plugin
config ``jwksClusters``), on its 1 s tick, refreshes it every ``jwksRefreshSeconds``, keeps the last good keys
when a refresh fails, and before the first successful fetch answers tokens with 401 ``Jwks remote fetch is failed``
while requests without a token pass (README "RequestAuthentication"; jwt.md §3.5; authz-semantics §14).

The JWKS is served by a loopback HTTP server the test controls (``doc_server``: one document per path, so every
test gets its own path, its own plugin config and therefore its own Envoy), or by an Envoy ``direct_response``
listener. Every Envoy worker has its own Wasm VM and fetches on its own, so "verifies" is checked as a streak of
consecutive requests on new connections.
"""
import time

import pytest

from meshguard_tools import envoy_config
from meshguard_tools.e2e.policies import OK_BODY, config
from meshguard_tools.e2e.jwt_tokens import (
    assert_jwt_rejected, bearer, jwks, jwt_rule, keys, meshguard_counters, poll, poll_response, realm_jwks,
    request_authentication, token,
)

WEB_API = {"app": "web-api"}
CERTS_PATH = "/realms/quarkus/protocol/openid-connect/certs"
FETCH_FAILED = "Jwks remote fetch is failed"
KID_ALG = "Jwks doesn't have key to match kid or alg from Jwt"


def remote_config(uri: str, cluster: str | None, refresh: int | None = None) -> dict:
    pc = config(request_authentication("keycloak", jwt_rule(jwks_uri=uri, audiences=["web-api"]), labels=WEB_API),
                labels=WEB_API)
    if cluster:
        pc["jwksClusters"] = {uri: cluster}
    if refresh:
        pc["jwksRefreshSeconds"] = refresh
    return pc


@pytest.fixture
def served(envoy, doc_server):
    """``served(name, refresh=None) -> (client, path)``: an Envoy whose RequestAuthentication fetches
    ``http://jwks.test:<port><path>`` through cluster ``jwks_server`` (the loopback doc_server)."""

    def start(name: str, refresh: int | None = None):
        path = f"{CERTS_PATH}/{name}"
        uri = f"http://jwks.test:{doc_server.port}{path}"
        c = envoy(remote_config(uri, "jwks_server", refresh),
                  extra_clusters=[envoy_config.static_cluster("jwks_server", doc_server.port)])
        return c, path

    return start


def get(c, tok=None, path="/"):
    return c.request("GET", path, headers=[bearer(tok)] if tok else [])


def is_ok(r):
    return (r.status, r.body) == (200, OK_BODY)


def rejected_with(body):
    return lambda r: r.status == 401 and r.text == body


def test_fetched_after_startup(served, doc_server):
    doc_server.set(f"{CERTS_PATH}/startup", realm_jwks())
    c, path = served("startup")
    ok, last, waited = poll_response(lambda: get(c, token()), is_ok, timeout=5)
    assert ok, f"no streak of verified tokens within 5 s: {last!r}"
    # every key type of the fetched set; the enc entry is skipped, not fatal
    for key in (keys().ec, keys().ed):
        assert is_ok(get(c, token(key))), key.kid
    assert_jwt_rejected(get(c, token(keys().impostor)), "Jwt verification fails", realm="http://localhost/")
    # the fetch went to the cluster with the jwksUri's authority and path
    assert doc_server.hit_count(path) >= 1
    assert doc_server.last_headers[path]["host"] == f"jwks.test:{doc_server.port}"


def test_before_first_successful_fetch(served, doc_server):
    path = f"{CERTS_PATH}/unavailable"
    doc_server.fail(path, 503)
    c, _ = served("unavailable")
    # wait until a fetch has been tried and failed, so this is "failed", not merely "not yet fetched"
    assert poll(lambda: doc_server.hit_count(path) >= 1, timeout=5), "no JWKS fetch within 5 s"
    for _ in range(4):
        assert_jwt_rejected(get(c, token(), path="/articles"), FETCH_FAILED, realm="http://localhost/articles")
    # no built-in fallback key: a token of any key is refused the same way
    assert_jwt_rejected(get(c, token(keys().impostor)), FETCH_FAILED)
    # requests without a token pass; checks before the key (time, audience) still answer first (jwt.md §3.2)
    assert is_ok(get(c))
    assert_jwt_rejected(get(c, token(exp_in=-3600)), "Jwt is expired")
    assert_jwt_rejected(get(c, token(aud="other")), "Audiences in Jwt are not allowed", status=403)
    # the keys arrive once the server recovers (retries back off from 1 s)
    doc_server.set(path, realm_jwks())
    ok, last, waited = poll_response(lambda: get(c, token()), is_ok, timeout=10)
    assert ok, f"tokens still refused 10 s after the JWKS became available: {last!r}"


def test_unknown_cluster_fails_closed(envoy, doc_server):
    # no jwksClusters entry: the default Istio cluster name outbound|<port>||jwks.test does not exist here
    uri = f"http://jwks.test:{doc_server.port}{CERTS_PATH}/no-cluster"
    doc_server.set(f"{CERTS_PATH}/no-cluster", realm_jwks())
    c = envoy(remote_config(uri, None))
    time.sleep(1.2)  # past the first tick
    assert_jwt_rejected(get(c, token()), FETCH_FAILED, realm="http://localhost/")
    assert is_ok(get(c))
    assert doc_server.hit_count(f"{CERTS_PATH}/no-cluster") == 0


def test_key_rotation_and_failing_refresh(served, doc_server):
    path = f"{CERTS_PATH}/rotation"
    old, new = keys().rsa, keys().rotated
    doc_server.set(path, jwks(old))
    c, _ = served("rotation", refresh=2)
    ok, last, _ = poll_response(lambda: get(c, token(old)), is_ok, timeout=5)
    assert ok, f"old key never verified: {last!r}"
    assert_jwt_rejected(get(c, token(new)), KID_ALG)

    # rotation: the realm now publishes only the new key
    doc_server.set(path, jwks(new))
    ok, last, waited = poll_response(lambda: get(c, token(new)), is_ok, timeout=8)
    assert ok, f"new key not verifying 8 s after the rotation (refresh 2 s): {last!r}"
    # a token of the removed key (fresh, so not in the verified-token cache) is refused
    ok, last, _ = poll_response(lambda: get(c, token(old)), rejected_with(KID_ALG), timeout=5)
    assert ok, f"removed key still accepted: {last!r}"

    # a failing refresh keeps the last good keys
    doc_server.fail(path, 500)
    hits = doc_server.hit_count(path)
    assert poll(lambda: doc_server.hit_count(path) >= hits + 2, timeout=8), "no refresh attempts after the failure"
    ok, last, _ = poll_response(lambda: get(c, token(new)), is_ok, timeout=3)
    assert ok, f"keys lost after a failed refresh: {last!r}"
    assert_jwt_rejected(get(c, token(old)), KID_ALG)
    # and the fetches are counted (flushed on the next 1 s tick)
    s = poll(lambda: (lambda s: s if s.get("meshguard_jwks_fetch_failed", 0) >= 2 else None)(meshguard_counters(c)),
             timeout=3)
    assert s and s.get("meshguard_jwks_fetch_ok", 0) >= 2, meshguard_counters(c)  # the old set, the new set


def test_a_cached_verification_does_not_outlive_its_key(served, doc_server):
    # The same token text, verified (and cached by every worker) while its key was published, is refused once
    # a refresh drops the key, as Envoy answers it: the cache entry belongs to the old key-set generation.
    path = f"{CERTS_PATH}/revoked"
    old, new = keys().rsa, keys().rotated
    doc_server.set(path, jwks(old, new))
    c, _ = served("revoked", refresh=2)
    tok = token(old)
    ok, last, _ = poll_response(lambda: get(c, tok), is_ok, timeout=5)
    assert ok, f"token never verified: {last!r}"
    hits = meshguard_counters(c).get("meshguard_jwt_cache_hit", 0)
    for _ in range(4):  # new connections: both workers verify it, then answer from their caches
        assert is_ok(get(c, tok))
    assert poll(lambda: meshguard_counters(c).get("meshguard_jwt_cache_hit", 0) > hits, timeout=3), "never cached"
    doc_server.set(path, jwks(new))
    ok, last, waited = poll_response(lambda: get(c, tok), rejected_with(KID_ALG), timeout=8)
    assert ok, f"the revoked key's cached token still accepted {waited:.1f} s after the JWKS dropped it: {last!r}"


def test_jwks_served_by_envoy_direct_response(envoy, free_port):
    port = free_port()
    uri = f"http://jwks.test:{port}{CERTS_PATH}"
    c = envoy(
        remote_config(uri, "jwks_envoy"),
        extra_listeners=[envoy_config.direct_response_listener("jwks_static", port, realm_jwks())],
        extra_clusters=[envoy_config.static_cluster("jwks_envoy", port)],
    )
    ok, last, _ = poll_response(lambda: get(c, token()), is_ok, timeout=5)
    assert ok, f"no streak of verified tokens within 5 s: {last!r}"
    assert is_ok(get(c, token(keys().ed)))
    assert_jwt_rejected(get(c, token(keys().impostor)), "Jwt verification fails", realm="http://localhost/")
    assert_jwt_rejected(get(c, token(keys().rotated)), KID_ALG, realm="http://localhost/")
