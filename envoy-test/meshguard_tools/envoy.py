"""Envoy processes for the benchmark: bootstrap rendering, start/ready/stop, /proc readings.

The server Envoy (the one measured, ``--concurrency 1``) is rendered by ``envoy-test/envoy_config.py``
(the same listeners the e2e tests use: a plaintext and an mTLS listener with client certificates
required, direct_response 200) and then given the filter chain of the case. The client-side Envoy is a
sidecar stand-in: a plaintext HTTP/1.1 listener for wrk whose only cluster originates mTLS to the
server with a SPIFFE client certificate (UpstreamTlsContext).
"""
from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import envoy_config  # noqa: E402  (envoy-test/envoy_config.py)

CLK_TCK = os.sysconf("SC_CLK_TCK")

# ---- ports and ids ----------------------------------------------------------------------------------

_base_ids = itertools.count((os.getpid() % 5000) * 100 + 1)


free_port = envoy_config.free_port  # never hands out a port twice in this run


def next_base_id() -> int:
    return next(_base_ids)


# ---- processes --------------------------------------------------------------------------------------

_live: list = []  # every process we started and have not reaped yet


def kill_all() -> None:
    """Stop every process this module started (by its own PID/process group only)."""
    for p in list(_live):
        _stop(p)


def _stop(p: subprocess.Popen, timeout: float = 5.0) -> None:
    if p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGTERM)  # its own session: start_new_session=True
        except (ProcessLookupError, PermissionError):
            pass
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            p.wait(timeout=timeout)
    if p in _live:
        _live.remove(p)


def spawn(argv: list, log_path: Path) -> subprocess.Popen:
    log = open(log_path, "ab")
    try:
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             start_new_session=True)
    finally:
        log.close()
    _live.append(p)
    return p


def stop(p: subprocess.Popen) -> None:
    _stop(p)


def cpu_ticks(pid: int) -> int:
    """utime + stime of the process (all threads), in clock ticks."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state); utime is field 14, stime field 15
    return int(fields[11]) + int(fields[12])


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Envoy:
    """One Envoy process: started from a bootstrap dict, ready-checked through its admin /ready."""

    def __init__(self, binary: str, name: str, bootstrap: dict, admin_port: int, workdir: Path,
                 concurrency: int = 1, ready_timeout: float = 180.0, extra_args: list | None = None):
        self.name = name
        self.admin_port = admin_port
        self.config_path = workdir / f"{name}.json"
        self.log_path = workdir / f"{name}.log"
        self.config_path.write_text(json.dumps(bootstrap, separators=(",", ":")), encoding="utf-8")
        self.log_path.write_bytes(b"")
        argv = [binary, "-c", str(self.config_path), "--concurrency", str(concurrency),
                "--disable-hot-restart", "--base-id", str(next_base_id()),
                "--log-level", "warn", "--component-log-level", "wasm:warn"] + list(extra_args or [])
        self.t0 = time.monotonic()
        self.proc = spawn(argv, self.log_path)
        self.ready_s = self._wait_ready(ready_timeout)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _wait_ready(self, timeout: float) -> float:
        url = f"http://127.0.0.1:{self.admin_port}/ready"
        deadline = self.t0 + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"envoy {self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(url, timeout=1) as r:
                    if r.status == 200:
                        return time.monotonic() - self.t0
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            time.sleep(0.005)
        raise RuntimeError(f"envoy {self.name} not ready after {timeout:.0f}s:\n{self.log_tail()}")

    def log_tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stats(self, prefix: str = "") -> dict:
        url = f"http://127.0.0.1:{self.admin_port}/stats?format=json&filter={prefix}"
        with urllib.request.urlopen(url, timeout=5) as r:
            data = json.load(r)
        return {s["name"]: s.get("value") for s in data.get("stats", []) if "name" in s}

    def stop(self) -> None:
        stop(self.proc)


def envoy_version(binary: str) -> str:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30).stdout
    return out.strip().split("version:", 1)[-1].strip()


# ---- bootstraps -------------------------------------------------------------------------------------


def server_bootstrap(*, filters: list | None, wasm_config: dict | None, wasm_path: str, cert_dir: str,
                     plain_port: int, mtls_port: int, admin_port: int) -> dict:
    """The measured Envoy: envoy_config.render() listeners, with `filters` (before the router) or meshguard."""
    if wasm_config is not None:
        cfg = envoy_config.render(wasm_config, wasm=True, wasm_path=wasm_path, cert_dir=cert_dir,
                                  plain_port=plain_port, mtls_port=mtls_port, admin_port=admin_port)
    else:
        cfg = envoy_config.render(None, wasm=False, cert_dir=cert_dir, plain_port=plain_port,
                                  mtls_port=mtls_port, admin_port=admin_port)
    for listener in cfg["static_resources"]["listeners"]:
        for chain in listener["filter_chains"]:
            for nf in chain["filters"]:
                hf = nf["typed_config"]["http_filters"]
                hf[:-1] = hf[:-1] + list(filters or [])  # before the router (last)
    return cfg


def client_bootstrap(*, listen_port: int, admin_port: int, server_port: int, cert_dir: str,
                     client_name: str) -> dict:
    """A sidecar stand-in: plaintext HTTP/1.1 in, mTLS with a SPIFFE client certificate out."""
    tls = {
        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
        "sni": "localhost",
        "common_tls_context": {
            "tls_certificates": [{
                "certificate_chain": {"filename": f"{cert_dir}/{client_name}.crt"},
                "private_key": {"filename": f"{cert_dir}/{client_name}.key"},
            }],
            "validation_context": {
                "trusted_ca": {"filename": f"{cert_dir}/ca.crt"},
                "match_typed_subject_alt_names": [{"san_type": "DNS", "matcher": {"exact": "localhost"}}],
            },
        },
    }
    hcm = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "outbound",
        "codec_type": "HTTP1",
        "route_config": {"name": "outbound", "virtual_hosts": [{
            "name": "server", "domains": ["*"],
            "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "server", "timeout": "30s"}}],
        }]},
        "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}],
    }
    return {
        "node": {"id": "bench-client", "cluster": "bench-client"},
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}},
        "static_resources": {
            "listeners": [{
                "name": "outbound",
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": listen_port}},
                "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                                                "typed_config": hcm}]}],
            }],
            "clusters": [{
                "name": "server",
                "type": "STATIC",
                "connect_timeout": "2s",
                "load_assignment": {"cluster_name": "server", "endpoints": [{"lb_endpoints": [{"endpoint": {
                    "address": {"socket_address": {"address": "127.0.0.1", "port_value": server_port}}}}]}]},
                "circuit_breakers": {"thresholds": [{"max_connections": 100000, "max_pending_requests": 100000,
                                                     "max_requests": 100000}]},
                "transport_socket": {"name": "envoy.transport_sockets.tls", "typed_config": tls},
            }],
        },
    }
