"""ports, hosts, ipBlocks, remoteIpBlocks (X-Forwarded-For) and destination conditions
(authz-semantics §6, §7, §8)."""
import pytest

from meshguard_tools.e2e.policies import allow, assert_allowed, assert_denied, config, deny, rule, src, to


def test_ports_is_the_listener_port(envoy, free_port):
    plain, mtls = free_port(), free_port()
    c = envoy(config(allow("allow-plain-port", [rule(to_=[to(ports=[str(plain)])])])), plain_port=plain, mtls_port=mtls)
    assert_allowed(c.request("GET", "/"))
    assert_denied(c.request("GET", "/", identity="productpage"))


def test_not_ports(envoy, free_port):
    plain, mtls = free_port(), free_port()
    c = envoy(config(deny("deny-mtls-port", [rule(to_=[to(notPorts=[str(plain)])])])), plain_port=plain, mtls_port=mtls)
    assert_allowed(c.request("GET", "/"))
    assert_denied(c.request("GET", "/", identity="productpage"))


def test_destination_port_condition(envoy, free_port):
    plain, mtls = free_port(), free_port()
    c = envoy(config(deny("deny-port", [rule(when=[{"key": "destination.port", "values": [str(mtls)]}])])),
              plain_port=plain, mtls_port=mtls)
    assert_allowed(c.request("GET", "/"))
    assert_denied(c.request("GET", "/", identity="reviews"))


HOSTS = config(deny("deny-host", [rule(to_=[to(hosts=["example.com"])])]))


@pytest.mark.parametrize("host,denied", [
    ("example.com", True),
    ("EXAMPLE.com", True),       # hosts are case-insensitive
    ("Example.COM", True),
    ("example.com:80", False),   # the port is part of :authority
    ("example.com.", False),
    ("www.example.com", False),
    ("other.test", False),
])
def test_hosts(envoy, host, denied):
    r = envoy(HOSTS).request("GET", "/", headers=[("Host", host)])
    (assert_denied if denied else assert_allowed)(r, host)


def test_hosts_prefix_and_suffix_ignore_case(envoy):
    c = envoy(config(allow("hosts", [rule(to_=[to(hosts=["*.example.com", "api.test:*"])])])))
    assert_allowed(c.request("GET", "/", headers=[("Host", "WWW.Example.com")]))
    assert_allowed(c.request("GET", "/", headers=[("Host", "api.test:8080")]))
    assert_denied(c.request("GET", "/", headers=[("Host", "example.com")]))
    assert_denied(c.request("GET", "/", headers=[("Host", "api.test")]))


def test_hosts_over_http2(envoy):
    r = envoy(HOSTS).request("GET", "/", headers=[("Host", "Example.com")], http2=True)
    assert_denied(r)


@pytest.mark.parametrize("blocks,allowed", [
    (["127.0.0.1/32"], True),
    (["127.0.0.1"], True),
    (["127.0.0.0/8"], True),
    (["10.0.0.0/8"], False),
    (["10.0.0.0/8", "127.0.0.1"], True),
])
def test_ip_blocks(envoy, blocks, allowed):
    c = envoy(config(allow("ips", [rule(from_=[src(ipBlocks=blocks)])])))
    (assert_allowed if allowed else assert_denied)(c.request("GET", "/"), str(blocks))
    (assert_allowed if allowed else assert_denied)(c.request("GET", "/", identity="foo-bar"), str(blocks))


def test_not_ip_blocks(envoy):
    c = envoy(config(deny("not-ips", [rule(from_=[src(notIpBlocks=["10.0.0.0/8"])])])))
    assert_denied(c.request("GET", "/"))


XFF = dict(use_remote_address=True, xff_num_trusted_hops=1)


# Envoy's `source.address` (the only peer address a Wasm filter can read) is the *remote* address, which
# follows X-Forwarded-For whenever the HCM trusts it. Istio's ipBlocks / source.ip are the TCP peer
# (direct_remote_ip). The filter can learn the TCP peer from filter state `meshguard.direct_peer`
# (set_filter_state from %DOWNSTREAM_DIRECT_REMOTE_ADDRESS%); each case runs with and without it.
DIRECT_PEER = pytest.mark.parametrize("direct_peer_state", [True, False], ids=["direct-peer-state", "no-direct-peer-state"])


@DIRECT_PEER
@pytest.mark.parametrize("xff", ["10.1.2.3", "127.0.0.1", "192.0.2.1, 10.1.2.3"])
def test_ip_blocks_cannot_be_spoofed_with_xff_on_a_default_sidecar_listener(envoy, xff, direct_peer_state):
    """Istio's sidecar-inbound HCM (use_remote_address false) makes Envoy's remote address the last
    X-Forwarded-For entry, chosen by the client. ipBlocks must not follow it: the TCP peer is 127.0.0.1."""
    c = envoy(config(allow("only-10", [rule(from_=[src(ipBlocks=["10.0.0.0/8"])])])), direct_peer_state=direct_peer_state)
    assert_denied(c.request("GET", "/", headers=[("X-Forwarded-For", xff)]), f"XFF {xff}")
    c2 = envoy(config(deny("deny-local", [rule(from_=[src(ipBlocks=["127.0.0.1/32"])])])), direct_peer_state=direct_peer_state)
    assert_denied(c2.request("GET", "/", headers=[("X-Forwarded-For", xff)]), f"XFF {xff}")


@DIRECT_PEER
def test_remote_ip_blocks_use_x_forwarded_for(envoy, direct_peer_state):
    c = envoy(config(allow("remote", [rule(from_=[src(remoteIpBlocks=["10.1.2.3/32"])])])), direct_peer_state=direct_peer_state, **XFF)
    assert_allowed(c.request("GET", "/", headers=[("X-Forwarded-For", "10.1.2.3")]))
    assert_denied(c.request("GET", "/", headers=[("X-Forwarded-For", "10.1.2.4")]))
    assert_denied(c.request("GET", "/"), "no XFF: remote ip is the peer 127.0.0.1")


@DIRECT_PEER
def test_ip_blocks_still_see_the_direct_peer_with_xff(envoy, direct_peer_state):
    c = envoy(config(allow("direct", [rule(from_=[src(ipBlocks=["127.0.0.1/32"])])])), direct_peer_state=direct_peer_state, **XFF)
    r = c.request("GET", "/", headers=[("X-Forwarded-For", "10.1.2.3")])
    if direct_peer_state:
        assert_allowed(r)
    else:
        # Behind a trusted XFF, Envoy exposes only the derived address to Wasm; without the
        # meshguard.direct_peer filter state the physical peer is unknown, and an ALLOW that
        # depends on it fails closed (README: deliberate differences).
        assert_denied(r, "unknown physical peer never satisfies an ALLOW on ipBlocks")
    c2 = envoy(config(allow("direct-xff", [rule(from_=[src(ipBlocks=["10.1.2.3/32"])])])), direct_peer_state=direct_peer_state, **XFF)
    assert_denied(c2.request("GET", "/", headers=[("X-Forwarded-For", "10.1.2.3")]), "ipBlocks ignore XFF")


def test_remote_ip_condition(envoy):
    c = envoy(config(deny("deny-remote", [rule(when=[{"key": "remote.ip", "values": ["10.0.0.0/8"]}])])), **XFF)
    assert_denied(c.request("GET", "/", headers=[("X-Forwarded-For", "10.9.9.9")]))
    assert_allowed(c.request("GET", "/", headers=[("X-Forwarded-For", "192.0.2.1")]))


@DIRECT_PEER
def test_source_ip_condition(envoy, direct_peer_state):
    c = envoy(config(deny("deny-src", [rule(when=[{"key": "source.ip", "values": ["127.0.0.1"]}])])),
              direct_peer_state=direct_peer_state, **XFF)
    assert_denied(c.request("GET", "/", headers=[("X-Forwarded-For", "10.9.9.9")]))


def test_destination_ip_condition(envoy):
    c = envoy(config(allow("dst", [rule(when=[{"key": "destination.ip", "values": ["127.0.0.1/32"]}])])))
    assert_allowed(c.request("GET", "/"))
    c2 = envoy(config(allow("dst2", [rule(when=[{"key": "destination.ip", "values": ["10.0.0.1"]}])])))
    assert_denied(c2.request("GET", "/"))
