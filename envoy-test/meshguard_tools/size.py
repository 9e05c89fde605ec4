#!/usr/bin/env python3
"""Where the module's bytes go: `make size` (README, "Module size and memory").

    python -m meshguard_tools.size target/size/meshguard-postlinked.wasm [--top 30]

Reads a module built with its name section kept (`make size` builds the release module with
`strip = "debuginfo"` and v0 symbol mangling, so generic instantiations carry their type
arguments, and post-links it as `make build` does with wasm-opt's `-g`, which keeps the
names; without the name section it is within 0.2 % of the shipped module) through `twiggy top`
(`cargo install twiggy`) and prints the largest items, the bytes per crate (an item counts for the crate its path
starts with: `<alloc::vec::Vec<meshguard_core::X>>::push` is `alloc`; serde's
traits count for serde_json) and a few families that
size work watches (standard-library sorts, BTreeMap, float formatting and parsing, core::fmt).
"""
from __future__ import annotations

import argparse
import csv
import re
import subprocess
import sys
from collections import defaultdict

HASH = re.compile(r"\[[0-9a-f]{8,16}\]|::h[0-9a-f]{16}$")
PRIMITIVES = {"f32", "f64", "str", "char", "bool", "u8", "u16", "u32", "u64", "u128", "usize",
              "i8", "i16", "i32", "i64", "i128", "isize"}
FAMILIES = {
    "std sort (stable + unstable)": re.compile(r"^<?core::slice::sort::"),
    "BTreeMap": re.compile(r"^<?alloc::collections::btree::"),
    "float formatting and parsing": re.compile(r"^<?core::(num::(flt2dec|dec2flt)|fmt::float)"),
    "core::fmt": re.compile(r"^<?core::fmt::"),
}


def items(path: str) -> list[tuple[str, int]]:
    try:
        out = subprocess.run(["twiggy", "top", "-n", "1000000", "-f", "csv", path],
                             capture_output=True, text=True, check=True, timeout=120).stdout
    except FileNotFoundError:
        sys.exit("size: twiggy not found (cargo install twiggy)")
    return [(HASH.sub("", r["Name"]), int(r["ShallowSize"])) for r in csv.DictReader(out.splitlines())]


def crate(name: str) -> str:
    if re.match(r'"\w+ names" subsection', name) or name.startswith("custom section"):
        return "(name section)"
    if name.startswith("data segment"):
        return "(data)"
    s = name
    while True:
        stripped = re.sub(r"^(<|&|mut |dyn )", "", s)
        if stripped == s:
            break
        s = stripped
    if "::" not in s:
        return "(wasi-libc's malloc and C string functions, tables)"
    m = re.match(r"([A-Za-z_][A-Za-z0-9_]*)::", s)
    if not m or m.group(1) in PRIMITIVES:
        # A primitive type's method or trait impl: the trait's crate, else core's.
        t = re.search(r" as <*([A-Za-z_][A-Za-z0-9_]*)::", s)
        return t.group(1) if t else "core"
    return {"serde_core": "serde_json", "serde": "serde_json"}.get(m.group(1), m.group(1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("wasm")
    ap.add_argument("--top", type=int, default=30)
    args = ap.parse_args()
    rows = items(args.wasm)
    total = sum(b for _, b in rows)
    names = sum(b for n, b in rows if crate(n) == "(name section)")
    print(f"{args.wasm}: {total:,} bytes, {total - names:,} without the name section\n")
    print(f"largest {args.top} items:")
    for name, b in sorted(rows, key=lambda r: -r[1])[: args.top]:
        print(f"{b:>9,}  {name[:160]}")
    per_crate: dict[str, int] = defaultdict(int)
    fam: dict[str, int] = defaultdict(int)
    for name, b in rows:
        per_crate[crate(name)] += b
        for label, pattern in FAMILIES.items():
            if pattern.search(name):
                fam[label] += b
    print("\nbytes per crate:")
    for c, b in sorted(per_crate.items(), key=lambda r: -r[1]):
        if b >= 1000:
            print(f"{b:>9,}  {c}")
    print("\nfamilies:")
    for label in FAMILIES:
        print(f"{fam[label]:>9,}  {label}")


if __name__ == "__main__":
    main()
