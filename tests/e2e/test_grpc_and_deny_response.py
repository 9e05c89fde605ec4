"""What a denied client receives: HTTP 403 `RBAC: access denied`; gRPC PERMISSION_DENIED (7)
(authz-semantics §3.2)."""
import pytest

from meshguard_tools.e2e.policies import DENY_BODY, assert_allowed, config, deny, rule, to

DENY_ADMIN = config(deny("deny-admin", [rule(to_=[to(paths=["/admin", "/pkg.Admin/*"])])]))


@pytest.mark.parametrize("http2", [False, True])
@pytest.mark.parametrize("identity", [None, "productpage"])
def test_deny_response_is_403_rbac_access_denied(envoy, http2, identity):
    r = envoy(DENY_ADMIN).request("GET", "/admin", identity=identity, http2=http2)
    assert r.status == 403, r
    assert r.body == DENY_BODY, r


def test_allowed_request_reaches_the_route(envoy):
    assert_allowed(envoy(DENY_ADMIN).request("GET", "/public"))


@pytest.mark.parametrize("identity", [None, "productpage"])
def test_grpc_denied_is_permission_denied(envoy, identity):
    r = envoy(DENY_ADMIN).request("POST", "/pkg.Admin/Delete", identity=identity, grpc=True)
    assert r.status == 200, r  # gRPC errors travel in grpc-status, over HTTP 200 (trailers-only)
    assert r.header("grpc-status") == "7", r


def test_grpc_allowed_is_not_denied(envoy):
    r = envoy(DENY_ADMIN).request("POST", "/pkg.Public/Get", grpc=True)
    assert r.status == 200, r
    # The route's direct_response reached the client; Envoy converts a local reply to a gRPC request into
    # grpc-status 2 (UNKNOWN) with the body as grpc-message. Anything but 7 means "not denied".
    assert r.header("grpc-status") != "7", r
    assert r.header("grpc-message") == "ok%0A", r
