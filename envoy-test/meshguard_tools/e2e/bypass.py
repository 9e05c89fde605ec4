"""Shared pieces of the bypass suite (tests/e2e/test_bypass_*.py): expected outcomes, raw HTTP/1 over a socket,
and extra client certificates signed by the test CA.

Every case names what it expects:

* ``"allow"``: 200 from the route (meshguard allowed it),
* ``"deny:<policy>"`` / ``"deny:<policy>#<i>"``: 403 decided by that policy's rule 0 / rule i
  (``x-meshguard-decision: deny ns[default]-policy[<policy>]-rule[<i>]``),
* ``"deny:none"``: 403 because an ALLOW policy exists and no ALLOW rule matched,
* ``"deny"``: 403 from meshguard, any rule,
* ``"400"``/``"426"``...: a status Envoy answers itself before any HTTP filter runs (no decision header),
* ``"not200"``: anything but 200 (the request never reaches the route).
"""
from __future__ import annotations

import dataclasses
import shutil
import socket
from pathlib import Path

import pytest

from meshguard_tools import certs
from meshguard_tools.e2e.client import Client, Response
from meshguard_tools.e2e.fixtures import IDENTITIES
from meshguard_tools.paths import TARGET

DECISION = "x-meshguard-decision"


def check(resp: Response, expect: str, what: str = "") -> None:
    decision = resp.header(DECISION)
    msg = f"{what}: expected {expect}, got {resp.status} decision={decision!r} body={resp.body[:120]!r}"
    if expect == "allow":
        assert resp.status == 200, msg
        assert decision is None or decision.startswith("allow "), msg
    elif expect == "deny":
        assert resp.status == 403 and (decision or "").startswith("deny "), msg
    elif expect == "deny:none":
        assert (resp.status, decision) == (403, "deny none"), msg
    elif expect.startswith("deny:"):
        policy, _, index = expect.split(":", 1)[1].partition("#")
        want = f"deny ns[default]-policy[{policy}]-rule[{index or 0}]"
        assert (resp.status, decision) == (403, want), msg
    elif expect == "not200":
        assert resp.status != 200, msg
    else:
        assert resp.status == int(expect), msg
        assert decision is None, f"{msg} (Envoy should answer before meshguard runs)"


# --------------------------------------------------------------------------------------------------
# raw HTTP/1 on one connection (pipelining, smuggling attempts, HTTP/1.0, absolute-form targets)


def raw_http(port: int, data: bytes, timeout: float = 3.0) -> list[Response]:
    """Send ``data`` as is and parse every HTTP/1 response that comes back until the peer closes or goes quiet."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    buf = b""
    try:
        s.sendall(data)
        responses = []
        while True:
            parsed = _parse_responses(buf)
            # stop early once we have all responses we can expect (one per request line sent)
            if parsed and len(parsed) >= data.count(b" HTTP/1."):
                return parsed
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                return parsed
            if not chunk:
                return _parse_responses(buf)
            buf += chunk
        return responses
    finally:
        s.close()


def _parse_responses(buf: bytes) -> list[Response]:
    out = []
    while buf:
        head, sep, rest = buf.partition(b"\r\n\r\n")
        if not sep:
            break
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = []
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers.append((k.strip().lower(), v.strip()))
        n = int(next((v for k, v in headers if k == "content-length"), "0"))
        if len(rest) < n:
            break
        out.append(Response(status, headers, rest[:n]))
        buf = rest[n:]
    return out


# --------------------------------------------------------------------------------------------------
# extra client certificates (same test CA as target/certs, so the mTLS listener accepts them)

BYPASS_CERT_DIR = TARGET / "bypass-certs"
EXTRA_IDENTITIES = {
    # Istio's namespace regex `.*/ns/<ns>/.*` finds `/ns/foo/` anywhere in the URI (known-bypasses E4)
    "nested-ns": "spiffe://cluster.local/ns/evil/sa/x/ns/foo/y",
    # no segment after the namespace: `.*/ns/foo/.*` needs a `/` after it
    "ns-only": "spiffe://cluster.local/ns/foo",
    # characters a regex translation would treat as wildcards, next to the ones the policies name
    "dot-ns": "spiffe://cluster.local/ns/fxo/sa/bar",
    "dot-sa": "spiffe://cluster.local/ns/foo/sa/bxr",
    # two URI SANs: the filter sees only the first one (README, deliberate differences)
    "two-uris": "spiffe://cluster.local/ns/default/sa/productpage,URI:spiffe://cluster.local/ns/foo/sa/bar",
    # a URI that is not SPIFFE but contains the SPIFFE path
    "not-spiffe": "https://cluster.local/ns/foo/sa/bar",
}


@pytest.fixture(scope="session")
def bypass_cert_dir(cert_dir) -> Path:
    """target/bypass-certs: the test CA and client certificates of target/certs plus EXTRA_IDENTITIES."""
    BYPASS_CERT_DIR.mkdir(parents=True, exist_ok=True)
    for name in ("ca.crt", "ca.key", "server.crt", "server.key"):
        src = cert_dir / name
        dst = BYPASS_CERT_DIR / name
        if not dst.exists() or dst.read_bytes() != src.read_bytes():
            # a new CA invalidates every leaf made with the old one
            for leaf in BYPASS_CERT_DIR.glob("*.crt"):
                if leaf.name not in ("ca.crt", "server.crt"):
                    leaf.unlink()
            shutil.copyfile(src, dst)
    for name in IDENTITIES:  # the standard client certificates too, so one Client reaches every identity
        for ext in ("crt", "key"):
            shutil.copyfile(cert_dir / f"{name}.{ext}", BYPASS_CERT_DIR / f"{name}.{ext}")
    args = [f"{name}={uri}" for name, uri in EXTRA_IDENTITIES.items()]
    certs.make_certs(BYPASS_CERT_DIR, *args)
    for name in EXTRA_IDENTITIES:
        assert (BYPASS_CERT_DIR / f"{name}.crt").exists(), name
    return BYPASS_CERT_DIR


def with_certs(client: Client, cert_dir: Path) -> Client:
    """The same Envoy, with client certificates taken from ``cert_dir``."""
    return dataclasses.replace(client, cert_dir=cert_dir)
