"""Instruction counts per request (`make bench-instr`, or `bench.py --callgrind`): the bench's cases with the
server Envoy under ``valgrind --tool=callgrind``.

CPU time on a shared machine cannot split a few microseconds; instruction counts are the same whatever
else runs. For every case the server Envoy is started under callgrind with collection off
(``--instr-atstart=no``, so start-up, configuration load and V8's compilation are not counted), the mTLS
client Envoy in front of it runs natively, and one keep-alive connection sends each of the case's requests
once (status checked) and ``--instr-warmup`` requests as warm-up. Then, for each request stream
("allowed", "mix", ...): ``callgrind_control -i on``, ``--instr-requests`` requests, ``callgrind_control
-i off``, ``callgrind_control -d`` (a dump of its own). The dump's total, divided by the number of
requests, is the server Envoy's instructions per request: every thread, V8's compiled Wasm included
(valgrind translates JIT code like any other), timers that fire meanwhile too (a few hundred
instructions per request at the default count).
"""
from __future__ import annotations

import http.client
import os
import re
import shutil
import stat
import subprocess
import time
from pathlib import Path

from meshguard_tools import launcher
from meshguard_tools.bench import envoys

VALGRIND_ARGS = ["--tool=callgrind", "--instr-atstart=no", "--collect-jumps=no", "--dump-instr=no"]


def available() -> str | None:
    """Why the mode cannot run here (missing tool), or None."""
    for tool in ("valgrind", "callgrind_control"):
        if shutil.which(tool) is None:
            return f"{tool} not found (apt-get install valgrind; `make bench-instr` installs it)"
    return None


def _wrapper(work: Path, envoy: str, out_file: Path, tag: str) -> Path:
    """A script that execs the real Envoy under callgrind (same PID, so the launcher's PID is valgrind's)."""
    script = work / f"{tag}-valgrind-envoy.sh"
    args = " ".join(VALGRIND_ARGS + [f"--callgrind-out-file={out_file}"])
    script.write_text(f'#!/bin/sh\nexec valgrind {args} "{envoy}" "$@"\n', encoding="utf-8")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def _control(pid: int, *args: str) -> None:
    subprocess.run(["callgrind_control", *args, str(pid)], check=True, capture_output=True, timeout=300)


_TOTALS = re.compile(rb"^totals:\s+(\d+)", re.M)


def _dump_total(path: Path) -> int:
    m = _TOTALS.search(path.read_bytes())
    if not m:
        raise RuntimeError(f"no totals in {path}")
    return int(m.group(1))


def _new_dumps(out_file: Path, seen: set) -> list:
    return sorted((p for p in out_file.parent.glob(out_file.name + ".*") if p not in seen),
                  key=lambda p: p.stat().st_mtime)


class Sender:
    """Requests on one keep-alive HTTP/1.1 connection to the client Envoy (the server sees one pooled
    mTLS connection)."""

    def __init__(self, port: int):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def send(self, req: dict) -> int:
        headers = dict(req.get("headers", {}))
        self.conn.request(req["method"], req["path"], headers=headers)
        resp = self.conn.getresponse()
        resp.read()
        return resp.status

    def close(self) -> None:
        self.conn.close()


def run_case(case, a, work: Path, cert_dir: Path) -> dict:
    """One case under callgrind: ``{"instr": {run: instructions per request}, "problems": [...]}``."""
    tag = f"instr-{case.kind}-{case.size or 0}"
    out: dict = {"instr": {}, "problems": []}
    server = client = sender = None
    out_file = work / f"{tag}.callgrind.out"
    for old in work.glob(out_file.name + "*"):
        old.unlink()
    try:
        t0 = time.monotonic()
        server, s_mtls = envoys.launch_server(str(_wrapper(work, a.envoy, out_file, tag)), case, a.wasm, cert_dir,
                                              work, tag, ready_timeout=1800.0)
        out["ready_valgrind_s"] = time.monotonic() - t0
        client, c_listen = envoys.launch_client(a.envoy, case, cert_dir, s_mtls, work, tag)
        sender = Sender(c_listen)
        # Each stream's rotation goes on from the check through the warm-up to the counted requests, so a
        # pool larger than a token cache (the distinct-token JWT cases) misses it on every counted request.
        sent = {run_name: 0 for run_name in case.runs}

        def next_request(run_name: str) -> dict:
            reqs = case.runs[run_name]
            sent[run_name] += 1
            return reqs[(sent[run_name] - 1) % len(reqs)]

        for run_name, reqs in case.runs.items():
            for _ in reqs[:4]:
                req = next_request(run_name)
                got = sender.send(req)
                if got != req["expect"]:
                    out["problems"].append(f"{run_name} {req['method']} {req['path']}: got {got}, "
                                           f"expected {req['expect']}")
        for run_name in case.runs:
            for _ in range(a.instr_warmup):
                sender.send(next_request(run_name))
        seen = set(work.glob(out_file.name + ".*"))
        for run_name in case.runs:
            n = a.instr_requests
            wrong = 0
            _control(server.pid, "-i", "on")
            for _ in range(n):
                req = next_request(run_name)
                if sender.send(req) != req["expect"]:
                    wrong += 1
            _control(server.pid, "-i", "off")
            _control(server.pid, "-d")
            dumps = []
            for _ in range(600):
                dumps = _new_dumps(out_file, seen)
                if dumps:
                    break
                time.sleep(0.1)
            if not dumps:
                raise RuntimeError(f"callgrind wrote no dump for {run_name}")
            time.sleep(0.5)  # the dump is written by the tool; let it finish
            seen.update(dumps)
            out["instr"][run_name] = sum(_dump_total(p) for p in dumps) / n
            if wrong:
                out["problems"].append(f"{run_name}: {wrong}/{n} responses with an unexpected status")
    except Exception as e:  # noqa: BLE001 - record and go on with the other cases
        out["error"] = f"{type(e).__name__}: {e}"
        print(f"    !! {case.label}: {out['error'][:2000]}", flush=True)
    finally:
        if sender is not None:
            sender.close()
        for p in (client, server):
            if p is not None:
                launcher.stop(p.proc, timeout=60.0)
    if not os.environ.get("MESHGUARD_KEEP_CALLGRIND"):
        for p in work.glob(out_file.name + "*"):
            p.unlink()
    return out


# ---- report -----------------------------------------------------------------------------------------


def _fmt(v, spec="{:,.0f}"):
    return "-" if v is None else spec.format(v)


def _ratio(x, y):
    return None if x is None or not y else x / y


def report(cases: list, info: dict, a, elapsed: float) -> str:
    """Markdown: per request stream, instructions per request of no filter / native RBAC / meshguard and
    their ratios; then any other section's cases against that section's no-filter case."""
    def instr(case, run):
        return case.results[0].get("instr", {}).get(run) if case.results else None

    by = {(c.kind, c.size): c for c in cases}
    sizes = sorted({c.size for c in cases if c.section == "authz" and c.size})
    L = ["# meshguard benchmark: instructions per request (callgrind)\n"]
    L.append(f"- date: {info['date']}; Envoy {info['envoy_version']}; meshguard {info['wasm']} "
             f"({_fmt(info['wasm_bytes'])} bytes, sha256 {info.get('wasm_sha256', '?')[:12]}), V8 runtime; "
             f"valgrind {info.get('valgrind', '?')}")
    L.append(f"- the server Envoy (--concurrency 1, mTLS listener requiring client certificates, direct_response "
             f"200) runs under `valgrind {' '.join(VALGRIND_ARGS)}`; the mTLS client Envoy in front of it "
             f"natively; one keep-alive connection; {a.instr_warmup} warm-up requests per stream, then "
             f"{a.instr_requests} requests per stream counted (`callgrind_control -i on/off`, one dump each): "
             "every server thread, V8's compiled Wasm included, start-up excluded")
    L.append(f"- total time {elapsed / 60:.1f} min\n")
    none, empty = by.get(("none", None)), by.get(("meshguard-empty", None))
    runs = list(dict.fromkeys(r for c in cases if c.section == "authz" for r in c.runs))
    for run in runs:
        L.append(f"## Authorization, `{run}` requests: instructions per request\n")
        L.append("| rules | no filter | native RBAC | meshguard | meshguard / native | meshguard / no filter | "
                 "native / no filter | meshguard - no filter |")
        L.append("|---:|---:|---:|---:|---:|---:|---:|---:|")
        n0 = instr(none, run) if none else None
        if empty:
            e = instr(empty, run)
            L.append(f"| 0 (no policies) | {_fmt(n0)} | - | {_fmt(e)} | - | {_fmt(_ratio(e, n0), '{:.2f}')} | - | "
                     f"{_fmt(None if e is None or n0 is None else e - n0)} |")
        for n in sizes:
            m = instr(by[("meshguard", n)], run) if ("meshguard", n) in by else None
            nat = instr(by[("native", n)], run) if ("native", n) in by else None
            L.append(f"| {n:,} | {_fmt(n0)} | {_fmt(nat)} | {_fmt(m)} | {_fmt(_ratio(m, nat), '{:.2f}')} | "
                     f"{_fmt(_ratio(m, n0), '{:.2f}')} | {_fmt(_ratio(nat, n0), '{:.2f}')} | "
                     f"{_fmt(None if m is None or n0 is None else m - n0)} |")
        L.append("")
    variants = [c for c in cases if c.section == "authz" and c.kind.startswith("meshguard-") and c.size]
    if variants:
        L.append("## Optional per-request host calls: meshguard with one setting changed, instructions per request "
                 "(difference to the plain meshguard case)\n")
        L.append("| case | " + " | ".join(f"{r}" for r in runs) + " |")
        L.append("|---|" + "---:|" * len(runs))
        for c in variants:
            plain = by.get(("meshguard", c.size))
            cells = []
            for run in runs:
                v, p = instr(c, run), instr(plain, run) if plain else None
                cells.append(f"{_fmt(v)} ({'-' if v is None or p is None else f'{v - p:+,.0f}'})")
            L.append(f"| {c.label} | " + " | ".join(cells) + " |")
        L.append("")
    others = [c for c in cases if c.section != "authz"]
    for section in dict.fromkeys(c.section for c in others):
        members = [c for c in others if c.section == section]
        base = next((c for c in members if c.kind.endswith("none")), None)
        L.append(f"## {section}: instructions per request\n")
        L.append("| case | stream | instructions/request | vs no filter |")
        L.append("|---|---|---:|---:|")
        for c in members:
            for run in c.runs:
                v = instr(c, run)
                L.append(f"| {c.label} | {run} | {_fmt(v)} | "
                         f"{_fmt(_ratio(v, instr(base, run) if base else None), '{:.2f}')} |")
        L.append("")
    jwt = jwt_table(cases, instr)
    if jwt:
        L += jwt
    problems = [(c.label, p) for c in cases for r in c.results for p in
                r.get("problems", []) + ([r["error"]] if "error" in r else [])]
    if problems:
        L.append("## Problems (results of these cases are suspect)\n")
        L += [f"- {label}: {p}" for label, p in problems]
        L.append("")
    return "\n".join(L)


def jwt_table(cases: list, instr) -> list:
    """meshguard / native jwt_authn per JWT case pair (the same token, then 1000 distinct tokens per
    algorithm): instructions per request, and the same over the no-filter case (what each filter adds)."""
    by = {c.kind: c for c in cases if c.section == "jwt"}
    none = instr(by["jwt-none"], "jwt") if "jwt-none" in by else None
    pairs = [("same token (cache hit)", "jwt-mg-cached", "jwt-native-cached")]
    pairs += [(f"1000 distinct {kind.rsplit('-', 1)[1]} tokens (cache miss)", kind,
               kind.replace("-mg-", "-native-")) for kind in by if kind.startswith("jwt-mg-distinct-")]
    rows = []
    for title, mg, nat in pairs:
        if mg not in by or nat not in by:
            continue
        m, n = instr(by[mg], "jwt"), instr(by[nat], "jwt")
        dm = None if m is None or none is None else m - none
        dn = None if n is None or none is None else n - none
        rows.append(f"| {title} | {_fmt(n)} | {_fmt(m)} | {_fmt(_ratio(m, n), '{:.2f}')} | {_fmt(dn)} | "
                    f"{_fmt(dm)} | {_fmt(_ratio(dm, dn), '{:.2f}')} |")
    if not rows:
        return []
    return ["## JWT: meshguard / native jwt_authn, instructions per request\n",
            "| tokens | native | meshguard | meshguard / native | added over no filter: native | meshguard | "
            "ratio |",
            "|---|---:|---:|---:|---:|---:|---:|", *rows, ""]


def valgrind_version() -> str:
    try:
        return subprocess.run(["valgrind", "--version"], capture_output=True, text=True,
                              timeout=30).stdout.strip()
    except OSError:
        return "?"
