#!/usr/bin/env python3
"""Check that a WebAssembly module imports only from allowed modules.

    python -m meshguard_tools.wasm_imports target/wasm32-wasip1/release/meshguard.wasm [--allow env --allow ...]

Parses the binary import section itself (no wabt/wasm-tools needed). Envoy provides the proxy-wasm ABI
under ``env`` and a few WASI functions under ``wasi_snapshot_preview1``; any other import module makes
Envoy refuse the plugin ("missing import") at load time, so this catches it before an Envoy run.
Exit status: 0 ok, 1 a forbidden import, 2 not a valid module.
"""
from __future__ import annotations

import argparse
import sys

DEFAULT_ALLOWED = ("env", "wasi_snapshot_preview1")
KINDS = {0: "func", 1: "table", 2: "memory", 3: "global", 4: "tag"}


class WasmError(Exception):
    pass


class Reader:
    def __init__(self, data: bytes, pos: int = 0, end: int | None = None):
        self.data, self.pos, self.end = data, pos, len(data) if end is None else end

    def byte(self) -> int:
        if self.pos >= self.end:
            raise WasmError("unexpected end of data")
        b = self.data[self.pos]
        self.pos += 1
        return b

    def uleb(self) -> int:
        result = shift = 0
        while True:
            b = self.byte()
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7
            if shift > 63:
                raise WasmError("LEB128 too long")

    def name(self) -> str:
        n = self.uleb()
        if self.pos + n > self.end:
            raise WasmError("name runs past its section")
        raw = self.data[self.pos : self.pos + n]
        self.pos += n
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise WasmError(f"import name is not UTF-8: {raw!r}") from e

    def limits(self) -> None:
        flags = self.byte()
        self.uleb()
        if flags & 1:
            self.uleb()


def uleb128(n: int) -> bytes:
    """``n`` as unsigned LEB128: WebAssembly's integer encoding, and protobuf's varint."""
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if not n:
            out.append(b)
            return bytes(out)
        out.append(b | 0x80)


def imports(data: bytes) -> list[tuple[str, str, str]]:
    """Return (module, field, kind) for every import of the module."""
    if data[:4] != b"\0asm":
        raise WasmError("bad magic (not a wasm module)")
    if data[4:8] != b"\x01\0\0\0":
        raise WasmError(f"unsupported wasm version {data[4:8].hex()}")
    r = Reader(data, 8)
    out: list[tuple[str, str, str]] = []
    while r.pos < len(data):
        sid = r.byte()
        size = r.uleb()
        start, end = r.pos, r.pos + size
        if end > len(data):
            raise WasmError(f"section {sid} runs past the end of the file")
        if sid == 2:
            s = Reader(data, start, end)
            for _ in range(s.uleb()):
                module, field = s.name(), s.name()
                kind = s.byte()
                if kind == 0:
                    s.uleb()  # type index
                elif kind == 1:
                    s.byte()  # reftype
                    s.limits()
                elif kind == 2:
                    s.limits()
                elif kind == 3:
                    s.byte()  # valtype
                    s.byte()  # mutability
                elif kind == 4:
                    s.byte()  # attribute
                    s.uleb()  # type index
                else:
                    raise WasmError(f"unknown import kind {kind}")
                out.append((module, field, KINDS[kind]))
            if s.pos != end:
                raise WasmError("import section size mismatch")
        r.pos = end
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("wasm")
    ap.add_argument("--allow", action="append", help=f"allowed import module (default: {', '.join(DEFAULT_ALLOWED)})")
    ap.add_argument("-q", "--quiet", action="store_true")
    a = ap.parse_args(argv)
    allowed = set(a.allow or DEFAULT_ALLOWED)
    try:
        with open(a.wasm, "rb") as f:
            found = imports(f.read())
    except (OSError, WasmError) as e:
        print(f"wasm_imports: {a.wasm}: {e}", file=sys.stderr)
        return 2
    bad = [i for i in found if i[0] not in allowed]
    if not a.quiet:
        for module, field, kind in found:
            print(f"  {'ok ' if module in allowed else 'BAD'} {kind:6} {module}.{field}")
    if bad:
        print(f"wasm_imports: {a.wasm}: {len(bad)} import(s) outside {sorted(allowed)}:", file=sys.stderr)
        for module, field, kind in bad:
            print(f"  {module}.{field} ({kind})", file=sys.stderr)
        return 1
    print(f"wasm_imports: {a.wasm}: {len(found)} imports, all from {sorted(allowed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
