"""Bypass suite, class G (known-bypasses.md G: protocol and request-smuggling shapes), through the real Envoy with raw
HTTP/1 bytes on one connection. Same configuration as test_bypass_paths (DENY /admin, ALLOW notPaths /secret, BASE):
whatever Envoy does with the framing, no request for /admin or /secret may get a 200.

Expected outcomes are listed per response, in order; ``?`` marks a response Envoy may not send because it closed the
connection first (after a local reply it closes an HTTP/1 connection: later pipelined requests are never served).
"""
import copy

import pytest

from meshguard_tools import envoy_config
from meshguard_tools.e2e.bypass import check, raw_http
from test_bypass_paths import PATHS

H = b"Host: localhost\r\n"
WS = b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"

# (id, raw bytes, expected outcome per response in order, reason)
CASES = [
    ("http10-no-host-admin", b"GET /admin HTTP/1.0\r\n\r\n", ["426"], "Envoy refuses HTTP/1.0 (accept_http_10 off)"),
    ("http10-no-host-open", b"GET /x HTTP/1.0\r\n\r\n", ["426"], "same for an open path: Envoy, not meshguard"),
    ("http10-host-admin", b"GET /admin HTTP/1.0\r\n" + H + b"\r\n", ["426"], "with a Host too"),
    ("http11-no-host", b"GET /admin HTTP/1.1\r\n\r\n", ["400"], "HTTP/1.1 needs a Host"),
    ("cl-and-te-smuggle", b"POST /x HTTP/1.1\r\n" + H + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"0\r\n\r\nGET /admin HTTP/1.1\r\n" + H + b"\r\n", ["400"],
     "Content-Length with Transfer-Encoding: 400 and close; the smuggled GET /admin is never parsed"),
    ("te-chunked-smuggle", b"POST /x HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
     b"GET /admin HTTP/1.1\r\n" + H + b"\r\n", ["allow", "?deny:deny-admin"],
     "a pipelined request after a chunked body is a request of its own, and authorized"),
    ("pipelined", b"GET /x HTTP/1.1\r\n" + H + b"\r\nGET /secret HTTP/1.1\r\n" + H + b"\r\nGET /admin HTTP/1.1\r\n" + H + b"\r\n",
     ["allow", "deny:none", "?deny:deny-admin"], "keep-alive: every request is authorized"),
    ("upgrade-no-upgrade-config", b"GET /admin HTTP/1.1\r\n" + H + WS + b"\r\n", ["403"],
     "no upgrade_configs on the HCM: Envoy refuses the upgrade itself (403) before any filter"),
    ("upgrade-then-pipelined", b"GET /x HTTP/1.1\r\n" + H + WS + b"\r\nGET /admin HTTP/1.1\r\n" + H + b"\r\n", ["not200"],
     "no upgrade configured: Envoy answers 403 and closes; the bytes after it are never a request"),
    ("absolute-form", b"GET http://localhost/admin HTTP/1.1\r\n" + H + b"\r\n", ["deny:deny-admin"],
     "absolute-form target: the path is /admin"),
    ("absolute-form-mixed-scheme", b"GET HTTPS://localhost/admin HTTP/1.1\r\n" + H + b"\r\n", ["deny:deny-admin"],
     "CVE-2023-35944: mixed-case scheme"),
    ("absolute-form-dots", b"GET http://localhost/public/../admin HTTP/1.1\r\n" + H + b"\r\n", ["deny:deny-admin"],
     "absolute-form is normalized too"),
    ("absolute-form-other-host", b"GET http://evil.test/secret HTTP/1.1\r\n" + H + b"\r\n", ["deny:none"],
     "another authority in the target"),
    ("asterisk-form", b"OPTIONS * HTTP/1.1\r\n" + H + b"\r\n", ["not200"], "asterisk-form is not a path"),
    ("space-in-path", b"GET /admin /x HTTP/1.1\r\n" + H + b"\r\n", ["400"], "a request line with two spaces"),
    ("header-name-space", b"GET /x HTTP/1.1\r\n" + H + b"x-role : admin\r\n\r\n", ["400"], "whitespace before `:`"),
    ("obs-fold", b"GET /secret HTTP/1.1\r\n" + H + b"x-a: b\r\n c\r\n\r\n", ["not200"],
     "obsolete line folding: Envoy 1.40 unfolds it; the request is still authorized"),
]


@pytest.mark.parametrize("name,data,expects,reason", CASES, ids=[c[0] for c in CASES])
def test_raw_http1(envoy, name, data, expects, reason):
    c = envoy(PATHS)
    responses = raw_http(c.plain_port, data)
    assert responses, f"{name}: no response ({reason})"
    got = [(r.status, r.header("x-meshguard-decision")) for r in responses]
    if expects == ["not200"]:
        assert all(r.status != 200 for r in responses), f"{name} ({reason}): {got}"
        return
    required = [e for e in expects if not e.startswith("?")]
    assert len(required) <= len(responses) <= len(expects), f"{name} ({reason}): responses {got}"
    for r, expect in zip(responses, expects):
        check(r, expect.lstrip("?"), f"{name} ({reason})")


# Envoy with websocket upgrades enabled on the HCM (the harness has no option for it: the rendering is wrapped).
# A distinct plugin configuration keeps this Envoy apart from the PATHS one in the pool's cache.
UPGRADE_PATHS = copy.deepcopy(PATHS)
UPGRADE_PATHS["workload"]["labels"]["upgrade"] = "websocket"


@pytest.fixture
def upgrade_client(envoy, monkeypatch):
    original = envoy_config._hcm

    def hcm_with_upgrades(*args, **kwargs):
        hcm = original(*args, **kwargs)
        hcm["upgrade_configs"] = [{"upgrade_type": "websocket"}]
        return hcm

    monkeypatch.setattr(envoy_config, "_hcm", hcm_with_upgrades)
    return envoy(UPGRADE_PATHS)


UPGRADE_CASES = [
    ("upgrade-denied-path", b"GET /admin HTTP/1.1\r\n" + H + WS + b"\r\n", "deny:deny-admin",
     "an Upgrade request is authorized like any other"),
    ("upgrade-dot-dot", b"GET /public/../admin HTTP/1.1\r\n" + H + WS + b"\r\n", "deny:deny-admin", "normalized first"),
    ("upgrade-notPaths", b"GET /secret HTTP/1.1\r\n" + H + WS + b"\r\n", "deny:none", "ALLOW form"),
    ("upgrade-allowed-path", b"GET /x HTTP/1.1\r\n" + H + WS + b"\r\n", "allow",
     "control: allowed (the route is a direct_response, so no upgrade happens)"),
]


@pytest.mark.parametrize("name,data,expect,reason", UPGRADE_CASES, ids=[c[0] for c in UPGRADE_CASES])
def test_websocket_upgrade(upgrade_client, name, data, expect, reason):
    responses = raw_http(upgrade_client.plain_port, data)
    assert responses, f"{name}: no response"
    check(responses[0], expect, f"{name} ({reason})")


def test_websocket_upgrade_then_pipelined_request(upgrade_client):
    """After a denied upgrade, bytes on the same connection are never served as a request (CVE-2026-73548 shape)."""
    data = (b"GET /admin HTTP/1.1\r\n" + H + WS + b"\r\nGET /secret HTTP/1.1\r\n" + H + b"\r\n")
    responses = raw_http(upgrade_client.plain_port, data)
    assert responses and all(r.status != 200 for r in responses), [(r.status, r.header("x-meshguard-decision"))
                                                                    for r in responses]


def test_http2_upgrade_header_to_denied_path(envoy):
    """h2c prior knowledge with connection-specific headers is malformed in h2; the denied path is never served."""
    r = envoy(PATHS).request("GET", "/admin", http2=True)
    check(r, "deny:deny-admin", "h2 /admin")
