"""The one Envoy launcher: start a real Envoy from a bootstrap, wait for ``/ready``, read its admin and
/proc, stop it. Used by the e2e fixtures, the failure-policy and reload tests, bench, soak and difftest.

Every process started here runs in its own session and is remembered until reaped, so ``kill_all()``
(registered with atexit by the drivers) stops exactly the processes this run started, by their process
group, never by name. ``spawn``/``stop`` serve the other processes the drivers start (wrk).
"""
from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from meshguard_tools.paths import REPO

CLK_TCK = os.sysconf("SC_CLK_TCK")

_base_ids = itertools.count((os.getpid() % 5000) * 100 + 1)

_live: list = []  # every process we started and have not reaped yet


class EnvoyStartError(RuntimeError):
    """Envoy exited or did not get ready; the message ends with its log tail."""


def next_base_id() -> int:
    return next(_base_ids)


def kill_all() -> None:
    """Stop every process this module started (by its own PID/process group only)."""
    for p in list(_live):
        stop(p)


def spawn(argv: list, log_path: Path, cwd: Path | None = None) -> subprocess.Popen:
    """Start ``argv`` in its own session, stdout and stderr appended to ``log_path``."""
    with open(log_path, "ab") as log:
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             cwd=str(cwd) if cwd else None, start_new_session=True)
    _live.append(p)
    return p


def stop(p: subprocess.Popen, timeout: float = 5.0) -> None:
    """SIGTERM to the process group, SIGKILL after ``timeout``; forget the process."""
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


def envoy_version(binary: str) -> str:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30).stdout
    return out.strip().split("version:", 1)[-1].strip()


class Envoy:
    """One Envoy process started from a bootstrap (a dict, written to ``<workdir>/<name>.json``, or an
    existing file). Its stdout/stderr go to ``<workdir>/<name>.log``; with ``log_path`` Envoy writes its own
    log there instead (``--log-path``, flushed every 20 ms). The constructor only starts the process:
    ``wait_ready()`` (or :func:`launch`) waits for the admin ``/ready``, ``wait_exit()`` for a refusal."""

    def __init__(self, binary: str, config: dict | Path, workdir: Path, name: str, admin_port: int, *,
                 concurrency: int = 1, component_log_level: str = "wasm:warn", log_path: Path | None = None,
                 extra_args: list | tuple = ()):
        self.binary, self.workdir, self.name, self.admin_port = binary, Path(workdir), name, admin_port
        if isinstance(config, dict):
            self.config_path = self.workdir / f"{name}.json"
            self.config_path.write_text(json.dumps(config, separators=(",", ":")), encoding="utf-8")
        else:
            self.config_path = Path(config)
        self.out_path = self.workdir / f"{name}.log"
        self.log_path = log_path or self.out_path
        self.out_path.write_bytes(b"")
        argv = [binary, "-c", str(self.config_path), "--concurrency", str(concurrency),
                "--disable-hot-restart", "--base-id", str(next_base_id()),
                "--log-level", "warn", "--component-log-level", component_log_level]
        if log_path:
            argv += ["--log-path", str(log_path), "--file-flush-interval-msec", "20"]
        self.t0 = time.monotonic()
        self.ready_s: float | None = None
        self.proc = spawn(argv + list(extra_args), self.out_path, cwd=REPO)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self, timeout: float = 30.0) -> float:
        """Seconds from start until ``/ready`` answered 200 (also kept as ``ready_s``); raises
        EnvoyStartError when Envoy exits or is not ready within ``timeout`` of now."""
        url = f"http://127.0.0.1:{self.admin_port}/ready"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise EnvoyStartError(f"envoy {self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(url, timeout=1) as r:
                    if r.status == 200:
                        self.ready_s = time.monotonic() - self.t0
                        return self.ready_s
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            time.sleep(0.01)
        raise EnvoyStartError(f"envoy {self.name} not ready after {timeout:.0f}s:\n{self.log_tail()}")

    def wait_exit(self, timeout: float = 30.0) -> int | None:
        """The exit status, or None when Envoy still runs after ``timeout``."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def log(self) -> str:
        """Everything Envoy wrote (stdout/stderr, then its ``--log-path`` file)."""
        text = ""
        for p in dict.fromkeys((self.out_path, self.log_path)):
            if p.exists():
                text += p.read_text("utf-8", "replace")
        return text

    def log_tail(self, n: int = 60) -> str:
        tail = "\n".join(self.log().splitlines()[-n:])
        return f"--- Envoy {self.name} log tail ({self.workdir}) ---\n{tail}"

    def admin(self, path: str) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}{path}", timeout=5) as r:
            return r.read().decode("utf-8", "replace")

    def stats(self, prefix: str = "") -> dict:
        """``/stats?format=json&filter=<prefix>`` as ``{name: value}``."""
        data = json.loads(self.admin(f"/stats?format=json&filter={prefix}"))
        return {s["name"]: s.get("value") for s in data.get("stats", []) if "name" in s}

    def stop(self) -> None:
        stop(self.proc)


def launch(binary: str, config: dict | Path, workdir: Path, name: str, admin_port: int, *,
           ready_timeout: float = 180.0, **options) -> Envoy:
    """Start an Envoy (``Envoy(...)`` options) and wait until it is ready; stops it when it is not."""
    env = Envoy(binary, config, workdir, name, admin_port, **options)
    try:
        env.wait_ready(ready_timeout)
    except BaseException:
        env.stop()
        raise
    return env
