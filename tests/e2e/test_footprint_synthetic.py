"""`make footprint`'s synthetic modules (meshguard_tools/bench/synthetic.py): a proxy-wasm module with
N KB of extra code in functions of S bytes, edited in place. The real Envoy must compile the result
with V8 (every added function, since V8 compiles the whole module at load) and the filter must still
work as before; the added functions must have the sizes asked for and be exported. The base here is
meshguard's own module, so the filter's decisions show that nothing of the original moved."""
from __future__ import annotations

import urllib.error
import urllib.request

from meshguard_tools import envoy_config, launcher
from meshguard_tools.bench import footprint, policies, synthetic
from meshguard_tools.e2e.fixtures import WASM
from meshguard_tools.wasm_imports import Reader


def status(port: int, path: str) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def body_sizes(data: bytes) -> list[int]:
    r = Reader(data, 8)
    while r.pos < r.end:
        sid, size = r.byte(), r.uleb()
        if sid == synthetic.CODE:
            sizes = []
            for _ in range(r.uleb()):
                n = r.uleb()
                sizes.append(n)
                r.pos += n
            return sizes
        r.pos += size
    return []


def synthetic_exports(data: bytes) -> list[tuple[int, str, int]]:
    r = Reader(data, 8)
    while r.pos < r.end:
        sid, size = r.byte(), r.uleb()
        if sid == 7:
            out = []
            for _ in range(r.uleb()):
                name = r.name()
                kind = r.byte()
                out.append((kind, name, r.uleb()))
            return out
        r.pos += size
    return []


def test_added_functions_have_the_asked_size_and_are_exported():
    base = WASM.read_bytes()
    out = synthetic.synthesize(base, 40 * 1024, 4000, seed=3)
    before, after = body_sizes(base), body_sizes(out)
    added = after[len(before):]
    assert after[:len(before)] == before
    assert len(added) == 10
    assert all(3900 <= n <= 4100 for n in added)
    exports = {name for _, name, _ in synthetic_exports(out)}
    assert {f"syn_{k}" for k in range(10)} <= exports
    assert synthetic.synthesize(base, 40 * 1024, 4000, seed=3) == out


def test_envoy_compiles_a_module_with_added_code_and_the_filter_still_decides(envoy_binary, cert_dir,
                                                                              tmp_path):
    module = tmp_path / "synthetic.wasm"
    module.write_bytes(synthetic.synthesize(WASM.read_bytes(), 60 * 1024, 12000, seed=1))
    assert footprint.largest_function(module) >= 11900
    admin, plain, mtls = envoy_config.free_port(), envoy_config.free_port(), envoy_config.free_port()
    plugin = policies.meshguard_config(policies.authorization_policies(3))
    cfg = envoy_config.server_bootstrap(filters=None, wasm_config=plugin, wasm_path=str(module),
                                        cert_dir=str(cert_dir), plain_port=plain, mtls_port=mtls,
                                        admin_port=admin)
    env = launcher.launch(envoy_binary, cfg, tmp_path, "synthetic", admin)
    try:
        # meshguard decides as with its own module: the DENY policy for /admin*, and no ALLOW rule
        # for a plaintext caller
        assert status(plain, "/admin/x") == 403
        assert status(plain, "/svc0/items/1") == 403
        regions = footprint.wasm_regions(env.pid)
        assert regions["linear_count"] >= 1
    finally:
        env.stop()
