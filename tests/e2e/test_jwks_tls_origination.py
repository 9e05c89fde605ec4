"""A remote ``jwksUri`` over HTTPS, reached the way ``meshguard convert`` declares it: the filter's plain-HTTP
``dispatch_http_call`` goes to Istio's default cluster ``outbound|<port>||<host>`` and that cluster originates
TLS (what the emitted ServiceEntry + DestinationRule ``tls: {mode: SIMPLE, sni: <host>}`` make istiod
generate). The JWKS server is a loopback HTTPS server (127.0.0.1 only) with a certificate for ``jwks.test``
made at test time; Envoy verifies it against that certificate and sends the SNI."""
from __future__ import annotations

import http.server
import os
import ssl
import subprocess
import threading
from pathlib import Path

import pytest
import yaml

from meshguard_tools.e2e.jwt_tokens import (
    assert_jwt_rejected, bearer, jwt_rule, keys, poll_response, realm_jwks, request_authentication, token,
)
from meshguard_tools.e2e.policies import OK_BODY, config

REPO = Path(__file__).resolve().parents[2]
HOST = "jwks.test"
WEB_API = {"app": "web-api", "test": "jwks-tls"}


@pytest.fixture(scope="module")
def https_jwks(tmp_path_factory):
    """``(port, certificate path, requests seen)`` of a loopback HTTPS server answering ``GET /certs``."""
    d = tmp_path_factory.mktemp("jwks-tls")
    key, crt = d / "jwks.key", d / "jwks.crt"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-days", "1", "-subj", f"/CN={HOST}", "-addext", f"subjectAltName=DNS:{HOST}",
         "-keyout", str(key), "-out", str(crt)],
        check=True, capture_output=True, timeout=60,
    )
    body = realm_jwks().encode()
    seen: list[tuple[str, str | None, str | None]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's spelling)
            seen.append((self.path, self.headers.get("host"), self.connection.server_hostname
                         if hasattr(self.connection, "server_hostname") else None))
            status, data = (200, body) if self.path == "/certs" else (404, b"not found\n")
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(crt), str(key))
    sni: list[str | None] = []
    ctx.sni_callback = lambda sock, name, _ctx: sni.append(name)
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1], crt, seen, sni
    httpd.shutdown()
    httpd.server_close()


def tls_cluster(name: str, port: int, ca: Path) -> dict:
    """A STATIC cluster to 127.0.0.1:<port> originating TLS with SNI jwks.test, verifying the server."""
    return {
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {
            "socket_address": {"address": "127.0.0.1", "port_value": port}}}}]}]},
        "transport_socket": {"name": "envoy.transport_sockets.tls", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
            "sni": HOST,
            "common_tls_context": {"validation_context": {
                "trusted_ca": {"filename": str(ca)},
                "match_typed_subject_alt_names": [{"san_type": "DNS", "matcher": {"exact": HOST}}],
            }},
        }},
    }


def meshguard_cli() -> str:
    env = os.environ.get("MESHGUARD_CLI")
    if env:
        return env
    p = subprocess.run(["cargo", "build", "--bin", "meshguard"], cwd=REPO, capture_output=True, text=True,
                       timeout=900)
    assert p.returncode == 0, p.stderr[-3000:]
    return str(REPO / "target" / "debug" / "meshguard")


def test_https_jwks_through_the_cluster_convert_declares(envoy, https_jwks, tmp_path):
    port, crt, seen, sni = https_jwks
    uri = f"https://{HOST}:{port}/certs"
    ra = request_authentication("keycloak", jwt_rule(jwks_uri=uri, audiences=["web-api"]), labels=WEB_API)
    cluster = f"outbound|{port}||{HOST}"

    # What convert emits for it: the host on that port, and TLS origination with the host as SNI.
    src = tmp_path / "ra.yaml"
    src.write_text(yaml.safe_dump(ra))
    p = subprocess.run([meshguard_cli(), "convert", str(src), "--namespace", "default"], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert f"through cluster {cluster}" in p.stdout
    docs = {d["kind"]: d for d in yaml.safe_load_all(p.stdout) if d}
    assert docs["ServiceEntry"]["spec"]["hosts"] == [HOST]
    assert docs["ServiceEntry"]["spec"]["ports"][0]["number"] == port
    tls = docs["DestinationRule"]["spec"]["trafficPolicy"]["portLevelSettings"][0]
    assert tls == {"port": {"number": port}, "tls": {"mode": "SIMPLE", "sni": HOST}}

    # The same in Envoy terms; the plugin configuration names no jwksClusters (Istio's default name).
    c = envoy(config(ra, labels=WEB_API), extra_clusters=[tls_cluster(cluster, port, crt)])
    ok, last, waited = poll_response(lambda: c.request("GET", "/", headers=[bearer(token())]),
                                     lambda r: (r.status, r.body) == (200, OK_BODY), timeout=10)
    assert ok, f"no streak of verified tokens within 10 s: {last!r}"
    assert_jwt_rejected(c.request("GET", "/", headers=[bearer(token(keys().impostor))]), "Jwt verification fails",
                        realm="http://localhost/")
    assert ("/certs", f"{HOST}:{port}") in [(path, host) for path, host, _ in seen], seen
    assert HOST in sni, sni
