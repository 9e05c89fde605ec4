#!/usr/bin/env python3
"""meshguard's memory and start-up levers, side by side in one run (`make footprint`).

Each case starts one real Envoy (--concurrency 1, the bench's server bootstrap: a plaintext and an
mTLS listener, both with the filter; by default the filter reaches Envoy as Istio delivers a
WasmPlugin, an ECDS resource in binary protobuf that both listeners name, see bench/delivery.py and
--delivery) and records: time to ready (process start to admin /ready 200),
VmRSS after one request through the plaintext listener and a settle time, and Envoy's tcmalloc
figures from the admin /memory endpoint (allocated, heap size, free pages still mapped). No load
is sent: the numbers are what a sidecar pays at rest, which is what a fleet of sidecars pays.

The levers measured:
* the module: the built module against other builds given with --module LABEL=PATH (a wasm-opt
  output, a no-op proxy-wasm filter as the floor of any Rust filter);
* the policy size (--sizes, the bench's Istio-shaped AuthorizationPolicies);
* VM sharing: both listeners use one VM (same vm_id, same code: Envoy keys VMs by them) against one
  VM each (distinct vm_id);
* tcmalloc: the bootstrap's memory_allocator_manager, which makes Envoy hand free pages back to the
  kernel every second (V8 compiles the module in memory it frees right after, and tcmalloc keeps it).
* with --delivery-levers N: how the configuration reaches Envoy at N rules (inline in a JSON or YAML
  bootstrap, ECDS from a JSON or binary protobuf file), on one listener or two, and (for the no-op
  filter given with --noop) as a google.protobuf.Struct instead of a StringValue.
* with --lever LABEL=ITEMS: an operator's allocator settings (Envoy's environment, such as
  GLIBC_TUNABLES=glibc.pthread.rseq=0 for tcmalloc's per-CPU caches, and the bootstrap's
  memory_allocator_manager fields, such as soft_memory_limit_bytes), for no filter, the no-op filter,
  meshguard and each --module alike. Synthetic modules (a no-op filter plus code of a chosen size in
  functions of a chosen size) come from bench/synthetic.py.

tcmalloc's own accounting of each case (the admin /memory/tcmalloc page: bytes in use, free in the
page heap, in thread, per-CPU and transfer caches, the peak, the free objects per size class) is
saved as work/<round>-<case>-tcmalloc.txt next to the results.

Where the memory goes, per case, from /proc/PID/smaps: the Wasm linear memories (V8 reserves 8 GiB
for each; the accessible part is the read-write mapping just below the reservation) with their count
(one per live VM) and resident size, and the resident size of V8's anonymous executable mappings
(the compiled module's code, shared by every clone of a VM).

Rounds alternate the cases in a shuffled order; the table shows medians.
"""
from __future__ import annotations

import argparse
import atexit
import json
import os
import random
import shutil
import statistics
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from meshguard_tools import certs, envoy_config, launcher
from meshguard_tools.wasm_imports import Reader
from meshguard_tools.bench import delivery, policies
from meshguard_tools.paths import DEFAULT_WASM, TARGET



def largest_function(path: str | Path) -> int:
    """Bytes of the largest function body of a module (its code section): V8's optimizing compiler
    needs memory in proportion to it."""
    data = Path(path).read_bytes()
    r = Reader(data, 8)
    while r.pos < r.end:
        sid, size = r.byte(), r.uleb()
        end = r.pos + size
        if sid == 10:
            largest = 0
            for _ in range(r.uleb()):
                n = r.uleb()
                largest = max(largest, n)
                r.pos += n
            return largest
        r.pos = end
    return 0


def wasm_regions(pid: int) -> dict:
    """Resident kB of the Wasm linear memories (and how many there are) and of V8's anonymous
    executable mappings (compiled code), from /proc/PID/smaps."""
    regions: list = []
    with open(f"/proc/{pid}/smaps", encoding="ascii", errors="replace") as f:
        for line in f:
            head = line.split(maxsplit=5)
            if "-" in head[0] and len(head) >= 5 and ":" not in head[0]:
                start, end = (int(x, 16) for x in head[0].split("-"))
                regions.append({"start": start, "end": end, "perm": head[1],
                                "anon": len(head) < 6 or not head[5].strip(), "rss": 0})
            elif line.startswith("Rss:") and regions:
                regions[-1]["rss"] = int(line.split()[1])
    out = {"linear_kb": 0, "linear_count": 0, "code_kb": 0}
    for i, r in enumerate(regions):
        nxt = regions[i + 1] if i + 1 < len(regions) else None
        if (r["anon"] and r["perm"].startswith("rw") and nxt is not None and nxt["start"] == r["end"]
                and nxt["perm"].startswith("---") and nxt["end"] - nxt["start"] >= 4 << 30):
            out["linear_kb"] += r["rss"]
            out["linear_count"] += 1
        if r["anon"] and "x" in r["perm"]:
            out["code_kb"] += r["rss"]
    return out


DELIVERIES = {
    "static-json": "inline in a JSON bootstrap",
    "static-yaml": "inline in a YAML bootstrap",
    "ecds-json": "ECDS from a JSON file",
    "ecds-pb": "ECDS from a binary protobuf file",
}


def bootstrap(case: dict, wasm: str, cert_dir: str) -> tuple[dict, int, int]:
    admin, plain, mtls = envoy_config.free_port(), envoy_config.free_port(), envoy_config.free_port()
    cfg = envoy_config.server_bootstrap(filters=None, wasm_config=case["config"], wasm_path=wasm,
                                        cert_dir=cert_dir, plain_port=plain, mtls_port=mtls, admin_port=admin)
    if case.get("distinct_vm"):
        for k, listener in enumerate(cfg["static_resources"]["listeners"]):
            for chain in listener["filter_chains"]:
                for nf in chain["filters"]:
                    for hf in nf["typed_config"]["http_filters"]:
                        if hf["name"] == "envoy.filters.http.wasm":
                            hf["typed_config"]["config"]["vm_config"]["vm_id"] = f"meshguard-{k}"
    if case.get("release"):
        cfg["memory_allocator_manager"] = dict(envoy_config.RELEASE_MEMORY)
    if case.get("allocator"):
        cfg["memory_allocator_manager"] = dict(case["allocator"])
    if case.get("one_listener"):
        delivery.one_listener(cfg)
    if case.get("struct"):
        delivery.struct_configuration(cfg)
    return cfg, admin, plain


def one_request(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/svc0/items/1", timeout=10) as r:
            r.read()
            return r.status
    except urllib.error.HTTPError as e:
        e.read()
        return e.code
    except OSError:
        return 0


def run_case(case: dict, a, work: Path, cert_dir: Path, rnd: int) -> dict:
    wasm = case.get("module") or str(a.wasm)
    cfg, admin, plain = bootstrap(case, wasm, str(cert_dir))
    name = f"r{rnd}-{case['key']}"
    how = case.get("delivery", a.delivery)
    if how.startswith("ecds-"):
        delivery.ecds(cfg, work / f"{name}-ecds.{'pb' if how == 'ecds-pb' else 'json'}", binary=how == "ecds-pb")
    config = delivery.write_yaml(cfg, work / f"{name}.yaml") if how == "static-yaml" else cfg
    out: dict = {}
    env = None
    saved = {k: os.environ.get(k) for k in case.get("environ", {})}
    try:
        os.environ.update(case.get("environ", {}))
        try:
            env = launcher.launch(a.envoy, config, work, name, admin, concurrency=1, ready_timeout=600)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        out["ready_s"] = env.ready_s
        out["status"] = one_request(plain)
        time.sleep(case.get("settle", a.settle))
        out["rss_kb"] = launcher.rss_kb(env.pid)
        out.update(wasm_regions(env.pid))
        mem = json.loads(env.admin("/memory"))
        for k in ("allocated", "heap_size", "pageheap_free", "pageheap_unmapped", "total_thread_cache"):
            out[k] = int(mem.get(k, 0))
        (work / f"{name}-tcmalloc.txt").write_text(env.admin("/memory/tcmalloc"), encoding="utf-8")
    except Exception as e:  # noqa: BLE001 - record and go on with the other cases
        out["error"] = f"{type(e).__name__}: {str(e)[-1500:]}"
        print(f"    !! {case['label']}: {out['error']}", flush=True)
    finally:
        if env is not None:
            env.stop()
    return out


def cases_for(a) -> list:
    empty = policies.meshguard_config([])
    cases = [
        {"key": "none", "label": "no filter", "config": None},
        {"key": "empty", "label": "meshguard, no policies", "config": empty},
        {"key": "empty-release", "label": "meshguard, no policies, memory_allocator_manager",
         "config": empty, "release": True},
        {"key": "empty-2vm", "label": "meshguard, no policies, one VM per listener (distinct vm_id)",
         "config": empty, "distinct_vm": True},
    ]
    if a.no_levers:
        cases = cases[:1]
    for spec in a.module:
        label, path = spec.split("=", 1)
        cases.append({"key": f"module-{label}", "label": f"module {label}, no policies", "config": empty,
                      "module": path, "module_bytes": Path(path).stat().st_size})
        for n in a.sizes if a.module_sizes else []:
            cases.append({"key": f"module-{label}-{n}", "label": f"module {label}, {n:,} rules", "rules": n,
                          "config": policies.meshguard_config(policies.authorization_policies(n)),
                          "module": path, "module_bytes": Path(path).stat().st_size})
    if a.noop:
        cases.append({"key": "noop", "label": "no-op filter, no configuration", "config": {},
                      "module": a.noop, "module_bytes": Path(a.noop).stat().st_size})
    if a.delivery_levers:
        n = a.delivery_levers
        cfg = policies.meshguard_config(policies.authorization_policies(n))
        modules = [("meshguard", None)] + ([("no-op filter", a.noop)] if a.noop else [])
        for who, module in modules:
            extra = {"module": module, "module_bytes": Path(module).stat().st_size} if module else {}
            tag = "noop" if module else "mg"
            for how, what in DELIVERIES.items():
                cases.append({"key": f"{tag}-{how}-{n}", "label": f"{who}, {n:,} rules, {what}, 2 listeners",
                              "config": cfg, "rules": n, "delivery": how, **extra})
                if how in ("static-json", "ecds-pb"):
                    cases.append({"key": f"{tag}-{how}-1l-{n}", "label": f"{who}, {n:,} rules, {what}, 1 listener",
                                  "config": cfg, "rules": n, "delivery": how, "one_listener": True, **extra})
            if module:
                # Envoy hands a filter the serialized Struct (not JSON): meshguard would refuse it.
                for how in ("static-json", "ecds-pb"):
                    cases.append({"key": f"{tag}-{how}-struct-{n}",
                                  "label": f"{who}, {n:,} rules, {DELIVERIES[how]}, Struct configuration, 2 listeners",
                                  "config": cfg, "rules": n, "delivery": how, "struct": True, **extra})
    for spec in a.lever:
        label, _, items = spec.partition("=")
        extra: dict = {"environ": {}, "env_label": label}
        for item in (i for i in items.split(",") if i):
            kind, _, value = item.partition(":")
            key, _, val = value.partition("=")
            if kind == "env":
                extra["environ"][key] = val
            elif kind == "mam":
                extra.setdefault("allocator", {})[key] = val
            elif kind == "settle":
                extra["settle"] = float(value)
            else:
                raise SystemExit(f"footprint: --lever {spec!r}: {item!r} is not env:, mam: or settle:")
        cases.append({"key": f"env-{label}-none", "label": f"no filter, {label}", "config": None, **extra})
        if a.noop:
            cases.append({"key": f"env-{label}-noop", "label": f"no-op filter, {label}", "config": {},
                          "module": a.noop, "module_bytes": Path(a.noop).stat().st_size, **extra})
        cases.append({"key": f"env-{label}-empty", "label": f"meshguard, no policies, {label}", "config": empty,
                      **extra})
        for mspec in a.module:
            mlabel, path = mspec.split("=", 1)
            cases.append({"key": f"env-{label}-module-{mlabel}", "label": f"module {mlabel}, no policies, {label}",
                          "config": empty, "module": path, "module_bytes": Path(path).stat().st_size, **extra})
    for n in a.sizes:
        cfg = policies.meshguard_config(policies.authorization_policies(n))
        cases.append({"key": f"rules-{n}", "label": f"meshguard, {n:,} rules", "config": cfg, "rules": n})
        cases.append({"key": f"rules-{n}-release", "label": f"meshguard, {n:,} rules, memory_allocator_manager",
                      "config": cfg, "rules": n, "release": True})
    return cases


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def report(cases: list, a) -> str:
    mb = 1024 * 1024
    bases = {c.get("env_label"): med([r.get("rss_kb") for r in c["results"]])
             for c in cases if c["config"] is None}
    lines = [f"Envoy {launcher.envoy_version(a.envoy)}, --concurrency 1, module {a.wasm_bytes:,} bytes, "
             f"{a.rounds} round(s), medians; RSS read {a.settle:g} s after ready and one request; "
             f"configuration {DELIVERIES[a.delivery]} unless the case says otherwise.", "",
             "| case | ready s | RSS MB | RSS over no filter MB | tcmalloc allocated MB | tcmalloc heap MB | "
             "tcmalloc free mapped MB | Wasm linear memory MB (VMs) | compiled code MB | module bytes | "
             "largest function bytes |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for c in cases:
        rs = [r for r in c["results"] if "error" not in r]
        if not rs:
            lines.append(f"| {c['label']} | error: {c['results'][0].get('error', '?')[:80]} |")
            continue
        rss = med([r["rss_kb"] for r in rs])
        base = bases.get(c.get("env_label"))
        over = f"{(rss - base) / 1024:+.1f}" if base and c["config"] is not None else ""
        mod = c.get("module_bytes", a.wasm_bytes) if c["config"] is not None else 0
        big = largest_function(c.get("module") or a.wasm) if c["config"] is not None else 0
        lines.append(f"| {c['label']} | {med([r['ready_s'] for r in rs]):.2f} | {rss / 1024:.1f} | {over} | "
                     f"{med([r['allocated'] for r in rs]) / mb:.1f} | {med([r['heap_size'] for r in rs]) / mb:.1f} | "
                     f"{med([r['pageheap_free'] for r in rs]) / mb:.1f} | "
                     f"{med([r['linear_kb'] for r in rs]) / 1024:.1f} ({med([r['linear_count'] for r in rs]):g}) | "
                     f"{med([r['code_kb'] for r in rs]) / 1024:.1f} | {mod:,} | {big:,} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--envoy", required=True, help="the real Envoy binary (not the .venv/bin shim)")
    ap.add_argument("--wasm", type=Path, default=DEFAULT_WASM)
    ap.add_argument("--module", action="append", default=[], metavar="LABEL=PATH",
                    help="another module to compare with no policies (repeatable)")
    ap.add_argument("--sizes", default="1,10000", help="comma-separated rule counts (default 1,10000)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--settle", type=float, default=3.0, help="seconds between ready and the RSS reading")
    ap.add_argument("--out", type=Path, default=TARGET / "footprint")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-levers", action="store_true",
                    help="only the no-filter case and the rule counts (for a large --sizes)")
    ap.add_argument("--delivery", choices=sorted(DELIVERIES), default="ecds-pb",
                    help="how every case's filter reaches Envoy (default ecds-pb: as Istio delivers a WasmPlugin)")
    ap.add_argument("--delivery-levers", type=int, default=0, metavar="N",
                    help="add cases at N rules for each delivery, one listener against two, and (no-op "
                         "filter) a Struct configuration")
    ap.add_argument("--module-sizes", action="store_true", help="run the --module modules at the --sizes too")
    ap.add_argument("--lever", action="append", default=[], metavar="LABEL=ITEM[,ITEM...]",
                    help="an operator's allocator setting: no filter, the no-op filter (with --noop), meshguard "
                         "and each --module with no policies, each with it (RSS over no filter is then against "
                         "the no-filter case with the same setting). ITEM is env:VAR=VALUE (Envoy's environment), "
                         "mam:FIELD=VALUE (a field of the bootstrap's memory_allocator_manager) or "
                         "settle:SECONDS; repeatable. "
                         "E.g. 'percpu=env:GLIBC_TUNABLES=glibc.pthread.rseq=0,mam:bytes_to_release=268435456'")
    ap.add_argument("--noop", help="a no-op proxy-wasm filter module: its floor, and the delivery levers for it")
    a = ap.parse_args(argv)
    a.sizes = [int(s) for s in a.sizes.split(",") if s]
    if not Path(a.envoy).is_file():
        ap.error(f"no Envoy binary at {a.envoy}")
    if not a.wasm.is_file():
        ap.error(f"no wasm module at {a.wasm} (make build)")
    atexit.register(launcher.kill_all)
    a.out.mkdir(parents=True, exist_ok=True)
    work = a.out / "work"
    work.mkdir(exist_ok=True)
    wasm_copy = work / "meshguard.wasm"
    shutil.copyfile(a.wasm, wasm_copy)
    a.wasm, a.wasm_bytes = wasm_copy, wasm_copy.stat().st_size
    cert_dir = a.out / "certs"
    certs.make_certs(cert_dir, f"sa0={policies.spiffe(0)}")
    cases = cases_for(a)
    for c in cases:
        c["results"] = []
    try:
        for rnd in range(1, a.rounds + 1):
            order = list(cases)
            random.Random(a.seed * 1000 + rnd).shuffle(order)
            for c in order:
                r = run_case(c, a, work, cert_dir, rnd)
                c["results"].append(r)
                print(f"  round {rnd}/{a.rounds} {c['label']:<62} ready {r.get('ready_s') or 0:.2f}s  "
                      f"rss {(r.get('rss_kb') or 0) / 1024:.1f} MB  free {(r.get('pageheap_free') or 0) / 2**20:.1f} MB",
                      flush=True)
    finally:
        launcher.kill_all()
    md = report(cases, a)
    (a.out / "results.md").write_text(md, encoding="utf-8")
    (a.out / "results.json").write_text(json.dumps([{k: v for k, v in c.items() if k != "config"} for c in cases],
                                                   indent=1), encoding="utf-8")
    print()
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
