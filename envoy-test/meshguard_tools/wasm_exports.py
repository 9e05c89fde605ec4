#!/usr/bin/env python3
"""The module's exports: the post-link step of `make build` that drops the proxy-wasm callbacks meshguard
does not implement, and the check that the shipped module exports exactly what it should.

    python -m meshguard_tools.wasm_exports strip IN.wasm -o OUT.wasm   (`make build`)
    python -m meshguard_tools.wasm_exports check target/wasm32-wasip1/release/meshguard.wasm   (`make test`)

Why. The Rust proxy-wasm SDK exports every callback of the ABI (rustc exports every `#[no_mangle]` function
of a cdylib), and proxy-wasm-cpp-host enters the VM for each callback the module exports: on every request
Envoy called `proxy_on_response_body` and `proxy_on_log`, in which meshguard does nothing, for about 1,700
instructions each (README, Performance). When a callback is not exported, the host does what the SDK's
default does (proxy-wasm-cpp-host `src/context.cc`: `onRequestBody`/`onResponseBody` return
`FilterDataStatus::Continue`, the trailer callbacks `FilterTrailersStatus::Continue`, `onLog` does nothing,
`onDone` returns true; `src/wasm.cc` `getFunctions` looks each `proxy_on_*` export up and leaves it null when
absent; `ContextBase::onStart` starts the VM as if `proxy_on_vm_start` returned true). So removing exactly those
callbacks whose SDK default meshguard keeps (it never overrides them in `src/filter.rs`) changes no behaviour.

Kept, and why: `proxy_on_context_create` (the SDK creates the Rust context), `proxy_on_request_headers` (the
decision), `proxy_on_response_headers` (`decisionHeader`), `proxy_on_delete` (the SDK frees the context: without
it every request's context would stay in the SDK's map), `proxy_on_configure` (the configuration load),
`proxy_on_tick` (counter flush, JWKS schedule), `proxy_on_http_call_response` (JWKS fetch), the memory, the
allocator `proxy_on_memory_allocate`, `_initialize` and the ABI marker `proxy_abi_version_0_2_1`; and the network
callbacks (`proxy_on_new_connection`, `..._downstream_data`, `..._upstream_data`, the two `..._connection_close`):
meshguard is an HTTP filter, and mistakenly deployed as a network filter these make the SDK trap, so the
connection fails closed, where a module without them would let every connection through (the host's default is
`Continue`). They cost nothing on an HTTP request.

The rewrite only edits the export section (the functions stay in the code section; nothing else moves), is
deterministic and stdlib-only, so `make build` needs nothing beyond python3. Exit status: 0 ok, 1 the exports
differ from the expected set (check) or an export to drop is missing (strip), 2 not a valid module.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from meshguard_tools.wasm_imports import Reader, WasmError, uleb128

class MissingExport(WasmError):
    """An export to drop is not in the module (an SDK update renamed or removed it)."""


KINDS = {0: "func", 1: "table", 2: "memory", 3: "global", 4: "tag"}
EXPORT_SECTION = 7

# Callbacks removed after linking: the host's behaviour without them is the SDK's default, which
# meshguard keeps (see the module doc).
DROPPED = (
    "proxy_on_vm_start",
    "proxy_on_request_body",
    "proxy_on_request_trailers",
    "proxy_on_response_body",
    "proxy_on_response_trailers",
    "proxy_on_log",
    "proxy_on_done",
    "proxy_on_queue_ready",
    "proxy_on_foreign_function",
    "proxy_on_grpc_receive_initial_metadata",
    "proxy_on_grpc_receive",
    "proxy_on_grpc_receive_trailing_metadata",
    "proxy_on_grpc_close",
)

# What the shipped module exports, exactly.
EXPECTED = (
    ("memory", "memory"),
    ("_initialize", "func"),
    ("proxy_abi_version_0_2_1", "func"),
    ("proxy_on_memory_allocate", "func"),
    ("proxy_on_context_create", "func"),
    ("proxy_on_configure", "func"),
    ("proxy_on_tick", "func"),
    ("proxy_on_http_call_response", "func"),
    ("proxy_on_request_headers", "func"),
    ("proxy_on_response_headers", "func"),
    ("proxy_on_delete", "func"),
    ("proxy_on_new_connection", "func"),
    ("proxy_on_downstream_data", "func"),
    ("proxy_on_downstream_connection_close", "func"),
    ("proxy_on_upstream_data", "func"),
    ("proxy_on_upstream_connection_close", "func"),
)


def _sections(data: bytes):
    """(id, start of the section's header, start of its content, end) for every section."""
    if data[:4] != b"\0asm":
        raise WasmError("bad magic (not a wasm module)")
    if data[4:8] != b"\x01\0\0\0":
        raise WasmError(f"unsupported wasm version {data[4:8].hex()}")
    r = Reader(data, 8)
    while r.pos < len(data):
        head = r.pos
        sid = r.byte()
        size = r.uleb()
        start, end = r.pos, r.pos + size
        if end > len(data):
            raise WasmError(f"section {sid} runs past the end of the file")
        yield sid, head, start, end
        r.pos = end


def _entries(data: bytes, start: int, end: int) -> list[tuple[str, int, int, bytes]]:
    """(name, kind, index, raw bytes of the entry) for every entry of an export section."""
    s = Reader(data, start, end)
    out = []
    for _ in range(s.uleb()):
        first = s.pos
        name = s.name()
        kind = s.byte()
        index = s.uleb()
        if kind not in KINDS:
            raise WasmError(f"unknown export kind {kind}")
        out.append((name, kind, index, data[first : s.pos]))
    if s.pos != end:
        raise WasmError("export section size mismatch")
    return out


def exports(data: bytes) -> list[tuple[str, str]]:
    """(name, kind) for every export of the module, in section order."""
    for sid, _, start, end in _sections(data):
        if sid == EXPORT_SECTION:
            return [(name, KINDS[kind]) for name, kind, _, _ in _entries(data, start, end)]
    return []


def strip(data: bytes, drop: tuple[str, ...] = DROPPED) -> bytes:
    """The module with the exports named in `drop` removed; every other byte is kept. Raises WasmError
    (MissingExport) when one of them is not exported (an SDK update renamed it: the list must be looked at again)."""
    for sid, head, start, end in _sections(data):
        if sid != EXPORT_SECTION:
            continue
        entries = _entries(data, start, end)
        names = {e[0] for e in entries}
        missing = [n for n in drop if n not in names]
        if missing:
            raise MissingExport(f"not exported, cannot drop: {', '.join(missing)}")
        kept = [e for e in entries if e[0] not in drop]
        body = uleb128(len(kept)) + b"".join(e[3] for e in kept)
        section = bytes([EXPORT_SECTION]) + uleb128(len(body)) + body
        return data[:head] + section + data[end:]
    raise WasmError("no export section")


def check(data: bytes, expected=EXPECTED) -> list[str]:
    """The differences between the module's exports and `expected` (empty: exactly the expected set)."""
    found = exports(data)
    problems = []
    if len(found) != len(set(found)):
        problems.append("an export is listed twice")
    for name, kind in sorted(set(found) - set(expected)):
        problems.append(f"unexpected export {name} ({kind})")
    for name, kind in sorted(set(expected) - set(found)):
        problems.append(f"missing export {name} ({kind})")
    return problems


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    s = sub.add_parser("strip", help="write the module without the callbacks meshguard does not implement")
    s.add_argument("wasm", type=Path)
    s.add_argument("-o", "--out", type=Path, required=True)
    c = sub.add_parser("check", help="the module must export exactly the expected set")
    c.add_argument("wasm", type=Path)
    a = ap.parse_args(argv)
    try:
        data = a.wasm.read_bytes()
        if a.command == "strip":
            out = strip(data)
            a.out.write_bytes(out)
            print(f"wasm_exports: {a.out}: {len(DROPPED)} callbacks removed from the exports "
                  f"({len(data)} -> {len(out)} bytes)")
            return 0
        problems = check(data)
    except MissingExport as e:
        print(f"wasm_exports: {a.wasm}: {e}", file=sys.stderr)
        return 1
    except (OSError, WasmError) as e:
        print(f"wasm_exports: {a.wasm}: {e}", file=sys.stderr)
        return 2
    if problems:
        print(f"wasm_exports: {a.wasm}: the exports differ from the expected set:", file=sys.stderr)
        for p in problems:
            print(f"  {p}", file=sys.stderr)
        return 1
    print(f"wasm_exports: {a.wasm}: {len(EXPECTED)} exports, exactly the expected set")
    return 0


if __name__ == "__main__":
    sys.exit(main())
