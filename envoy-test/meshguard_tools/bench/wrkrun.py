"""Run wrk against the client-side Envoy with a generated Lua script and read its summary as JSON."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

from meshguard_tools import launcher

# The request rotation of every wrk script (bench and soak): ``%(specs)s`` is one ``{method, path, headers}``
# Lua table per request, sent in turn; a %-format template like the scripts that append to it.
ROTATION = r"""
local specs = {
%(specs)s
}
local reqs = {}
local n = 0
init = function(args)
  for i, s in ipairs(specs) do
    reqs[i] = wrk.format(s[1], s[2], s[3], nil)
  end
end
request = function()
  n = n + 1
  return reqs[(n - 1) %% #reqs + 1]
end
"""

LUA = ROTATION + r"""done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests":%%d,"duration_us":%%d,"bytes":%%d,"err_connect":%%d,"err_read":%%d,' ..
    '"err_write":%%d,"err_status":%%d,"err_timeout":%%d,"p50_us":%%.1f,"p90_us":%%.1f,"p99_us":%%.1f,' ..
    '"mean_us":%%.1f,"max_us":%%.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean, latency.max))
end
"""


def lua_str(s: str) -> str:
    if any(c in s for c in '\\"\n\r') or not s.isascii():
        raise ValueError(f"unsupported characters for the wrk script: {s!r}")
    return '"' + s + '"'


def write_script(path: Path, requests: list) -> None:
    """requests: [{"method", "path", "headers": {...}}], sent in rotation."""
    lines = []
    for r in requests:
        hdrs = ", ".join(f"[{lua_str(k)}] = {lua_str(v)}" for k, v in r.get("headers", {}).items())
        lines.append(f"  {{{lua_str(r['method'])}, {lua_str(r['path'])}, {{{hdrs}}}}},")
    path.write_text(LUA % {"specs": "\n".join(lines)}, encoding="utf-8")


def run(url: str, script: Path, *, threads: int, connections: int, duration_s: float, log: Path,
        timeout_pad: float = 60.0) -> dict:
    """One wrk run; returns the summary dict (latencies in microseconds)."""
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration_s:g}s", "--timeout", "10s",
            "-s", str(script), url]
    log.write_bytes(b"")
    p = launcher.spawn(argv, log)
    try:
        p.wait(timeout=duration_s + timeout_pad)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"wrk did not finish: {' '.join(argv)}")
    finally:
        launcher.stop(p)
    text = log.read_text(errors="replace")
    for line in text.splitlines():
        if line.startswith("BENCHJSON "):
            return json.loads(line[len("BENCHJSON "):])
    raise RuntimeError(f"wrk printed no summary (exit {p.returncode}):\n{text[-2000:]}")
