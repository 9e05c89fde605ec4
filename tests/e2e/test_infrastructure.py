"""The test rig itself, without the Wasm filter: Envoy starts, certs verify, mTLS, h2, XFF, access log.

If these fail, every other e2e result is meaningless."""
import ssl

import pytest

from meshguard_tools.e2e.policies import IDENTITIES, OK_BODY


@pytest.fixture
def bare(envoy):
    return envoy(None, wasm=False, access_log=True)


def test_plaintext_http1(bare):
    r = bare.request("GET", "/anything")
    assert (r.status, r.body) == (200, OK_BODY)


@pytest.mark.parametrize("identity", sorted(IDENTITIES))
def test_mtls_with_each_client_cert(bare, identity):
    r = bare.request("GET", "/x", identity=identity)
    assert (r.status, r.body) == (200, OK_BODY)
    uri = IDENTITIES[identity]
    line = bare.access_log_line(f'peer="{uri or "-"}"')
    # the access log shows the peer URI SAN Envoy saw (empty/"-" for the cert without one)
    assert f'peer="{uri or "-"}"' in line, line


def test_mtls_listener_requires_client_cert(bare):
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        bare.request("GET", "/", listener="mtls")


@pytest.mark.parametrize("listener,identity", [("plain", None), ("mtls", "productpage")])
def test_http2(bare, listener, identity):
    r = bare.request("GET", "/h2", listener=listener, identity=identity, http2=True)
    assert (r.status, r.body) == (200, OK_BODY)
    assert "HTTP/2" in bare.access_log_line(f"{bare.port(listener)} \"GET /h2 ")


def test_raw_path_is_sent_unmodified_and_envoy_normalizes_it(envoy):
    # http.client sends the dot segments as is; Envoy's normalize_path (Istio BASE) resolves them
    c = envoy(None, wasm=False, access_log=True)
    r = c.request("GET", "/public/../private")
    assert r.status == 200
    c.access_log_line('"GET /private HTTP/1.1"')


def test_xff_remote_address(envoy):
    c = envoy(None, wasm=False, access_log=True, use_remote_address=True, xff_num_trusted_hops=1)
    r = c.request("GET", "/xff", headers=[("x-forwarded-for", "10.1.2.3")])
    assert r.status == 200
    line = c.access_log_line("/xff")
    assert "remote=10.1.2.3" in line and "direct=127.0.0.1" in line, line


def test_destination_port_is_listener_port(envoy, free_port):
    p = free_port()
    c = envoy(None, wasm=False, access_log=True, plain_port=p)
    assert c.plain_port == p
    c.request("GET", "/port")
    assert c.access_log_line("/port").split()[1] == str(p)
