"""The committed example config and demos stay in sync with the generator and load in Envoy."""
import json
import subprocess

import pytest

from meshguard_tools import envoy_config
from meshguard_tools.paths import REPO

DEMOS = sorted(p.stem for p in envoy_config.DEMO_DIR.glob("*.json"))


def test_committed_envoy_yaml_is_up_to_date():
    committed = (REPO / "envoy-test" / "envoy.yaml").read_text(encoding="utf-8")
    assert committed == envoy_config.render_example(), "run: make envoy-test/envoy.yaml"


def test_committed_envoy_yaml_validates(envoy_binary, cert_dir):
    p = subprocess.run(
        [envoy_binary, "--mode", "validate", "-c", "envoy-test/envoy.yaml", "--disable-hot-restart"],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )
    assert p.returncode == 0, p.stdout + p.stderr


@pytest.mark.parametrize("demo", DEMOS)
def test_demo_validates(validate, demo):
    rc, out = validate(envoy_config.load_demo(demo))
    assert rc == 0, out


@pytest.mark.parametrize("demo", DEMOS)
def test_demo_matches_the_schema_if_present(demo):
    schemas = sorted((REPO / "schema").glob("*.json")) if (REPO / "schema").is_dir() else []
    if not schemas:
        pytest.skip("no schema/*.json yet")
    import jsonschema

    pc = envoy_config.load_demo(demo)
    errors = []
    for s in schemas:
        try:
            jsonschema.validate(pc, json.loads(s.read_text(encoding="utf-8")))
            return
        except jsonschema.ValidationError as e:
            errors.append(f"{s.name}: {e.message}")
    pytest.fail(f"{demo} matches no schema: {errors}")
