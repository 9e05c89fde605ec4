"""Every curl example `make run` prints (envoy-test/demos/<demo>.examples.yaml) does what it says."""
import pytest

from meshguard_tools import envoy_config
from meshguard_tools.demo_examples import load_examples
from meshguard_tools.e2e.policies import OK_BODY

CASES = [
    (demo, i, ex)
    for demo in sorted(p.stem for p in envoy_config.DEMO_DIR.glob("*.json"))
    for i, ex in enumerate(load_examples(demo))
]


@pytest.mark.parametrize("demo,i,ex", CASES, ids=[f"{d}-{i}" for d, i, _ in CASES])
def test_demo_example(envoy, demo, i, ex):
    c = envoy(envoy_config.load_demo(demo))
    r = c.request(ex.get("method", "GET"), ex["path"], headers=[tuple(h) for h in ex.get("headers", [])],
                  identity=ex.get("identity"), body=b"" if ex.get("method", "GET") != "GET" else None)
    assert r.status == ex["expect"], f"{ex['say']}: {r!r}"
    if r.status == 200:
        assert r.body == OK_BODY
