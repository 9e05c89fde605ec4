#!/usr/bin/env python3
"""meshguard vs Envoy native RBAC / jwt_authn vs no filter, side by side in one run (`make bench`).

Topology (loopback only), as between two sidecars:

    wrk (plaintext HTTP/1.1) -> client-side Envoy (--concurrency 1; originates mTLS with a SPIFFE
    client certificate, UpstreamTlsContext) -> server Envoy (--concurrency 1; mTLS listener that
    requires client certificates; filter under test; direct_response 200)

Only the server Envoy is measured: requests/s and p50/p99 latency (wrk), server CPU per request
(utime+stime delta from /proc/<pid>/stat over the run / completed requests), VmRSS after warm-up,
time-to-ready (process start to admin /ready 200).

Authorization cases, per policy size N (rules): no filter; native Envoy RBAC as istiod translates
the AuthorizationPolicies (a DENY filter then an ALLOW filter, see policies.py); meshguard with the
same AuthorizationPolicies as plugin configuration. The caller is the identity of the last rule.
Two request streams per case: "allowed" (matches the last ALLOW rule: worst case for a linear scan)
and "mix" (half denied: DENY /admin, and a request no ALLOW rule matches).

JWT cases: no filter; meshguard RequestAuthentication + ALLOW requestPrincipals ["*"] with the same
RS256 token every request (cache hit) and with jwtCacheSize 0; native jwt_authn + RBAC with the same
token; then per algorithm (--jwt-algs, default RS256 and ES256) 1000 distinct tokens, ten times both
token caches, so every request is a cache miss: meshguard against native jwt_authn.

Every round runs every case once, in a shuffled order (seeded); the tables show medians over
rounds. Each case first sends each request once and checks the expected status (200/403), and the
wrk runs check the share of non-2xx responses, so a non-equivalent configuration cannot go unnoticed.
"""
from __future__ import annotations

import argparse
import atexit
import datetime
import hashlib
import json
import os
import platform
import random
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from meshguard_tools import certs, launcher
from meshguard_tools.bench import envoys, policies, wrkrun
from meshguard_tools.paths import DEFAULT_WASM, TARGET


@dataclass
class Case:
    section: str  # "authz" | "jwt"
    kind: str  # none | native | meshguard | jwt-...
    label: str
    size: int | None
    client_cert: str
    runs: dict  # run name -> list of request specs (each with "expect")
    filters: list | None = None
    wasm_config: dict | None = None
    results: list = field(default_factory=list)  # one dict per round


def machine_info(envoy_bin: str, wasm: Path) -> dict:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        nproc = subprocess.run(["nproc"], capture_output=True, text=True, timeout=10).stdout.strip()
    except OSError:
        nproc = str(os.cpu_count())
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": nproc,
        "cpu_model": model,
        "kernel": platform.release(),
        "loadavg_start": os.getloadavg()[0],
        "envoy_version": launcher.envoy_version(envoy_bin),
        "envoy_binary": envoy_bin,
        "wasm": str(wasm),
        "wasm_bytes": wasm.stat().st_size if wasm.exists() else None,
    }


def client_certs(cert_dir: Path, sizes: list) -> dict:
    """Client certificates for the caller of each size (identity of rule N-1). Returns size -> name."""
    names = {n: f"sa{n - 1}" for n in sizes}
    specs = [f"{name}={policies.spiffe(n - 1)}" for n, name in names.items()]
    certs.make_certs(cert_dir, *specs)
    return names


# meshguard at the smallest size with one optional per-request host call on (--callgrind): kind, label suffix,
# configuration
VARIANTS = (
    ("meshguard-auto", "direction auto", {"direction": "auto"}),
    ("meshguard-state", "decisionFilterState", {"decisionFilterState": True}),
    ("meshguard-header", "decisionHeader", {"decisionHeader": True}),
)


def build_cases(sizes: list, cert_names: dict, with_jwt: bool, templates: bool = True,
                native_max: int = 10_000, variants: bool = False,
                jwt_algs: tuple = ("RS256", "ES256"), with_authz: bool = True) -> list:
    cases = []
    if not with_authz:
        return jwt_cases(cert_names[min(sizes)], list(jwt_algs)) if with_jwt else []
    biggest = max(sizes)
    smallest_cert = cert_names[min(sizes)]
    none_runs = {k: [dict(r, expect=200) for r in v]
                 for k, v in policies.caller_requests(biggest, templates).items()}
    cases.append(Case("authz", "none", "no filter", None, cert_names[biggest], none_runs))
    # the filter's fixed cost: meshguard loaded with no policy at all (allows everything)
    cases.append(Case("authz", "meshguard-empty", "meshguard, no policies", None, cert_names[biggest], none_runs,
                      wasm_config=policies.meshguard_config([])))
    for n in sizes:
        resources = policies.authorization_policies(n, templates)
        runs = policies.caller_requests(n, templates)
        if n <= native_max:
            cases.append(Case("authz", "native", f"native RBAC {n}", n, cert_names[n], runs,
                              filters=policies.istio_rbac_filters(resources)))
        cases.append(Case("authz", "meshguard", f"meshguard {n}", n, cert_names[n], runs,
                          wasm_config=policies.meshguard_config(resources)))
        if variants and n == min(sizes):
            for kind, suffix, extra in VARIANTS:
                cases.append(Case("authz", kind, f"meshguard {n}, {suffix}", n, cert_names[n], runs,
                                  wasm_config=policies.meshguard_config(resources, **extra)))
    if with_jwt:
        cases += jwt_cases(smallest_cert, jwt_algs)
    return cases


def jwt_cases(cert: str, algs: list) -> list:
    """No filter; the cached cases (the first algorithm's token every request: meshguard with its
    cache and with jwtCacheSize 0, native with its cache); per algorithm, 1000 distinct tokens (every
    request a cache miss) through meshguard and through native jwt_authn."""
    from meshguard_tools.bench import jwt_bench

    cases = []
    for k, alg in enumerate(algs):
        tokens = jwt_bench.Tokens(distinct=1000, alg=alg)
        same = {"jwt": jwt_bench.requests(tokens, distinct=False)}
        distinct = {"jwt": jwt_bench.requests(tokens, distinct=True)}
        res = jwt_bench.meshguard_resources(tokens)
        native = jwt_bench.native_filters(tokens)
        if k == 0:
            cases += [
                Case("jwt", "jwt-none", "no filter (token sent)", None, cert, same),
                Case("jwt", "jwt-mg-cached", f"meshguard, same {alg} token (cache hit)", None, cert, same,
                     wasm_config=policies.meshguard_config(res)),
                Case("jwt", "jwt-mg-nocache", f"meshguard, {alg}, jwtCacheSize 0", None, cert, same,
                     wasm_config=policies.meshguard_config(res, jwtCacheSize=0)),
                Case("jwt", "jwt-native-cached", f"native jwt_authn+RBAC, same {alg} token", None, cert, same,
                     filters=native),
            ]
        cases += [
            Case("jwt", f"jwt-mg-distinct-{alg}", f"meshguard, 1000 distinct {alg} tokens", None, cert, distinct,
                 wasm_config=policies.meshguard_config(res)),
            Case("jwt", f"jwt-native-distinct-{alg}", f"native jwt_authn+RBAC, 1000 distinct {alg} tokens",
                 None, cert, distinct, filters=native),
        ]
    return cases


def probe(url: str, req: dict) -> int:
    r = urllib.request.Request(url + req["path"], headers=req.get("headers", {}), method=req["method"])
    try:
        with urllib.request.urlopen(r, timeout=10) as resp:
            resp.read()
            return resp.status
    except urllib.error.HTTPError as e:
        e.read()
        return e.code


def run_case(case: Case, a, work: Path, cert_dir: Path, rnd: int) -> dict:
    tag = f"r{rnd}-{case.kind}-{case.size or 0}"
    server = client = None
    out: dict = {"round": rnd, "runs": {}, "problems": []}
    try:
        server, s_mtls = envoys.launch_server(a.envoy, case, a.wasm, cert_dir, work, tag)
        out["ready_s"] = server.ready_s
        client, c_listen = envoys.launch_client(a.envoy, case, cert_dir, s_mtls, work, tag)
        url = f"http://127.0.0.1:{c_listen}"

        # correctness: every distinct request once (the first few of a token pool)
        for run_name, reqs in case.runs.items():
            for req in reqs[:4]:
                got = probe(url, req)
                if got != req["expect"]:
                    out["problems"].append(f"{run_name} {req['method']} {req['path']}: got {got}, "
                                           f"expected {req['expect']}")
        if out["problems"]:
            print(f"    !! {case.label}: " + "; ".join(out["problems"]), flush=True)

        scripts = {}
        for run_name, reqs in case.runs.items():
            scripts[run_name] = work / f"{tag}-{run_name}.lua"
            wrkrun.write_script(scripts[run_name], reqs)
        warm = scripts.get("mix") or next(iter(scripts.values()))
        wrkrun.run(url, warm, threads=a.threads, connections=a.connections, duration_s=a.warmup,
                   log=work / f"{tag}-warmup.wrk.log")
        out["rss_kb"] = launcher.rss_kb(server.pid)

        for run_name, reqs in case.runs.items():
            t0 = launcher.cpu_ticks(server.pid)
            w = wrkrun.run(url, scripts[run_name], threads=a.threads, connections=a.connections,
                           duration_s=a.duration, log=work / f"{tag}-{run_name}.wrk.log")
            t1 = launcher.cpu_ticks(server.pid)
            n = max(w["requests"], 1)
            w["rps"] = w["requests"] / (w["duration_us"] / 1e6)
            w["cpu_us_per_req"] = (t1 - t0) / launcher.CLK_TCK * 1e6 / n
            expected_denied = sum(1 for r in reqs if r["expect"] != 200) / len(reqs)
            w["denied_share"] = w["err_status"] / n
            # requests still in flight at the end (up to one per connection) skew the share of a short run
            if abs(w["denied_share"] - expected_denied) > 0.02 + a.connections / n:
                msg = f"{run_name}: non-2xx share {w['denied_share']:.3f}, expected {expected_denied:.2f}"
                out["problems"].append(msg)
                print(f"    !! {case.label}: {msg}", flush=True)
            socket_errors = w["err_connect"] + w["err_read"] + w["err_write"] + w["err_timeout"]
            if socket_errors:
                out["problems"].append(f"{run_name}: {socket_errors} socket errors/timeouts")
            out["runs"][run_name] = w

        if case.section == "jwt" and case.kind != "jwt-none":
            time.sleep(1.2)  # meshguard flushes its counters once a second
            try:
                cache: dict = {}
                for k, v in server.stats("jwt_cache").items():  # both listeners (only mTLS gets traffic)
                    cache[k.split(".")[-1]] = cache.get(k.split(".")[-1], 0) + (v or 0)
                out["jwt_cache"] = cache
            except (OSError, ValueError):
                pass
        out["rss_kb_end"] = launcher.rss_kb(server.pid)
    except Exception as e:  # noqa: BLE001 - record and go on with the other cases
        out["error"] = f"{type(e).__name__}: {e}"
        print(f"    !! {case.label}: {out['error'][:2000]}", flush=True)
    finally:
        for p in (client, server):
            if p is not None:
                p.stop()
    return out


# ---- aggregation and report -------------------------------------------------------------------------


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def agg(case: Case) -> dict:
    ok = [r for r in case.results if "error" not in r]
    res = {"ready_s": med([r.get("ready_s") for r in ok]), "rss_mb": None, "runs": {}, "rounds": len(ok),
           "problems": sorted({p for r in case.results for p in r.get("problems", [])} |
                              {r["error"] for r in case.results if "error" in r})}
    rss = med([r.get("rss_kb") for r in ok])
    res["rss_mb"] = rss / 1024 if rss else None
    for run_name in case.runs:
        rows = [r["runs"][run_name] for r in ok if run_name in r["runs"]]
        if not rows:
            continue
        cpu = [w["cpu_us_per_req"] for w in rows]
        res["runs"][run_name] = {
            "rps": med([w["rps"] for w in rows]),
            "p50_ms": med([w["p50_us"] / 1000 for w in rows]),
            "p99_ms": med([w["p99_us"] / 1000 for w in rows]),
            "cpu_us": med(cpu),
            "cpu_spread": (max(cpu) - min(cpu)) / med(cpu) if len(cpu) > 1 and med(cpu) else None,
            "denied_share": med([w["denied_share"] for w in rows]),
        }
    caches = [r["jwt_cache"] for r in ok if r.get("jwt_cache")]
    if caches:
        res["jwt_cache"] = caches[-1]
    return res


def fmt(v, spec="{:,.0f}", none="-"):
    return none if v is None else spec.format(v)


def ratio(a, b):
    return None if a is None or not b else a / b


def report(cases: list, info: dict, a, elapsed: float) -> tuple:
    A = {c.label: agg(c) for c in cases}
    by = {(c.kind, c.size): c for c in cases}
    sizes = sorted({c.size for c in cases if c.section == "authz" and c.size})
    none = A.get("no filter")
    L = []
    L.append("# meshguard benchmark\n")
    L.append(f"- date: {info['date']}; machine: {info['nproc']} CPUs ({info['cpu_model']}), Linux "
             f"{info['kernel']}, load average at start {info['loadavg_start']:.2f} (shared, noisy machine: "
             "compare ratios measured side by side, not absolute numbers)")
    L.append(f"- Envoy {info['envoy_version']} ({info['envoy_binary']}); meshguard {info['wasm']} "
             f"({fmt(info['wasm_bytes'])} bytes, sha256 {info.get('wasm_sha256', '?')[:12]}), V8 runtime")
    L.append(f"- load: wrk -t{a.threads} -c{a.connections} -d{a.duration}s (plaintext HTTP/1.1) -> client-side "
             "Envoy (--concurrency 1) that originates mTLS with a SPIFFE client certificate "
             "(UpstreamTlsContext) -> **server Envoy, --concurrency 1, mTLS listener requiring client "
             "certificates, direct_response 200: the process measured** (all on loopback)")
    L.append(f"- {a.rounds} round(s); each round runs every case once in a shuffled order (seed {a.seed}); "
             f"{a.warmup}s wrk warm-up per case; values are medians over rounds. CPU/req = server Envoy "
             "utime+stime delta (/proc/<pid>/stat) / completed requests; RSS = VmRSS after warm-up; "
             "ready = process start to admin /ready 200")
    L.append(f"- policies: N ALLOW AuthorizationPolicies (rule i: principal cluster.local/ns/ns{{i%20}}/sa/sa{{i}}, "
             + ("GET/POST, paths /svc{i}/* and /api/{*}/items{i}, " if not a.no_templates else
                "GET/POST, path /svc{i}/* (--no-templates), ") +
             "when x-tenant: t{i}; every 3rd has notPaths, "
             "every 5th notPrincipals) plus 3 DENY policies (/admin*, notNamespaces ns0..ns19, DELETE). "
             "native = the RBAC filters istiod generates for them (DENY filter, then ALLOW filter); "
             "meshguard = the same resources as plugin configuration. The caller is sa{N-1} (matches the "
             "last rule). allowed = every request matches the last rule; mix = 1/2 denied (DENY /admin, "
             "and a request no ALLOW rule matches)")
    L.append(f"- total bench time {elapsed / 60:.1f} min\n")

    authz_tables = (("allowed", "Authorization, every request allowed by the last rule"),
                    ("mix", "Authorization, mix: half of the requests denied")) if sizes else ()
    for run_name, title in authz_tables:
        L.append(f"## {title}\n")
        L.append("| rules | case | req/s | req/s vs none | p50 ms | p99 ms | CPU us/req | CPU vs none | "
                 "CPU spread | RSS MB | ready s |")
        L.append("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        n0 = none["runs"].get(run_name, {}) if none else {}
        rows = [(label, by[key]) for label, key in (("-", ("none", None)), ("0", ("meshguard-empty", None)))
                if key in by] + [
            (f"{n:,}", by[(k, n)]) for n in sizes for k in ("native", "meshguard") if (k, n) in by]
        for size_label, c in rows:
            r = A[c.label]
            w = r["runs"].get(run_name, {})
            L.append(f"| {size_label} | {c.label.rsplit(' ', 1)[0] if c.size else c.label} | {fmt(w.get('rps'))} | "
                     f"{fmt(ratio(w.get('rps'), n0.get('rps')), '{:.3f}')} | {fmt(w.get('p50_ms'), '{:.2f}')} | "
                     f"{fmt(w.get('p99_ms'), '{:.2f}')} | {fmt(w.get('cpu_us'), '{:.1f}')} | "
                     f"{fmt(ratio(w.get('cpu_us'), n0.get('cpu_us')), '{:.2f}')} | "
                     f"{fmt(w.get('cpu_spread'), '{:.0%}')} | {fmt(r['rss_mb'], '{:.0f}')} | "
                     f"{fmt(r['ready_s'], '{:.2f}')} |")
        L.append("")

    if sizes:
        L.append("## meshguard / native RBAC (same policies, same run; < 1 means meshguard is cheaper)\n")
        L.append("| rules | CPU/req allowed | CPU/req mix | req/s allowed | req/s mix | p99 allowed | RSS | ready |")
        L.append("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in sizes:
        if ("native", n) not in by or ("meshguard", n) not in by:
            continue
        m, nat = A[by[("meshguard", n)].label], A[by[("native", n)].label]

        def rr(run, key):
            return fmt(ratio(m["runs"].get(run, {}).get(key), nat["runs"].get(run, {}).get(key)), "{:.2f}")
        L.append(f"| {n:,} | {rr('allowed', 'cpu_us')} | {rr('mix', 'cpu_us')} | {rr('allowed', 'rps')} | "
                 f"{rr('mix', 'rps')} | {rr('allowed', 'p99_ms')} | {fmt(ratio(m['rss_mb'], nat['rss_mb']), '{:.2f}')} | "
                 f"{fmt(ratio(m['ready_s'], nat['ready_s']), '{:.2f}')} |")
    L.append("")

    jwt_cases = [c for c in cases if c.section == "jwt"]
    if jwt_cases:
        j0 = A[by[("jwt-none", None)].label]["runs"].get("jwt", {})
        L.append("## JWT (RequestAuthentication, RSA 2048-bit / P-256 keys, ALLOW requestPrincipals [\"*\"])\n")
        L.append("| case | req/s | req/s vs none | p50 ms | p99 ms | CPU us/req | CPU vs none | RSS MB | "
                 "ready s | token cache hit/miss |")
        L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for c in jwt_cases:
            r = A[c.label]
            w = r["runs"].get("jwt", {})
            cache = r.get("jwt_cache") or {}
            hits = next((v for k, v in cache.items() if k.endswith("cache_hit")), None)
            miss = next((v for k, v in cache.items() if k.endswith("cache_miss")), None)
            L.append(f"| {c.label} | {fmt(w.get('rps'))} | {fmt(ratio(w.get('rps'), j0.get('rps')), '{:.3f}')} | "
                     f"{fmt(w.get('p50_ms'), '{:.2f}')} | {fmt(w.get('p99_ms'), '{:.2f}')} | "
                     f"{fmt(w.get('cpu_us'), '{:.1f}')} | {fmt(ratio(w.get('cpu_us'), j0.get('cpu_us')), '{:.2f}')} | "
                     f"{fmt(r['rss_mb'], '{:.0f}')} | {fmt(r['ready_s'], '{:.2f}')} | "
                     f"{'-' if hits is None and miss is None else f'{fmt(hits)}/{fmt(miss)}'} |")
        L.append("\nnative jwt_authn is configured with jwt_cache_config {jwt_cache_size: 100} (meshguard's "
                 "default cache size); cache counters are cumulative over warm-up and the run (last round).\n")
        L.append(jwt_ratio_table(A, by, jwt_cases))

    problems = [(c.label, A[c.label]["problems"]) for c in cases if A[c.label]["problems"]]
    if problems:
        L.append("## Problems (results of these cases are suspect)\n")
        for label, ps in problems:
            for p in ps:
                L.append(f"- {label}: {p}")
        L.append("")
    info["loadavg_end"] = os.getloadavg()[0]
    L.append(f"load average at end: {info['loadavg_end']:.2f}\n")
    md = "\n".join(L)
    data = {
        "machine": info,
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(a).items()},
        "elapsed_s": elapsed,
        "cases": [{"section": c.section, "kind": c.kind, "label": c.label, "size": c.size,
                   "summary": A[c.label], "rounds": c.results} for c in cases],
    }
    return md, data


def run_callgrind(cases: list, a, info: dict, work: Path, cert_dir: Path, t_start: float) -> int:
    """--callgrind: every case once, in order, the server Envoy under callgrind."""
    from meshguard_tools.bench import callgrind

    info["valgrind"] = callgrind.valgrind_version()
    print(f"bench: --callgrind, {len(cases)} cases, {a.instr_requests} requests per stream "
          f"(each server Envoy starts under valgrind: about a minute per case)", flush=True)
    for k, case in enumerate(cases, 1):
        t0 = time.monotonic()
        res = callgrind.run_case(case, a, work, cert_dir)
        case.results.append(res)
        summary = "  ".join(f"{rn}: {v:,.0f} instr/req" for rn, v in res["instr"].items())
        print(f"  [{k}/{len(cases)}] {case.label:<44} {summary}  (start under valgrind "
              f"{fmt(res.get('ready_valgrind_s'), '{:.0f}')}s, case {time.monotonic() - t0:.0f}s)", flush=True)
    md = callgrind.report(cases, info, a, time.monotonic() - t_start)
    data = {
        "machine": info,
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(a).items()},
        "cases": [{"section": c.section, "kind": c.kind, "label": c.label, "size": c.size,
                   "instr_per_request": c.results[0].get("instr") if c.results else None,
                   "problems": c.results[0].get("problems") if c.results else None,
                   "error": c.results[0].get("error") if c.results else None} for c in cases],
    }
    (a.out / "results-instr.md").write_text(md, encoding="utf-8")
    (a.out / "results-instr.json").write_text(json.dumps(data, indent=1), encoding="utf-8")
    print()
    print(md)
    print(f"bench: wrote {a.out / 'results-instr.md'} and {a.out / 'results-instr.json'}")
    return 1 if any("error" in c.results[0] for c in cases if c.results) else 0


def jwt_ratio_table(A: dict, by: dict, jwt_cases: list) -> str:
    """meshguard / native jwt_authn per JWT case pair: server CPU per request, and the same over the
    no-filter case (what each filter adds)."""
    none = A[by[("jwt-none", None)].label]["runs"].get("jwt", {}).get("cpu_us")
    pairs = [("same token (cache hit)", "jwt-mg-cached", "jwt-native-cached")]
    pairs += [(f"1000 distinct {c.kind.rsplit('-', 1)[1]} tokens (cache miss)", c.kind,
               c.kind.replace("-mg-", "-native-")) for c in jwt_cases if c.kind.startswith("jwt-mg-distinct-")]
    L = ["## JWT: meshguard / native jwt_authn (same run)\n",
         "| tokens | CPU us/req meshguard | native | ratio | added over no filter: meshguard | native | ratio |",
         "|---|---:|---:|---:|---:|---:|---:|"]
    for title, mg, nat in pairs:
        if (mg, None) not in by or (nat, None) not in by:
            continue
        m = A[by[(mg, None)].label]["runs"].get("jwt", {}).get("cpu_us")
        n = A[by[(nat, None)].label]["runs"].get("jwt", {}).get("cpu_us")
        dm = m - none if m is not None and none is not None else None
        dn = n - none if n is not None and none is not None else None
        L.append(f"| {title} | {fmt(m, '{:.1f}')} | {fmt(n, '{:.1f}')} | {fmt(ratio(m, n), '{:.2f}')} | "
                 f"{fmt(dm, '{:.1f}')} | {fmt(dn, '{:.1f}')} | {fmt(ratio(dm, dn), '{:.2f}')} |")
    return "\n".join(L) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--envoy", required=True, help="the real Envoy binary (not the .venv/bin shim)")
    ap.add_argument("--wasm", type=Path, default=DEFAULT_WASM)
    ap.add_argument("--out", type=Path, default=TARGET / "bench")
    ap.add_argument("--quick", action="store_true", help="smoke test: 1 round, 2 s runs, sizes 1 and 1000")
    ap.add_argument("--rounds", type=int, default=None, help="default 3 (quick: 1)")
    ap.add_argument("--duration", type=int, default=None, help="seconds per wrk run (default 5, quick 2)")
    ap.add_argument("--warmup", type=int, default=1, help="seconds of wrk warm-up per case")
    ap.add_argument("--sizes", default=None, help="comma-separated rule counts (default 1,50,1000,10000; "
                                                  "quick 1,1000)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-jwt", action="store_true", help="skip the JWT section")
    ap.add_argument("--jwt-only", action="store_true", help="only the JWT section (no authorization cases)")
    ap.add_argument("--jwt-algs", default="RS256,ES256",
                    help="algorithms of the distinct-token JWT cases (RS256, RS384, RS512, PS256, ES256, ES384; "
                         "the first one also signs the cached-token cases)")
    ap.add_argument("--no-templates", action="store_true",
                    help="drop the /api/{*}/items{i} path template from every rule (both engines)")
    ap.add_argument("--scale", action="store_true",
                    help="sizes 1,10000,99997 (99,997 ALLOW + 3 DENY = 100,000 rules, the load limit; "
                         "native RBAC only up to --native-max)")
    ap.add_argument("--native-max", type=int, default=10_000,
                    help="largest size with a native RBAC case (default 10000; 100,000 RBAC policies take "
                         "minutes to load and ~0.3 s per request)")
    ap.add_argument("--callgrind", action="store_true",
                    help="instruction counts instead of wrk: the server Envoy under valgrind --tool=callgrind, "
                         "N keep-alive requests per stream (see callgrind.py); writes results-instr.{md,json}")
    ap.add_argument("--instr-requests", type=int, default=None,
                    help="--callgrind: requests counted per stream (default 1000, quick 200)")
    ap.add_argument("--instr-warmup", type=int, default=100, help="--callgrind: warm-up requests per stream")
    ap.add_argument("--kinds", default=None,
                    help="only these case kinds, comma-separated (none, meshguard-empty, native, meshguard, "
                         "meshguard-auto, meshguard-state, meshguard-header, jwt-...)")
    a = ap.parse_args(argv)
    a.rounds = 1 if a.callgrind else (a.rounds or (1 if a.quick else 3))
    a.duration = a.duration or (2 if a.quick else 5)
    a.instr_requests = a.instr_requests or (200 if a.quick else 1000)
    default_sizes = "1,10000,99997" if a.scale else ("1,1000" if a.quick else "1,50,1000,10000")
    sizes = [int(s) for s in (a.sizes or default_sizes).split(",")]
    a.sizes = sizes
    if a.callgrind:
        from meshguard_tools.bench import callgrind

        missing = callgrind.available()
        if missing:
            ap.error(f"--callgrind: {missing}")
    if not Path(a.envoy).is_file():
        ap.error(f"no Envoy binary at {a.envoy}")
    if not a.wasm.is_file():
        ap.error(f"no wasm module at {a.wasm} (make build)")

    def on_signal(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    atexit.register(launcher.kill_all)

    t_start = time.monotonic()
    a.out.mkdir(parents=True, exist_ok=True)
    work = a.out / "work"
    work.mkdir(exist_ok=True)
    for old in work.iterdir():
        if old.is_file():
            old.unlink()
    cert_dir = a.out / "certs"
    # a snapshot of the module, so a rebuild during the run cannot mix two builds
    wasm_copy = work / "meshguard.wasm"
    shutil.copyfile(a.wasm, wasm_copy)
    info = {}
    try:
        info = machine_info(a.envoy, a.wasm)
        info["wasm_sha256"] = hashlib.sha256(wasm_copy.read_bytes()).hexdigest()
        a.wasm = wasm_copy
        print(f"bench: {info['nproc']} CPUs ({info['cpu_model']}), Envoy {info['envoy_version']}", flush=True)
        print("bench: wrk (HTTP/1.1) -> client Envoy (mTLS origination, SPIFFE client cert) -> server Envoy "
              "--concurrency 1 (measured)", flush=True)
        cert_names = client_certs(cert_dir, sizes)
        cases = build_cases(sizes, cert_names, with_jwt=not a.no_jwt, templates=not a.no_templates,
                            native_max=a.native_max, variants=a.callgrind,
                            jwt_algs=tuple(a.jwt_algs.split(",")), with_authz=not a.jwt_only)
        if a.kinds:
            cases = [c for c in cases if c.kind in a.kinds.split(",")]
        if a.callgrind:
            return run_callgrind(cases, a, info, work, cert_dir, t_start)
        per_case = a.warmup + a.duration * max(len(c.runs) for c in cases)
        print(f"bench: {len(cases)} cases x {a.rounds} round(s), ~{len(cases) * a.rounds * (per_case + 2) / 60:.0f}+ min",
              flush=True)
        for rnd in range(1, a.rounds + 1):
            order = list(cases)
            random.Random(a.seed * 1000 + rnd).shuffle(order)
            for k, case in enumerate(order, 1):
                t0 = time.monotonic()
                res = run_case(case, a, work, cert_dir, rnd)
                case.results.append(res)
                summary = "  ".join(f"{rn}: {w['rps']:,.0f} req/s {w['cpu_us_per_req']:.1f} us/req "
                                    f"p99 {w['p99_us'] / 1000:.2f} ms"
                                    for rn, w in res["runs"].items())
                print(f"  round {rnd}/{a.rounds} [{k}/{len(order)}] {case.label:<44} ready "
                      f"{fmt(res.get('ready_s'), '{:.2f}')}s  rss {fmt((res.get('rss_kb') or 0) / 1024, '{:.0f}')} MB  "
                      f"{summary}  ({time.monotonic() - t0:.0f}s)", flush=True)
        md, data = report(cases, info, a, time.monotonic() - t_start)
    finally:
        launcher.kill_all()
    (a.out / "results.md").write_text(md, encoding="utf-8")
    (a.out / "results.json").write_text(json.dumps(data, indent=1), encoding="utf-8")
    print()
    print(md)
    print(f"bench: wrote {a.out / 'results.md'} and {a.out / 'results.json'}")
    bad = any(c.results and all("error" in r for r in c.results) for c in cases)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
