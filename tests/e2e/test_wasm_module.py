"""The shipped module itself: what it imports and exports, and that the callbacks the post-link step of
`make build` removed (meshguard_tools/wasm_exports.py) leave Envoy doing what the SDK's defaults did.

The module under test is the one every other e2e test loads (``MESHGUARD_WASM`` or the release build, which
`make build` post-links): the exports check is on those bytes, and the Envoy tests run them."""
import json
from pathlib import Path

import pytest

from meshguard_tools import wasm_exports, wasm_imports
from meshguard_tools.wasm_imports import uleb128
from meshguard_tools.e2e.policies import assert_allowed, assert_denied, config, policy, rule, to
from meshguard_tools.paths import wasm_path

FORMAT = '"%REQ(:METHOD)% %REQ(:PATH)%" %RESPONSE_CODE% received=%BYTES_RECEIVED% sent=%BYTES_SENT% ' \
    "details=%RESPONSE_CODE_DETAILS%\n"


@pytest.fixture(scope="module")
def module_bytes() -> bytes:
    return Path(wasm_path()).read_bytes()


def test_shipped_module_imports_only_the_proxy_wasm_abi_and_wasi(module_bytes):
    modules = {module for module, _, _ in wasm_imports.imports(module_bytes)}
    assert modules <= set(wasm_imports.DEFAULT_ALLOWED), modules


def test_shipped_module_exports_exactly_the_callbacks_meshguard_implements(module_bytes):
    assert wasm_exports.check(module_bytes) == []
    names = {name for name, _ in wasm_exports.exports(module_bytes)}
    assert not names & set(wasm_exports.DROPPED)
    # the callbacks the filter needs: configuration, decision, decision header, JWKS fetch and schedule,
    # and the SDK freeing each request's context
    for needed in ("proxy_on_configure", "proxy_on_request_headers", "proxy_on_response_headers",
                   "proxy_on_http_call_response", "proxy_on_tick", "proxy_on_delete"):
        assert needed in names


def test_stripping_the_shipped_module_again_is_refused(module_bytes):
    # the dropped callbacks are gone: a second pass (or an SDK that renamed one) must not pass silently
    with pytest.raises(wasm_exports.MissingExport):
        wasm_exports.strip(module_bytes)


def _module(exports: list[tuple[str, int, int]], tail: bytes = b"") -> bytes:
    """A minimal module: a type, three functions, a memory, the given exports, then `tail` sections."""
    def section(sid: int, body: bytes) -> bytes:
        return bytes([sid]) + uleb128(len(body)) + body

    def name(s: str) -> bytes:
        return uleb128(len(s)) + s.encode()

    code = b"\x03" + b"\x02\x00\x0b" * 3
    export_body = uleb128(len(exports)) + b"".join(name(n) + bytes([k]) + uleb128(i)
                                                             for n, k, i in exports)
    return (b"\0asm\x01\0\0\0" + section(1, b"\x01\x60\x00\x00") + section(3, b"\x03\x00\x00\x00")
            + section(5, b"\x01\x00\x01") + section(7, export_body) + section(10, code) + tail)


def test_strip_removes_only_the_named_exports_and_keeps_every_other_byte():
    custom = bytes([0]) + uleb128(5) + b"\x01xabc"
    before = _module([("memory", 2, 0), ("proxy_on_log", 0, 0), ("proxy_on_tick", 0, 1), ("proxy_on_done", 0, 2)],
                     custom)
    after = wasm_exports.strip(before, ("proxy_on_log", "proxy_on_done"))
    assert wasm_exports.exports(after) == [("memory", "memory"), ("proxy_on_tick", "func")]
    assert after == _module([("memory", 2, 0), ("proxy_on_tick", 0, 1)], custom)
    with pytest.raises(wasm_exports.MissingExport):
        wasm_exports.strip(before, ("proxy_on_queue_ready",))


def test_check_names_every_difference():
    module = _module([("memory", 2, 0), ("proxy_on_log", 0, 0)])
    assert wasm_exports.check(module, (("memory", "memory"), ("proxy_on_tick", "func"))) == [
        "unexpected export proxy_on_log (func)",
        "missing export proxy_on_tick (func)",
    ]


POLICY = config(
    policy("deny-admin", {"action": "DENY", "rules": [rule(to_=[to(paths=["/admin"])])]}),
    policy("allow-all", {"action": "ALLOW", "rules": [{}]}),
)


@pytest.mark.parametrize("http2", [False, True])
def test_request_and_response_bodies_pass_without_the_body_callbacks(envoy, echo_server, http2):
    # proxy_on_request_body / proxy_on_response_body are not exported: Envoy passes the data on as the
    # SDK's default (Continue) did; a body this large crosses in many data frames each way
    c = envoy(POLICY, echo_port=echo_server.port, access_log=True, access_log_format=FORMAT)
    body = (b"meshguard-" * 30_000)
    path = f"/echo/upload-{'h2' if http2 else 'h1'}"  # the Envoy is shared: one log line per case
    r = c.request("POST", path, body=body, http2=http2)
    assert r.status == 200 and r.header("x-meshguard-decision").startswith("allow"), r
    assert json.loads(r.body)["body"] == body.decode(), "the upstream must get the whole body, and echo it back"
    line = c.access_log_line(f'"POST {path}"')
    assert f"received={len(body)}" in line and f"sent={len(r.body)}" in line, line


def test_denied_request_with_a_body_still_gets_the_403_and_its_details(envoy):
    c = envoy(POLICY, access_log=True, access_log_format=FORMAT)
    assert_denied(c.request("POST", "/admin", body=b"x" * 100_000))
    line = c.access_log_line('"POST /admin"')
    assert "details=rbac_access_denied_matched_policy[ns[default]-policy[deny-admin]-rule[0]]" in line, line

