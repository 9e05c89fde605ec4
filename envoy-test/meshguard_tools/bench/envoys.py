"""The two Envoys of a bench case, started the same way by the wall-clock bench (`bench.py`) and the
instruction-count mode (`callgrind.py`): the measured server Envoy (--concurrency 1, the case's
filters on a plaintext and an mTLS listener) and the client-side Envoy in front of it that
originates mTLS with the case's SPIFFE client certificate, as a caller's sidecar would.
"""
from __future__ import annotations

from pathlib import Path

from meshguard_tools import envoy_config, launcher


def launch_server(binary: str, case, wasm: Path, cert_dir: Path, work: Path, tag: str, **launch_args):
    """The server Envoy for ``case`` (``binary`` may be a wrapper such as valgrind's); returns the
    process and its mTLS port."""
    admin, plain, mtls = envoy_config.free_port(), envoy_config.free_port(), envoy_config.free_port()
    server = launcher.launch(
        binary,
        envoy_config.server_bootstrap(filters=case.filters, wasm_config=case.wasm_config, wasm_path=str(wasm),
                                      cert_dir=str(cert_dir), plain_port=plain, mtls_port=mtls, admin_port=admin),
        work, f"{tag}-server", admin, concurrency=1, **launch_args)
    return server, mtls


def launch_client(binary: str, case, cert_dir: Path, server_port: int, work: Path, tag: str):
    """The mTLS-originating client Envoy in front of ``server_port``; returns the process and the
    plaintext port it listens on."""
    admin, listen = envoy_config.free_port(), envoy_config.free_port()
    client = launcher.launch(
        binary,
        envoy_config.client_bootstrap(listen_port=listen, admin_port=admin, server_port=server_port,
                                      cert_dir=str(cert_dir), client_name=case.client_cert),
        work, f"{tag}-client", admin, concurrency=1)
    return client, listen
