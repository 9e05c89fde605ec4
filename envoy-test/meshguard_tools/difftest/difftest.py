#!/usr/bin/env python3
"""Differential test: meshguard against Envoy's native RBAC filter, same policies, same requests.

For each generated policy set (``generate.py``) one Envoy serves two listeners on 127.0.0.1 with the same
HCM settings (Istio sidecar inbound: path normalization mode of the set, ``set_filter_state`` of the
direct peer as the README asks for behind X-Forwarded-For) and the same ``direct_response`` 200 route:

* ``mg_<i>``: the meshguard Wasm filter with the policies verbatim as its plugin configuration;
* ``rbac_<i>``: the RBAC filters istiod would generate for the policies (``meshguard_tools/istio_rbac.py``).

Both listeners take plaintext and TLS on one port (``tls_inspector``; the TLS chain asks for an
*optional* client certificate from the test CA). Every request goes to both listeners over a new
connection with the same properties (plaintext or TLS, client certificate, SNI, source address
127.0.0.x; HTTP/1.1 written byte for byte, some followed by more requests on the same connection, or
HTTP/2 with curl) and must get the same status (200 allow, 403 deny, or the same Envoy error such as
400). Many policy sets share one Envoy (``--batch``).

The seed decides everything (one RNG, sets generated in order, so set i is the same whatever
``--batch`` or ``--only``). A mismatch prints the seed, the set, its policies, the native RBAC filters,
the request and both answers; the first one is then shrunk (fewest policies, rules, fields, values and
headers that keep the same mismatch) and printed again. ``--only INDEX`` reruns one set.

    python -m meshguard_tools.difftest.difftest --policies 300 --requests 100 --seed 7
        (make difftest DIFF_POLICIES=... DIFF_SEED=...)
"""
from __future__ import annotations

import argparse
import concurrent.futures
import json
import random
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from meshguard_tools import envoy_config, istio_rbac, launcher, paths
from meshguard_tools.difftest import generate

DECISION = "x-meshguard-decision"
NORMALIZATIONS = ["BASE", "BASE", "BASE", "NONE", "MERGE_SLASHES", "DECODE_AND_MERGE_SLASHES"]


@dataclass
class PolicySet:
    index: int
    resources: list
    requests: list
    normalization: str
    trust_domain: str = "cluster.local"
    aliases: list = field(default_factory=list)
    mg_port: int = 0
    rbac_port: int = 0

    def mg_config(self) -> dict:
        return generate.meshguard_config(generate.bind_port(self.resources, self.mg_port), self.trust_domain,
                                         self.aliases)

    def rbac_filters(self, port: int | None = None) -> list:
        res = generate.bind_port(self.resources, port or self.rbac_port)
        return istio_rbac.istio_rbac_filters(res, generate.NAMESPACE, generate.LABELS, generate.ROOT_NAMESPACE,
                                             self.trust_domain, self.aliases)


@dataclass
class Mismatch:
    seed: int
    pset: PolicySet
    request: dict
    meshguard: str
    native: str
    requests: int  # per set in the campaign (for the rerun command)

    def report(self) -> str:
        p = self.pset
        return "\n".join([
            f"MISMATCH seed={self.seed} set={p.index} normalization={p.normalization} "
            f"trustDomain={p.trust_domain} aliases={p.aliases}: "
            f"meshguard {self.meshguard}, native RBAC {self.native}",
            f"  request: {json.dumps(self.request)}",
            "  policies (PORT = the listener's port):",
            *[_indent(json.dumps(res)) for res in p.resources],
            "  native RBAC filters (PORT = 10000):",
            *[_indent(json.dumps(f["typed_config"])) for f in p.rbac_filters(10000)],
            f"  rerun (the whole set): .venv/bin/python -m meshguard_tools.difftest.difftest --seed {self.seed} --policies {p.index + 1} "
            f"--requests {self.requests} --only {p.index}",
        ])


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


@dataclass
class Result:
    policies: int = 0
    compared: int = 0
    outcomes: dict = field(default_factory=dict)  # "200" / "403" / "400" ... (both sides agreed)
    mismatches: list = field(default_factory=list)
    h2: int = 0  # of them over HTTP/2
    kept_alive: int = 0  # of them followed by more requests on the same connection
    minimal: Mismatch | None = None  # the first mismatch, shrunk
    samples: dict = field(default_factory=dict)  # outcome -> a few requests that got it (--verbose)
    seconds: float = 0.0

    def summary(self) -> str:
        per = ", ".join(f"{k}: {v}" for k, v in sorted(self.outcomes.items()))
        return (f"difftest: {self.policies} policies x {self.compared // max(self.policies, 1)} requests = "
                f"{self.compared} requests compared, {len(self.mismatches)} mismatches, {self.seconds:.1f} s "
                f"({self.h2} over HTTP/2, {self.kept_alive} followed by more on the same connection; "
                f"statuses of all {sum(self.outcomes.values())} responses per side: {per})")


# ---- generation -----------------------------------------------------------------------------------------


def generate_sets(seed: int, policies: int, requests: int) -> list:
    """The policy sets of the campaign ``seed``, each with its requests and HCM / trust settings."""
    rng = random.Random(seed)
    sets = []
    for i in range(policies):
        resources = generate.policy_set(rng, i)
        reqs = generate.requests_for(rng, resources, requests)
        sets.append(PolicySet(i, resources, reqs, rng.choice(NORMALIZATIONS), *rng.choice(generate.TRUST)))
    return sets


# ---- Envoy ----------------------------------------------------------------------------------------------

_used_ports: set = set()


def _port_range() -> tuple:
    """Ports below the ephemeral range: client connections (thousands per run, from this and other
    processes) never hold them, so a port found free stays free until Envoy binds it."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    return max(1024, low - 12000), low


def listener_port() -> int:
    lo, hi = _port_range()
    rng = random.SystemRandom()
    for _ in range(1000):
        port = rng.randrange(lo, hi)
        if port in _used_ports:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _used_ports.add(port)
        return port
    raise RuntimeError("no free listener port")


TLS_INSPECTOR = {
    "name": "envoy.filters.listener.tls_inspector",
    "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"},
}


def _listener(name: str, port: int, hcm: dict, cert_dir: str) -> dict:
    filters = [{"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}]
    tls = envoy_config.downstream_tls_context(cert_dir, require_client_certificate=False)
    return {
        "name": name,
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
        "traffic_direction": "INBOUND",
        "listener_filters": [TLS_INSPECTOR],
        "filter_chains": [
            {"filter_chain_match": {"transport_protocol": "tls"}, "filters": filters,
             "transport_socket": {"name": "envoy.transport_sockets.tls", "typed_config": tls}},
            {"filter_chain_match": {"transport_protocol": "raw_buffer"}, "filters": filters},
        ],
    }


def bootstrap(sets: list, admin_port: int, wasm_path: str, cert_dir: str) -> dict:
    listeners = []
    for p in sets:
        common = dict(normalization=p.normalization, direct_peer_state=True)
        mg = envoy_config.http_connection_manager(f"mg_{p.index}", p.mg_config(), wasm=True, wasm_path=wasm_path, **common)
        rbac = envoy_config.http_connection_manager(f"rbac_{p.index}", wasm=False, **common)
        rbac["http_filters"][-1:-1] = p.rbac_filters()  # before the router
        listeners += [_listener(f"mg_{p.index}", p.mg_port, mg, cert_dir),
                      _listener(f"rbac_{p.index}", p.rbac_port, rbac, cert_dir)]
    return {
        "node": {"id": "sidecar~127.0.0.1~difftest.default~default.svc.cluster.local", "cluster": "difftest",
                 "metadata": {"NAMESPACE": generate.NAMESPACE, "LABELS": generate.LABELS}},
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}},
        "static_resources": {"listeners": listeners},
    }


# ---- client ---------------------------------------------------------------------------------------------


class Sender:
    """Raw HTTP/1.1 requests over a fresh connection with the request's connection properties."""

    def __init__(self, cert_dir: Path, timeout: float = 10.0):
        self.timeout, self.cert_dir = timeout, cert_dir
        self.contexts = {}
        for ident in [None] + list(generate.IDENTITIES):
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False  # the SNI varies; the server certificate is still verified
            ctx.load_verify_locations(cafile=str(cert_dir / "ca.crt"))
            if ident:
                ctx.load_cert_chain(str(cert_dir / f"{ident}.crt"), str(cert_dir / f"{ident}.key"))
            ctx.set_alpn_protocols(["http/1.1"])
            self.contexts[ident] = ctx

    def send(self, port: int, req: dict) -> str:
        """``"<status>"`` (with ``" (<decision header>)"`` when meshguard set one) or ``"error: ..."``; for a
        request with follow-ups on the same connection (``then``), one such part per message, ``"; "``-joined."""
        if req.get("h2"):
            return self.send_h2(port, req)
        messages = [req] + list(req.get("then", []))
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=self.timeout,
                                            source_address=(req["source"], 0))
        except OSError as e:
            return f"error: connect: {e}"
        outcomes: list = []
        try:
            if req["tls"]:
                sock = self.contexts[req["identity"]].wrap_socket(sock, server_hostname=req["sni"])
            buf = b""
            for i, msg in enumerate(messages):
                last = i == len(messages) - 1
                head = f"{msg['method']} {msg['path']} HTTP/1.1\r\n"
                head += "".join(f"{k}: {v}\r\n" for k, v in msg["headers"])
                head += ("Connection: close\r\n" if last else "") + "\r\n"
                sock.sendall(head.encode("utf-8", "surrogateescape"))  # RAW_E9 -> one raw byte
                buf = _recv_until(sock, buf, lambda b: b"\r\n\r\n" in b)
                if b"\r\n\r\n" not in buf:
                    outcomes.append("closed" if not buf else "error: incomplete response")
                    break
                head_bytes, buf = buf.split(b"\r\n\r\n", 1)
                lines = head_bytes.decode("latin-1").split("\r\n")
                outcomes.append(_parse_head(lines, head_bytes))
                fields = {l.split(":", 1)[0].strip().lower(): l.split(":", 1)[1].strip() for l in lines[1:] if ":" in l}
                if last or fields.get("connection", "").lower() == "close":
                    break
                length = 0 if msg["method"] == "HEAD" else int(fields.get("content-length", "0") or 0)
                buf = _recv_until(sock, buf, lambda b: len(b) >= length)[length:]
        except OSError as e:
            outcomes.append(f"error: {type(e).__name__}")
        finally:
            sock.close()
        outcomes += ["closed"] * (len(messages) - len(outcomes))
        return "; ".join(outcomes)

    def send_h2(self, port: int, req: dict) -> str:
        """The same over HTTP/2 with curl: h2 over TLS (ALPN), or h2c with prior knowledge."""
        args = ["curl", "-sS", "--path-as-is", "--max-time", str(self.timeout), "-o", "/dev/null", "-D", "-",
                "--interface", req["source"]]
        args += ["--head"] if req["method"] == "HEAD" else ["-X", req["method"]]
        if req["tls"]:
            host = req["sni"] or "127.0.0.1"  # curl sends no SNI for an IP address
            args += ["--http2", "-k", "--connect-to", f"{host}:{port}:127.0.0.1:{port}"]
            if req["identity"]:
                args += ["--cert", str(self.cert_dir / f"{req['identity']}.crt"),
                         "--key", str(self.cert_dir / f"{req['identity']}.key")]
            url = f"https://{host}:{port}{req['path']}"
        else:
            args += ["--http2-prior-knowledge"]
            url = f"http://127.0.0.1:{port}{req['path']}"
        for k, v in req["headers"]:
            args += ["-H", f"{k}: {v}" if v else f"{k};"]  # `Name;` sends an empty value
        p = subprocess.run(args + [url], capture_output=True, text=True, timeout=self.timeout + 5)
        lines = [l.rstrip("\r") for l in p.stdout.splitlines()]
        if not lines:
            return f"error: curl {p.returncode}"
        return _parse_head(lines, p.stdout)


def _recv_until(sock, buf: bytes, done) -> bytes:
    while not done(buf):
        chunk = sock.recv(65536)
        if not chunk:
            break
        buf += chunk
    return buf


def _parse_head(lines: list, data) -> str:
    """Status and decision header from a response head (status line first)."""
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        return "error: no response" if not data else f"error: bad status line {lines[0]!r}"
    decision = next((l.split(":", 1)[1].strip() for l in lines[1:] if l.lower().startswith(DECISION + ":")), None)
    return parts[1] + (f" ({decision})" if decision else "")


def _statuses(outcome: str) -> list:
    """The status of every message of an outcome (``error`` / ``closed`` kept as such)."""
    return [p.split(" ", 1)[0] if not p.startswith("error") else "error" for p in outcome.split("; ")]


def _status(outcome: str) -> str:
    return ",".join(_statuses(outcome))


# ---- comparing ----------------------------------------------------------------------------------------


@dataclass
class Runner:
    """Starts one Envoy for a list of policy sets and sends every set's requests to both of its listeners."""
    envoy_binary: str
    wasm_path: Path
    cert_dir: Path
    workdir: Path
    workers: int = 4
    log: object = print

    def compare(self, sets: list) -> list:
        """``[(set, request, meshguard outcome, native outcome)]`` in request order."""
        t0 = time.monotonic()
        for attempt in range(3):
            # another process may still bind a port found free before Envoy does: then new ports
            for p in sets:
                p.mg_port, p.rbac_port = listener_port(), listener_port()
            admin = listener_port()
            cfg = bootstrap(sets, admin, str(self.wasm_path), str(self.cert_dir))
            try:
                env = launcher.launch(self.envoy_binary, cfg, self.workdir, f"difftest-{sets[0].index}", admin,
                                      concurrency=2, ready_timeout=120)
                break
            except RuntimeError as e:
                if "Address already in use" not in str(e) or attempt == 2:
                    raise
                self.log("difftest: a listener port was taken meanwhile; new ports")
        self.log(f"difftest: Envoy with {len(sets)} listener pairs ready in {time.monotonic() - t0:.1f} s")
        sender = Sender(self.cert_dir)
        try:
            def one(job):
                p, r = job
                return p, r, sender.send(p.mg_port, r), sender.send(p.rbac_port, r)

            with concurrent.futures.ThreadPoolExecutor(self.workers) as pool:
                out = list(pool.map(one, [(p, r) for p in sets for r in p.requests]))
            if env.proc.poll() is not None:
                raise RuntimeError(f"Envoy exited during the batch:\n{env.log_tail()}")
            return out
        finally:
            env.stop()


def run_batch(runner: Runner, sets: list, seed: int, result: Result) -> None:
    for p, r, mg, native in runner.compare(sets):
        result.compared += 1
        a, b = _status(mg), _status(native)
        if r.get("h2"):
            result.h2 += 1
        if r.get("then"):
            result.kept_alive += 1
        if a == b:
            for st in _statuses(mg):
                result.outcomes[st] = result.outcomes.get(st, 0) + 1
            samples = result.samples.setdefault(a, [])
            if len(samples) < 5 or (r.get("h2") and len(samples) < 8):
                samples.append((mg, native, r))
        else:
            m = Mismatch(seed, p, r, mg, native, len(p.requests))
            result.mismatches.append(m)
            if len(result.mismatches) <= 3:
                runner.log(m.report())
    result.policies += len(sets)


# ---- shrinking ------------------------------------------------------------------------------------------

RULE_PARTS = ("from", "to", "when")


def _smaller(node, parent_key: str | None = None):
    """Every variant of ``node`` with one element or one optional key removed (still a valid policy)."""
    if isinstance(node, list):
        if len(node) > 1:
            for i in range(len(node)):
                yield node[:i] + node[i + 1:]
        for i, item in enumerate(node):
            for smaller in _smaller(item, parent_key):
                yield node[:i] + [smaller] + node[i + 1:]
        return
    if not isinstance(node, dict):
        return
    for k in list(node):
        if _removable(node, k, parent_key):
            yield {kk: v for kk, v in node.items() if kk != k}
    for k, v in node.items():
        if k in ("apiVersion", "kind", "name", "namespace", "key", "matchLabels"):
            continue
        for smaller in _smaller(v, k):
            yield {**node, k: smaller}


def _removable(node: dict, key: str, parent_key: str | None) -> bool:
    if parent_key in ("source", "operation"):
        return len(node) > 1
    if parent_key == "when" and key in ("values", "notValues"):
        return "values" in node and "notValues" in node
    if key in RULE_PARTS and parent_key == "rules":
        return True
    return key in ("annotations", "selector", "targetRefs")


def shrink(runner: Runner, m: Mismatch, rounds: int = 12) -> Mismatch:
    """Remove policies, rules, entries, fields and values while the same mismatch remains."""
    want = (_status(m.meshguard), _status(m.native))
    best, req = m, {k: v for k, v in m.request.items()}
    for _ in range(rounds):
        variants = list(_smaller(best.pset.resources))
        headers = [req["headers"][:i] + req["headers"][i + 1:] for i in range(1, len(req["headers"]))]
        sets = [PolicySet(i, v, [req], best.pset.normalization, best.pset.trust_domain, best.pset.aliases)
                for i, v in enumerate(variants)]
        sets += [PolicySet(len(sets) + i, best.pset.resources, [{**req, "headers": h}], best.pset.normalization,
                           best.pset.trust_domain, best.pset.aliases) for i, h in enumerate(headers)]
        if not sets:
            break
        still = [(len(json.dumps(p.resources)) + len(json.dumps(r)), p, r, mg, nat)
                 for p, r, mg, nat in runner.compare(sets) if (_status(mg), _status(nat)) == want]
        if not still:
            break
        _, p, req, mg, nat = min(still, key=lambda t: t[0])
        p.index = m.pset.index
        best = Mismatch(m.seed, p, req, mg, nat, m.requests)
    return best


# ---- campaign -------------------------------------------------------------------------------------------


def campaign(*, seed: int, policies: int, requests: int, envoy_binary: str, wasm_path: Path, cert_dir: Path,
             workdir: Path, batch: int = 60, only: int | None = None, workers: int = 4, verbose: bool = False,
             minimize: bool = True, log=print) -> Result:
    log(f"difftest: seed {seed}, {policies} policy sets x {requests} requests")
    sets = generate_sets(seed, policies, requests)
    if only is not None:
        sets = [s for s in sets if s.index == only]
    workdir.mkdir(parents=True, exist_ok=True)
    runner = Runner(envoy_binary, wasm_path, cert_dir, workdir, workers, log)
    result = Result()
    t0 = time.monotonic()
    try:
        for i in range(0, len(sets), batch):
            run_batch(runner, sets[i:i + batch], seed, result)
        result.seconds = time.monotonic() - t0
        if result.mismatches and minimize:
            log("difftest: shrinking the first mismatch")
            result.minimal = shrink(runner, result.mismatches[0])
            log("difftest: minimal reproducer\n" + result.minimal.report())
    finally:
        launcher.kill_all()
    log(result.summary())
    if verbose:
        for outcome, samples in sorted(result.samples.items()):
            for mg, native, r in samples:
                log(f"  {outcome}: meshguard {mg}, native {native}: {json.dumps(r)}")
    return result


def find_envoy() -> str:
    found = paths.find_envoy()
    if not found:
        sys.exit("difftest: no Envoy binary (make deps, or ENVOY=...)")
    return found


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--policies", type=int, default=200, help="policy sets (default 200)")
    ap.add_argument("--requests", type=int, default=100, help="requests per policy set (default 100)")
    ap.add_argument("--seed", type=int, default=None, help="default: random (printed)")
    ap.add_argument("--batch", type=int, default=60, help="policy sets per Envoy (default 60)")
    ap.add_argument("--only", type=int, default=None, help="run only this policy set index")
    ap.add_argument("--workers", type=int, default=4, help="client threads (default 4)")
    ap.add_argument("--no-shrink", action="store_true", help="do not minimize the first mismatch")
    ap.add_argument("-v", "--verbose", action="store_true", help="print a few requests of every outcome")
    ap.add_argument("--envoy", default=None)
    ap.add_argument("--wasm", default=str(paths.DEFAULT_WASM))
    ap.add_argument("--certs", default=str(paths.CERT_DIR))
    ap.add_argument("--workdir", default=str(paths.TARGET / "difftest"))
    a = ap.parse_args(argv)
    seed = a.seed if a.seed is not None else random.SystemRandom().randrange(1 << 31)
    res = campaign(seed=seed, policies=a.policies, requests=a.requests, envoy_binary=a.envoy or find_envoy(),
                   wasm_path=Path(a.wasm), cert_dir=Path(a.certs), workdir=Path(a.workdir), batch=a.batch,
                   only=a.only, workers=a.workers, verbose=a.verbose,
                   minimize=not a.no_shrink)
    if res.mismatches:
        print(f"difftest: {len(res.mismatches)} mismatches (seed {seed}); the first ones are printed above",
              file=sys.stderr)
        for m in res.mismatches[3:20]:
            print(f"  set {m.pset.index}: meshguard {m.meshguard}, native {m.native}: {json.dumps(m.request)}",
                  file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
