#!/usr/bin/env python3
"""Print the curl commands of a demo (envoy-test/demos/<demo>.examples.yaml) for `make run`.

Each example: say, identity (client cert name under the cert dir; absent = plaintext listener),
method (default GET), path, headers ([[name, value], ...]), expect (HTTP status).
tests/e2e/test_demos.py sends the same requests to Envoy and checks `expect`."""
from __future__ import annotations

import argparse
import shlex
import sys
import yaml

from meshguard_tools.paths import DEMO_DIR


def load_examples(demo: str) -> list[dict]:
    p = DEMO_DIR / f"{demo}.examples.yaml"
    if not p.exists():
        return []
    return yaml.safe_load(p.read_text(encoding="utf-8")) or []


def curl_command(ex: dict, plain_port: int, mtls_port: int, certs: str) -> str:
    args = ["curl", "-sS", "-w", r"\n%{http_code}\n"]
    method = ex.get("method", "GET")
    if method != "GET":
        args += ["-X", method]
    for k, v in ex.get("headers", []):
        args += ["-H", f"{k}: {v}"]
    ident = ex.get("identity")
    if ident:
        args += ["--cacert", f"{certs}/ca.crt", "--cert", f"{certs}/{ident}.crt", "--key", f"{certs}/{ident}.key"]
        args.append(f"https://localhost:{mtls_port}{ex['path']}")
    else:
        args.append(f"http://127.0.0.1:{plain_port}{ex['path']}")
    return " ".join(shlex.quote(a) for a in args)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--demo", default="bookinfo")
    ap.add_argument("--plain-port", type=int, default=10000)
    ap.add_argument("--mtls-port", type=int, default=10001)
    ap.add_argument("--admin-port", type=int, default=9901)
    ap.add_argument("--certs", default="target/certs")
    a = ap.parse_args(argv)
    examples = load_examples(a.demo)
    print(f"\n=== meshguard demo '{a.demo}' (policy: envoy-test/demos/{a.demo}.json) ===")
    print(f"plaintext listener 127.0.0.1:{a.plain_port}, mTLS listener 127.0.0.1:{a.mtls_port} "
          f"(client cert required), admin http://127.0.0.1:{a.admin_port}/")
    print("Paste these in another shell (from the repository root):\n")
    for ex in examples:
        print(f"# {ex['say']}   (expect {ex['expect']})")
        print(curl_command(ex, a.plain_port, a.mtls_port, a.certs) + "\n")
    print("Responses carry x-meshguard-decision when the demo sets decisionHeader; add -i to see it.\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
