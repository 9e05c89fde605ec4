"""What Envoy does with each `failure_policy` when the module cannot load or its VM fails (real Envoy).

Three failures before any request: the .wasm file is missing, the file is not a Wasm module (garbage
bytes), meshguard refuses the configuration in on_configure. Each under FAIL_CLOSED, FAIL_RELOAD and
FAIL_OPEN (Istio WasmPlugin failStrategy FAIL_CLOSE / FAIL_RELOAD / FAIL_OPEN):

* static bootstrap: Envoy refuses to start, whatever the policy (the policy does not turn a load
  failure into "run without the filter");
* listener update (file-based LDS): the update is rejected (``listener_manager.lds.update_rejected``)
  and the old listener keeps deciding with the old policy, whatever the policy; a valid update after
  all of them still applies.

A VM that fails while serving is shown with a tiny test-only module (tests/e2e/trap_module/trap.rs,
compiled here with rustc; it is not meshguard and nothing of it is in src/): it answers ``/denied`` with
403 itself and executes ``unreachable`` (a trap) on ``/trap``. With one worker:
FAIL_CLOSED -> the trap and every later request get 503 (the worker's VM stays dead);
FAIL_RELOAD -> the trap gets 503, then a new VM serves and ``/denied`` is denied again;
FAIL_OPEN -> after the trap the filter is skipped: ``/denied`` gets 200, an authorization bypass.
"""
from __future__ import annotations

import http.client
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from meshguard_tools import envoy_config
from meshguard_tools.e2e.fixtures import E2E_DIR, WASM, free_port
from meshguard_tools.launcher import Envoy
from meshguard_tools.soak import scenario as S

POLICIES = ("FAIL_CLOSED", "FAIL_RELOAD", "FAIL_OPEN")
FAILURES = ("missing-wasm", "corrupt-wasm", "rejected-config")
TRAP_SOURCE = Path(__file__).resolve().parent / "trap_module" / "trap.rs"


# ---- helpers -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def work() -> Path:
    E2E_DIR.mkdir(parents=True, exist_ok=True)
    d = E2E_DIR / f"failure-policy-{os.getpid()}"
    d.mkdir(exist_ok=True)
    return d


@pytest.fixture(scope="module")
def corrupt_wasm(work) -> Path:
    """Garbage after a valid Wasm magic and version: V8 fails to parse it."""
    p = work / "corrupt.wasm"
    p.write_bytes(b"\x00asm\x01\x00\x00\x00" + bytes(range(256)) * 4)
    return p


def failing(failure: str, work: Path, corrupt: Path, gen: int = 1) -> tuple[str, object]:
    """(wasm path, plugin configuration) for a failure kind."""
    jwks = _tokens().jwks
    if failure == "missing-wasm":
        return str(work / "does-not-exist.wasm"), S.plugin_config(gen, jwks)
    if failure == "corrupt-wasm":
        return str(corrupt), S.plugin_config(gen, jwks)
    if failure == "rejected-config":
        return str(WASM), S.invalid_plugin_config(gen, jwks, "unknown-field")
    raise ValueError(failure)


_TOKENS = []


def _tokens() -> S.Tokens:
    if not _TOKENS:
        _TOKENS.append(S.Tokens())
    return _TOKENS[0]


def set_failure_policy(cfg: dict, policy: str) -> dict:
    for listener in cfg["static_resources"]["listeners"]:
        for chain in listener["filter_chains"]:
            for nf in chain["filters"]:
                for f in nf["typed_config"]["http_filters"]:
                    if f["name"] == "envoy.filters.http.wasm":
                        f["typed_config"]["config"]["failure_policy"] = policy
    return cfg


def start_envoy(binary: str, config: dict, workdir: Path, name: str, admin_port: int) -> Envoy:
    """An Envoy we start (--concurrency 1, wasm log at info, a 1 s immediate drain), not waited for."""
    return Envoy(binary, config, workdir, name, admin_port, component_log_level="wasm:info",
                 extra_args=["--drain-time-s", "1", "--drain-strategy", "immediate"])


def get(port: int, path: str, headers: dict | None = None) -> tuple[int, str, str]:
    """(status, x-meshguard-decision or "-", body) over a new connection."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request("GET", path, headers={"Host": "localhost", **(headers or {})})
        r = c.getresponse()
        body = r.read().decode("utf-8", "replace")
        return r.status, r.getheader("x-meshguard-decision") or "-", body
    finally:
        c.close()


# ---- 1. static bootstrap: Envoy does not start -----------------------------------------------------------

# What the log must say, per failure (Envoy 1.40 wording; meshguard's own line for the refused config).
START_LOG = {
    "missing-wasm": ["Invalid path: "],
    "corrupt-wasm": ["Failed to load Wasm code", "Plugin meshguard failed to load"],
    "rejected-config": ["meshguard: invalid configuration, rejected: ", "Failed to configure base Wasm plugin",
                        "Plugin meshguard failed to load"],
}


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("failure", FAILURES)
def test_static_bootstrap_refuses_to_start(envoy_binary, cert_dir, work, corrupt_wasm, failure, policy):
    wasm_path, pc = failing(failure, work, corrupt_wasm)
    plain, admin = free_port(), free_port()
    cfg = set_failure_policy(envoy_config.render(pc, wasm_path=wasm_path, cert_dir=str(cert_dir), plain_port=plain,
                                                 mtls_port=free_port(), admin_port=admin), policy)
    p = start_envoy(envoy_binary, cfg, work, f"static-{failure}-{policy}", admin)
    try:
        rc = p.wait_exit(30)
        assert rc is not None, f"{failure} / {policy}: Envoy is still running after 30 s (serving without the filter?)"
        assert rc != 0, p.log()[-3000:]
        log = p.log()
        for needle in START_LOG[failure]:
            assert needle in log, f"{failure} / {policy}: {needle!r} not in the log:\n{log[-3000:]}"
        with pytest.raises(OSError):  # nothing listens where the listener would have been
            get(plain, "/public/x")
    finally:
        p.stop()


# ---- 2. listener update: rejected, the old listener keeps its policy ---------------------------------------


@pytest.fixture(scope="module")
def lds_envoy(envoy_binary, cert_dir, work):
    """An Envoy whose plaintext listener comes from a watched file, serving generation 0 (FAIL_CLOSED)."""
    if not WASM.exists():
        pytest.fail(f"{WASM} does not exist: run `make build` first", pytrace=False)
    lds = S.LdsDir(work / "lds")
    plain, admin = free_port(), free_port()

    def listeners(pc, wasm_path=str(WASM), policy="FAIL_CLOSED"):
        return S.listeners(pc, wasm_path=wasm_path, cert_dir=str(cert_dir), plain_port=plain,
                           mtls_port=free_port(), failure_policy=policy)[:1]  # inbound_plain only

    lds.write(listeners(S.plugin_config(0, _tokens().jwks)))
    p = start_envoy(envoy_binary, S.server_bootstrap(lds, admin), work, "lds", admin)
    try:
        p.wait_ready()
        yield p, lds, listeners, plain
    finally:
        p.stop()


def lds_counters(p: Envoy) -> dict:
    return S.lds_counters(p.stats("listener_manager.lds"))


def wait_lds(p: Envoy, name: str, above: int, timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        c = lds_counters(p)
        if c[name] > above:
            return c
        time.sleep(0.02)
    raise AssertionError(f"listener_manager.lds.update_{name} did not rise above {above}: {lds_counters(p)}\n"
                         f"{p.log()[-3000:]}")


FLIP = S.KIND_BY_NAME["flip-a"]


def decided_by(port: int, gen: int) -> None:
    for kind in (S.KIND_BY_NAME["flip-a"], S.KIND_BY_NAME["flip-b"], S.KIND_BY_NAME["admin"]):
        status, decision, _ = get(port, kind.path, {S.KIND_HEADER: kind.name})
        assert (status, decision) == S.expected(kind.name, gen), f"{kind.name}: expected generation {gen}"


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("failure", FAILURES)
def test_listener_update_rejected_old_policy_serves(lds_envoy, work, corrupt_wasm, failure, policy):
    p, lds, listeners, plain = lds_envoy
    decided_by(plain, 0)
    before = lds_counters(p)
    wasm_path, pc = failing(failure, work, corrupt_wasm)
    lds.write(listeners(pc, wasm_path, policy))
    after = wait_lds(p, "rejected", before["rejected"])
    assert after["success"] == before["success"], f"{failure} / {policy}: the update was applied: {after}"
    assert "lds: listener 'inbound_plain' config rejected" in p.log()
    decided_by(plain, 0)  # generation 0 still decides: not "no filter", not a 5xx


def test_valid_update_after_rejected_ones_applies(lds_envoy):
    """After the rejected updates (the failed VMs stay cached in Envoy), a valid one still applies."""
    p, lds, listeners, plain = lds_envoy
    before = lds_counters(p)
    lds.write(listeners(S.plugin_config(1, _tokens().jwks), policy="FAIL_CLOSED"))
    wait_lds(p, "success", before["success"])
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and get(plain, FLIP.path)[:2] != S.expected(FLIP.name, 1):
        time.sleep(0.05)
    decided_by(plain, 1)


# ---- 3. a VM that traps while serving (test-only module) --------------------------------------------------


@pytest.fixture(scope="module")
def trap_wasm(work) -> Path:
    rustc = shutil.which("rustc")
    if not rustc:
        pytest.fail("rustc not found (needed to build the test-only trap module)", pytrace=False)
    out = work / "trap.wasm"
    p = subprocess.run([rustc, "--edition", "2021", "--target", "wasm32-wasip1", "--crate-type", "cdylib",
                        "-C", "opt-level=1", "-C", "panic=abort", "-o", str(out), str(TRAP_SOURCE)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return out


def start_trap_envoy(envoy_binary, cert_dir, work, trap_wasm, policy):
    plain, admin = free_port(), free_port()
    cfg = set_failure_policy(envoy_config.render("", wasm_path=str(trap_wasm), cert_dir=str(cert_dir), plain_port=plain,
                                                 mtls_port=free_port(), admin_port=admin), policy)
    p = start_envoy(envoy_binary, cfg, work, f"trap-{policy}", admin)
    p.wait_ready()
    return p, plain


def statuses_after_trap(envoy_binary, cert_dir, work, trap_wasm, policy) -> tuple[Envoy, int, int]:
    p, plain = start_trap_envoy(envoy_binary, cert_dir, work, trap_wasm, policy)
    assert get(plain, "/denied/x")[0] == 403, "the module denies /denied before it traps"
    assert get(plain, "/ok")[0] == 200
    trap_status = get(plain, "/trap")[0]
    return p, plain, trap_status


def test_trap_fail_closed_every_later_request_503(envoy_binary, cert_dir, work, trap_wasm):
    p, plain, trap_status = statuses_after_trap(envoy_binary, cert_dir, work, trap_wasm, "FAIL_CLOSED")
    try:
        assert trap_status == 503
        time.sleep(3)  # FAIL_RELOAD has a new VM after about 1 s; FAIL_CLOSED makes none
        for path in ("/denied/x", "/ok", "/denied/y"):
            assert get(plain, path)[0] == 503, f"{path} after the trap under FAIL_CLOSED\n{p.log()[-2000:]}"
        reloads = {k: v for k, v in p.stats("vm_reload").items() if v}
        assert not reloads, reloads
    finally:
        p.stop()


def test_trap_fail_reload_new_vm_denies_again(envoy_binary, cert_dir, work, trap_wasm):
    p, plain, trap_status = statuses_after_trap(envoy_binary, cert_dir, work, trap_wasm, "FAIL_RELOAD")
    try:
        assert trap_status == 503
        seen = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            seen.append(get(plain, "/denied/x")[0])
            if seen[-1] == 403:
                break
            time.sleep(0.1)
        assert seen[-1] == 403, f"no reload within 10 s: {seen}\n{p.log()[-2000:]}"
        assert 200 not in seen, f"a denied path was allowed while the VM was down: {seen}"
        assert get(plain, "/ok")[0] == 200
        assert (p.stats("wasm.meshguard.vm_reload_success").get("wasm.meshguard.vm_reload_success") or 0) >= 1
        # and it can fail and recover again
        assert get(plain, "/trap")[0] == 503
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and get(plain, "/denied/x")[0] != 403:
            time.sleep(0.1)
        assert get(plain, "/denied/x")[0] == 403
    finally:
        p.stop()


def test_trap_fail_open_skips_the_filter(envoy_binary, cert_dir, work, trap_wasm):
    """Why FAIL_OPEN must never be used for authorization: after one trap, denied requests pass."""
    p, plain, trap_status = statuses_after_trap(envoy_binary, cert_dir, work, trap_wasm, "FAIL_OPEN")
    try:
        assert trap_status == 503  # the request that trapped fails; the ones after it are not checked at all
        for _ in range(3):
            status, _, body = get(plain, "/denied/x")
            assert status == 200 and body == "ok\n", (trap_status, status, body)
    finally:
        p.stop()
