"""Loopback HTTP servers a test routes to: an echo upstream and a table of documents (a remote JWKS)."""
from __future__ import annotations

import http.server
import json
import threading


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
