#!/usr/bin/env python3
"""Synthetic modules for `make footprint`: a proxy-wasm module (the no-op filter) plus N KB of extra
code in functions of S bytes each, so Envoy's memory at rest can be measured against the code V8 must
compile, the size of the largest function and the number of functions, one at a time.

    python -m meshguard_tools.bench.synthetic BASE.wasm --kb 300 --function-bytes 4000 -o OUT.wasm
    python -m meshguard_tools.bench.synthetic BASE.wasm --grid 100,300,600 --sizes 1000,4000,10000 -d DIR

What the code looks like. V8 compiles every function of the module with TurboFan at load
(proxy-wasm-cpp-host turns Liftoff off), whether it is ever called or not; each added function is
exported (`syn_<i>`) so no tool can drop it. Its body is rustc-like straight-line code with branches:
units of about 45 bytes, each a `block` with an `i32.load` of a parameter-based address, a `br_if`
out, arithmetic over the function's locals (some i64), an `if`/`else` with a direct call to another
added function, and an `i32.store`. Locals are picked at random among the function's locals (4 per
KB of body, at least 8, as meshguard's largest functions have), so values live across the function
as they do in compiled Rust and the register allocator has real work. The figures that steer it come
from meshguard's largest functions (per KB: about 25 calls, 25 loads, 20 stores, 10 `br_if`).

The base module is edited, not rebuilt: one function type `(i32, i32) -> i32` is appended to the
type section, the functions to the function and code sections, their exports to the export section;
nothing else moves (the added functions are numbered after the base's own). Deterministic for a seed.
"""
from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

from meshguard_tools.wasm_imports import Reader, uleb128

TYPE, IMPORT, FUNCTION, EXPORT, CODE = 1, 2, 3, 7, 10
I32, I64 = 0x7F, 0x7E


def sleb128(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if (n == 0 and not b & 0x40) or (n == -1 and b & 0x40):
            out.append(b)
            return bytes(out)
        out.append(b | 0x80)


def vec(items: list[bytes]) -> bytes:
    return uleb128(len(items)) + b"".join(items)


def sections(data: bytes) -> list[tuple[int, bytes]]:
    r = Reader(data, 8)
    out = []
    while r.pos < r.end:
        sid, size = r.byte(), r.uleb()
        out.append((sid, data[r.pos:r.pos + size]))
        r.pos += size
    return out


def entries(payload: bytes) -> tuple[int, bytes]:
    """The count of a vector section and the bytes of its entries."""
    r = Reader(payload)
    n = r.uleb()
    return n, payload[r.pos:]


def imported_functions(payload: bytes) -> int:
    r = Reader(payload)
    n = 0
    for _ in range(r.uleb()):
        r.name()
        r.name()
        kind = r.byte()
        if kind == 0:
            r.uleb()
            n += 1
        elif kind == 1:
            r.byte()
            r.limits()
        elif kind == 2:
            r.limits()
        elif kind == 3:
            r.byte()
            r.byte()
        else:
            r.uleb()
            r.uleb()
    return n


def body(size: int, callees: list[int], rng: random.Random) -> bytes:
    """A function body of about `size` bytes: (param i32 i32) (result i32)."""
    n32 = max(8, size * 4 // 1024)
    n64 = max(2, n32 // 4)
    first32, first64 = 2, 2 + n32
    code = bytearray()

    def get(i: int) -> bytes:
        return b"\x20" + uleb128(i)

    def put(op: int, i: int) -> bytes:
        return bytes([op]) + uleb128(i)

    def l32() -> int:
        return first32 + rng.randrange(n32)

    def l64() -> int:
        return first64 + rng.randrange(n64)

    while len(code) < size - 8:
        a, b, c, d, e = (l32() for _ in range(5))
        w = l64()
        callee = rng.choice(callees)
        unit = (
            b"\x02\x40"                                              # block
            + get(rng.randrange(2)) + get(a) + b"\x6a"               # p + a, i32.add
            + b"\x28\x02" + uleb128(rng.randrange(4096) * 4)          # i32.load offset
            + put(0x22, b)                                           # local.tee b
            + b"\x45\x0d\x00"                                        # i32.eqz, br_if 0
            + get(b) + get(c) + b"\x6a" + put(0x21, d)               # d = b + c
            + get(d) + b"\x41" + sleb128(rng.randrange(1, 1 << 20)) + b"\x49"  # d < K
            + b"\x04\x40"                                            # if
            + get(0) + get(d) + b"\x10" + uleb128(callee) + put(0x21, e)  # e = call(p0, d)
            + b"\x05"                                                # else
            + get(e) + b"\xad" + get(w) + b"\x7e"                    # i64.extend_i32_u e, * w
            + b"\x42" + sleb128(rng.randrange(1, 1 << 40)) + b"\x85"  # ^ K64
            + put(0x22, w) + b"\xa7" + put(0x21, c)                  # w = ..., c = wrap(w)
            + b"\x0b"                                                # end if
            + get(1) + get(e) + b"\x36\x02" + uleb128(rng.randrange(4096) * 4)  # i32.store
            + b"\x0b"                                                # end block
        )
        code += unit
    code += get(first32) + b"\x0b"
    locals_ = vec([uleb128(n32) + bytes([I32]), uleb128(n64) + bytes([I64])])
    return locals_ + bytes(code)


def synthesize(base: bytes, total_bytes: int, function_bytes: int, seed: int = 1) -> bytes:
    secs = sections(base)
    ids = [s for s, _ in secs]
    for need in (TYPE, FUNCTION, EXPORT, CODE):
        if need not in ids:
            raise SystemExit(f"synthetic: the base module has no section {need}")
    n_imports = next((imported_functions(p) for s, p in secs if s == IMPORT), 0)
    n_types, _ = entries(next(p for s, p in secs if s == TYPE))
    n_funcs, _ = entries(next(p for s, p in secs if s == FUNCTION))
    count = max(1, round(total_bytes / function_bytes))
    first = n_imports + n_funcs
    rng = random.Random(seed)
    indexes = list(range(first, first + count))
    bodies = []
    for k in range(count):
        callees = [i for i in indexes if i != first + k] or indexes
        b = body(function_bytes, callees, rng)
        bodies.append(uleb128(len(b)) + b)
    added = {
        TYPE: [b"\x60\x02\x7f\x7f\x01\x7f"],
        FUNCTION: [uleb128(n_types)] * count,
        EXPORT: [uleb128(len(f"syn_{k}")) + f"syn_{k}".encode() + b"\x00" + uleb128(first + k) for k in range(count)],
        CODE: bodies,
    }
    out = bytearray(base[:8])
    for sid, payload in secs:
        if sid in added:
            n, rest = entries(payload)
            payload = uleb128(n + len(added[sid])) + rest + b"".join(added[sid])
        out += bytes([sid]) + uleb128(len(payload)) + payload
    return bytes(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("base", type=Path, help="the module to add code to (a no-op proxy-wasm filter)")
    ap.add_argument("--kb", type=int, help="KB of code to add (with -o)")
    ap.add_argument("--function-bytes", type=int, help="bytes per added function (with -o)")
    ap.add_argument("-o", "--out", type=Path)
    ap.add_argument("--grid", help="comma-separated KB values (with --sizes and -d)")
    ap.add_argument("--sizes", help="comma-separated function sizes in bytes")
    ap.add_argument("-d", "--dir", type=Path, help="where --grid writes syn-<KB>k-<S>.wasm")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args(argv)
    base = a.base.read_bytes()
    jobs = []
    if a.grid:
        if not (a.sizes and a.dir):
            ap.error("--grid needs --sizes and --dir")
        a.dir.mkdir(parents=True, exist_ok=True)
        for kb in (int(x) for x in a.grid.split(",")):
            for s in (int(x) for x in a.sizes.split(",")):
                jobs.append((kb, s, a.dir / f"syn-{kb}k-{s}.wasm"))
    elif a.kb is not None and a.function_bytes and a.out:
        jobs.append((a.kb, a.function_bytes, a.out))
    else:
        ap.error("give --kb, --function-bytes and -o, or --grid, --sizes and -d")
    for kb, s, path in jobs:
        data = synthesize(base, kb * 1024, s, a.seed)
        path.write_bytes(data)
        print(f"{path}: {len(data):,} bytes (+{len(data) - len(base):,})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
