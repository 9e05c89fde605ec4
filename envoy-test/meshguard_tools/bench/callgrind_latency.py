"""What `decisionLatencyHistogram` costs per request, in Envoy instructions: the server Envoy runs
under ``valgrind --tool=callgrind`` (instruction counts repeat whatever else the machine runs), loads
meshguard with one ALLOW rule, with the histogram off and on (same module), is warmed up, and then
answers N keep-alive plaintext requests with instrumentation switched on only for them
(``--instr-atstart=no``, ``callgrind_control -i on|off``, ``-d`` for a dump of their own). Prints the
instructions per request of each and the difference.

    PYTHONPATH=envoy-test python3 -m meshguard_tools.bench.callgrind_latency [--requests 300] \
        [--baseline-wasm OTHER.wasm]

Needs valgrind (callgrind_control) and the release module (make build)."""

from __future__ import annotations

import argparse
import http.client
import subprocess
import tempfile
import time
from pathlib import Path

from meshguard_tools import certs, envoy_config
from meshguard_tools.envoy_config import free_port
from meshguard_tools.launcher import Envoy
from meshguard_tools.paths import find_envoy, wasm_path

POLICY = {
    "apiVersion": "security.istio.io/v1",
    "kind": "AuthorizationPolicy",
    "metadata": {"name": "allow-get", "namespace": "default"},
    "spec": {"rules": [{"to": [{"operation": {"methods": ["GET"], "paths": ["/api/*"]}}]}]},
}


def measure(envoy: str, histogram: bool | None, requests: int, workdir: Path, wasm: Path,
            tag: str) -> float:
    """Instructions per request; ``histogram`` None leaves the setting out (a module without it)."""
    plain, admin = free_port(), free_port()
    config = {"workload": {"namespace": "default"}, "resources": [POLICY]}
    if histogram is not None:
        config["decisionLatencyHistogram"] = histogram
    bootstrap = envoy_config.render(config, wasm_path=str(wasm), plain_port=plain,
                                    mtls_port=free_port(), admin_port=admin, cert_dir=str(workdir))
    out = workdir / f"callgrind.{tag}.out"
    wrapper = workdir / "envoy-under-callgrind"
    wrapper.write_text(f"#!/bin/sh\nexec valgrind --tool=callgrind --instr-atstart=no --collect-jumps=no --dump-instr=no "
                       f"--callgrind-out-file={out} {envoy} \"$@\"\n")
    wrapper.chmod(0o755)
    e = Envoy(str(wrapper), bootstrap, workdir, f"server-{tag}", admin)
    try:
        e.wait_ready(timeout=600)
        conn = http.client.HTTPConnection("127.0.0.1", plain, timeout=60)

        def get() -> None:
            conn.request("GET", "/api/x", headers={"host": "svc"})
            r = conn.getresponse()
            r.read()
            assert r.status == 200, r.status

        for _ in range(50):
            get()
        subprocess.run(["callgrind_control", "-i", "on", str(e.pid)], check=True,
                       capture_output=True)
        for _ in range(requests):
            get()
        subprocess.run(["callgrind_control", "-i", "off", str(e.pid)], check=True,
                       capture_output=True)
        subprocess.run(["callgrind_control", "-d", str(e.pid)], check=True, capture_output=True)
        for _ in range(600):
            if list(workdir.glob(f"{out.name}.*")):
                break
            time.sleep(0.1)
        time.sleep(1)
    finally:
        e.proc.terminate()
        e.proc.wait(timeout=120)
    total = 0
    for f in workdir.glob(f"{out.name}.*"):
        for line in f.read_text(errors="replace").splitlines():
            if line.startswith("totals:"):
                total += int(line.split()[1])
                break
    if total == 0:
        raise SystemExit(f"callgrind counted nothing for {tag} ({workdir})")
    return total / requests


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=300)
    p.add_argument("--baseline-wasm", type=Path,
                   help="also measure this module (e.g. main's build) without the setting")
    args = p.parse_args(argv)
    envoy = find_envoy()
    if not envoy:
        raise SystemExit("no Envoy (make deps)")
    with tempfile.TemporaryDirectory(prefix="meshguard-callgrind-") as d:
        certs.make_certs(d)
        off = measure(envoy, False, args.requests, Path(d), wasm_path(), "off")
        on = measure(envoy, True, args.requests, Path(d), wasm_path(), "on")
        base = (measure(envoy, None, args.requests, Path(d), args.baseline_wasm, "baseline")
                if args.baseline_wasm else None)
    print(f"instructions per request: histogram off {off:,.0f}, on {on:,.0f}, "
          f"difference {on - off:,.0f} ({(on - off) / off:+.1%})")
    if base is not None:
        print(f"baseline module {args.baseline_wasm}: {base:,.0f} "
              f"(off minus baseline {off - base:+,.0f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
