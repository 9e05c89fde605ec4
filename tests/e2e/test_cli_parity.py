"""`meshguard check` answers as the filter in Envoy does: every request of the demos
(envoy-test/demos/*.examples.yaml) and of the seed walk-throughs (tests/e2e/test_seed_*.py) is sent to a real
Envoy running meshguard.wasm AND decided by `meshguard check --json` on the same configuration; a denial's
status and body, and an allowed request's 200, must be equal.

The seed walk-throughs are replayed by running their own test functions against recording clients: the
module's ``listener_clients`` is wrapped so every Client it hands out records (configuration, listener side,
request, Envoy's response); nothing is restated here. The CLI gets what Envoy would tell the filter: the raw
path (it normalizes as the HCM does, Istio's default BASE as in the test Envoy), the headers, the client
certificate's SPIFFE ID, the listener port, 127.0.0.1 as source, the workload from node metadata, and the
listener direction when the configuration says `auto`."""
from __future__ import annotations

import importlib
import inspect
import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from meshguard_tools import certs, envoy_config
from meshguard_tools.demo_examples import load_examples
from meshguard_tools.paths import REPO
SEED_MODULES = sorted(p.stem for p in Path(__file__).parent.glob("test_seed_0*.py"))


def spiffe_ids() -> dict[str, str]:
    """Client certificate name -> URI SAN, from certs.sh (the source of every test certificate)."""
    text = certs.SCRIPT.read_text(encoding="utf-8")
    return dict(re.findall(r"^\s*([\w-]+)=(spiffe://\S+?)\s*\\?$", text, re.M))


SPIFFE = spiffe_ids()


@pytest.fixture(scope="session")
def cli() -> str:
    """The CLI in the dev profile (`cargo test` has usually built it); MESHGUARD_CLI=/path overrides."""
    env = os.environ.get("MESHGUARD_CLI")
    if env:
        return env
    p = subprocess.run(["cargo", "build", "--bin", "meshguard"], cwd=REPO, capture_output=True, text=True,
                       timeout=900)
    if p.returncode != 0:
        pytest.fail(f"cargo build --bin meshguard failed:\n{p.stderr[-3000:]}", pytrace=False)
    return str(REPO / "target" / "debug" / "meshguard")


@dataclass
class Sent:
    """One request as sent to Envoy, the listener's setting, and Envoy's answer."""
    config: dict
    direction: str  # the listener's traffic_direction
    node: dict | None
    method: str
    path: str
    headers: list
    identity: str | None
    port: int
    status: int
    body: bytes
    protocol: str = "http1"


def check_args(s: Sent, config_file: str) -> list[str]:
    args = [config_file, "--json", "--method", s.method, "--path", s.path, "--port", str(s.port),
            "--source-ip", "127.0.0.1"]
    host = "localhost"
    for k, v in s.headers:
        if k.lower() == "host":
            host = v
        else:
            args += ["--header", f"{k}={v}"]
    args += ["--host", host]
    if s.identity:
        args += ["--principal", SPIFFE[s.identity]]
    if s.config.get("direction", "auto") == "auto" and s.direction == "OUTBOUND":
        args += ["--direction", "outbound"]
    if s.node and "workload" not in s.config:
        args += ["--namespace", s.node["NAMESPACE"]]
        for k, v in s.node.get("LABELS", {}).items():
            args += ["--label", f"{k}={v}"]
    return args


def mismatches(cli: str, sent: list[Sent], workdir: Path) -> tuple[int, list[str]]:
    """(requests compared, differences) between Envoy's answers and `meshguard check`."""
    files: dict[str, str] = {}
    out, compared = [], 0
    for s in sent:
        if s.protocol != "http1":
            continue  # gRPC/h2 replies are Envoy's trailers-only conversion of the same local reply
        text = json.dumps(s.config, sort_keys=True)
        if text not in files:
            f = workdir / f"config-{len(files)}.json"
            f.write_text(text, encoding="utf-8")
            files[text] = str(f)
        args = check_args(s, files[text])
        p = subprocess.run([cli, "check", *args], capture_output=True, text=True, timeout=60)
        if p.returncode not in (0, 2):
            out.append(f"meshguard check {' '.join(args)}: exit {p.returncode}: {p.stderr.strip()}")
            continue
        v = json.loads(p.stdout)
        compared += 1
        if v["decision"] == "allow":
            ok = s.status == 200
        else:
            ok = (v["status"], v["body"].encode()) == (s.status, s.body)
        if not ok:
            out.append(f"{s.method} {s.path} identity={s.identity} headers={s.headers}: Envoy {s.status} "
                       f"{s.body[:200]!r}, check {v['status']} {v.get('body', '')[:200]!r} ({v.get('summary')})")
    return compared, out


# --------------------------------------------------------------------------------------------------
# demos

DEMOS = sorted(p.stem for p in envoy_config.DEMO_DIR.glob("*.json"))


@pytest.mark.parametrize("demo", DEMOS)
def test_check_answers_every_demo_example_as_envoy(envoy, cli, tmp_path, demo):
    config = envoy_config.load_demo(demo)
    c = envoy(config)
    sent = []
    for ex in load_examples(demo):
        method = ex.get("method", "GET")
        identity = ex.get("identity")
        headers = [tuple(h) for h in ex.get("headers", [])]
        r = c.request(method, ex["path"], headers=headers, identity=identity,
                      body=b"" if method != "GET" else None)
        port = c.mtls_port if identity else c.plain_port
        sent.append(Sent(config, "INBOUND", None, method, ex["path"], headers, identity, port, r.status, r.body))
    if not sent:
        pytest.skip(f"{demo} has no examples")
    compared, bad = mismatches(cli, sent, tmp_path)
    print(f"\ncli parity: demo {demo}: {compared} requests compared")
    assert compared == len(sent)
    assert not bad, "\n".join(bad)


# Paths Envoy's HCM normalizes before the filter (Istio's default BASE in the test Envoy), on the bookinfo
# demo: `check` must normalize them the same way to reach the same answer.
NORMALIZED_PATHS = ["/details/../admin", "/admin/details/../0", "/details/%2e%2e/admin", "/details/./0",
                    "/details//0", "/Details/0", "/details/0?x=/../admin", "/details/%30", "/details\\..\\admin",
                    "/details/0#/../admin"]


@pytest.mark.parametrize("identity", ["productpage", None])
def test_check_normalizes_paths_as_envoy(envoy, cli, tmp_path, identity):
    config = envoy_config.load_demo("bookinfo")
    c = envoy(config)
    sent = []
    for path in NORMALIZED_PATHS:
        r = c.request("GET", path, identity=identity)
        port = c.mtls_port if identity else c.plain_port
        sent.append(Sent(config, "INBOUND", None, "GET", path, [], identity, port, r.status, r.body))
    compared, bad = mismatches(cli, sent, tmp_path)
    print(f"\ncli parity: normalized paths ({identity or 'plaintext'}): {compared} requests compared")
    assert compared == len(sent)
    assert not bad, "\n".join(bad)


# --------------------------------------------------------------------------------------------------
# seed walk-throughs


class Recording:
    """A Client that records what it sends and what Envoy answers."""

    def __init__(self, client, config: dict, direction: str, node: dict | None, log: list[Sent]):
        self._client, self._config, self._direction, self._node, self._log = client, config, direction, node, log

    def __getattr__(self, name):
        return getattr(self._client, name)

    def request(self, method="GET", path="/", headers=(), identity=None, listener=None, http2=False,
                grpc=False, body=None):
        headers = list(headers)
        r = self._client.request(method, path, headers=headers, identity=identity, listener=listener, http2=http2,
                                 grpc=grpc, body=body)
        side = listener or ("mtls" if identity else "plain")
        self._log.append(Sent(self._config, self._direction, self._node, method, path, headers, identity,
                              self._client.port(side), r.status, r.body,
                              "http1" if not (http2 or grpc) else "h2"))
        return r


def fixture_function(obj):
    """The plain function behind a ``@pytest.fixture`` (pytest 8.3: ``__pytest_wrapped__``; 8.4+:
    ``_get_wrapped_function``)."""
    if hasattr(obj, "_get_wrapped_function"):
        return obj._get_wrapped_function()
    return obj.__pytest_wrapped__.obj


@pytest.mark.parametrize("module_name", SEED_MODULES)
def test_check_answers_every_seed_walkthrough_request_as_envoy(envoy_pool, cli, tmp_path, monkeypatch,
                                                                module_name):
    module = importlib.import_module(module_name)
    log: list[Sent] = []
    real = module.listener_clients

    def recording_listener_clients(pool, configs, directions=None, **opts):
        clients = real(pool, configs, directions, **opts)
        first = next(iter(configs))
        node = opts.get("node_metadata")
        return {name: Recording(c, configs[name], (directions or {}).get(name, "INBOUND"),
                                node if name == first else None, log)
                for name, c in clients.items()}

    monkeypatch.setattr(module, "listener_clients", recording_listener_clients)
    fixtures = {}
    for name, obj in vars(module).items():
        if hasattr(obj, "_pytestfixturefunction") or hasattr(obj, "_get_wrapped_function") or \
                hasattr(obj, "__pytest_wrapped__"):
            fn = fixture_function(obj)
            fixtures[name] = fn
    values = {"envoy_pool": envoy_pool}
    for name, fn in fixtures.items():
        params = inspect.signature(fn).parameters
        values[name] = fn(**{p: values[p] for p in params})
    tests = 0
    for name, fn in vars(module).items():
        if not (name.startswith("test_") and callable(fn)):
            continue
        marks = [m for m in getattr(fn, "pytestmark", []) if m.name == "parametrize"]
        params = inspect.signature(fn).parameters
        if marks:
            argnames = [a.strip() for a in marks[0].args[0].split(",")] if isinstance(marks[0].args[0], str) \
                else list(marks[0].args[0])
            cases = [c if isinstance(c, (tuple, list)) else (c,) for c in marks[0].args[1]]
        else:
            argnames, cases = [], [()]
        for case in cases:
            kwargs = dict(zip(argnames, case))
            kwargs.update({p: values[p] for p in params if p not in kwargs})
            fn(**kwargs)
            tests += 1
    assert tests and log, f"{module_name}: nothing replayed"
    compared, bad = mismatches(cli, log, tmp_path)
    print(f"\ncli parity: {module_name}: {tests} tests, {compared} requests compared")
    assert compared == sum(1 for s in log if s.protocol == "http1")
    assert not bad, "\n".join(bad)
