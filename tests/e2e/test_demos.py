"""Every curl example `make run` prints (envoy-test/demos/<demo>.examples.yaml) does what it says; the README
lists every demo; an unknown demo gets the list, not a traceback."""
import subprocess
import sys

import pytest

from meshguard_tools import envoy_config
from meshguard_tools.demo_examples import load_examples
from meshguard_tools.e2e.policies import OK_BODY
from meshguard_tools.paths import REPO

DEMOS = envoy_config.demo_names()
CASES = [(demo, i, ex) for demo in DEMOS for i, ex in enumerate(load_examples(demo))]


@pytest.mark.parametrize("demo,i,ex", CASES, ids=[f"{d}-{i}" for d, i, _ in CASES])
def test_demo_example(envoy, demo, i, ex):
    c = envoy(envoy_config.load_demo(demo))
    r = c.request(ex.get("method", "GET"), ex["path"], headers=[tuple(h) for h in ex.get("headers", [])],
                  identity=ex.get("identity"), body=b"" if ex.get("method", "GET") != "GET" else None)
    assert r.status == ex["expect"], f"{ex['say']}: {r!r}"
    if r.status == 200:
        assert r.body == OK_BODY


def test_readme_lists_every_demo():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    lines = readme[readme.index("| `DEMO=` | what it shows |"):].splitlines()
    table = lines[2:lines.index("")]  # after the header and the |---| line, up to the blank line
    listed = {line.split("`")[1] for line in table}
    assert len(DEMOS) >= 7 and listed == set(DEMOS), f"README lists {sorted(listed)}, the demos are {DEMOS}"


def test_unknown_demo_prints_the_list_instead_of_a_traceback():
    cli = subprocess.run([sys.executable, "-m", "meshguard_tools.envoy_config", "--demo", "no-such-demo"],
                         capture_output=True, text=True, timeout=60)
    make = subprocess.run(["make", "--no-print-directory", "run-demo-known", "DEMO=no-such-demo"], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    for p in (cli, make):
        assert p.returncode == 2, p
        assert "Traceback" not in p.stderr and "unknown demo 'no-such-demo'" in p.stderr, p.stderr
        assert all(d in p.stderr for d in DEMOS), p.stderr
    known = subprocess.run(["make", "--no-print-directory", "run-demo-known", "DEMO=pong"], cwd=REPO,
                           capture_output=True, text=True, timeout=60)
    assert known.returncode == 0, known
