"""The e2e HTTP client: one request to an Envoy listener, sent byte for byte (HTTP/1.1 over ``http.client``)
or through curl (h2, gRPC); the response as a small value; the access log and admin of that Envoy."""
from __future__ import annotations

import http.client
import ssl
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from meshguard_tools.launcher import Envoy


def last_log_line(path: Path, contains: str, timeout: float = 5.0) -> str:
    """The last line of the log file ``path`` containing ``contains`` (waits for it): for access logs
    of Envoys the tests start themselves, next to :meth:`Client.access_log_line`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            hits = [l for l in path.read_text("utf-8", "replace").splitlines() if contains in l]
            if hits:
                return hits[-1]
        time.sleep(0.05)
    raise AssertionError(f"no line with {contains!r} in {path}")


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
    envoy: Envoy
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

