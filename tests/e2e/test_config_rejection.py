"""A configuration the filter cannot enforce exactly must stop Envoy from starting (fail closed):
`envoy --mode validate` runs the plugin's on_configure (authz-semantics §3.4, §18)."""
import copy
import json

import pytest

from meshguard_tools.e2e.policies import allow, config, deny, policy, rule, src, to

VALID = config(
    allow("allow-productpage", [rule(from_=[src(principals=["cluster.local/ns/default/sa/productpage"])],
                                     to_=[to(methods=["GET"], paths=["/details/*"])])]),
    deny("deny-admin", [rule(to_=[to(paths=["/admin*"])], when=[{"key": "request.headers[x-role]", "notValues": ["ops"]}])]),
)


def test_valid_config_passes(validate):
    rc, out = validate(VALID)
    assert rc == 0, out


def test_empty_resources_pass(validate):
    rc, out = validate(config())
    assert rc == 0, out


def with_spec(spec, **kw):
    return config(policy("bad", spec, **kw))


BAD = {
    "unknown field in a policy spec": with_spec({"action": "DENY", "rules": [{}], "actionn": "ALLOW"}),
    "unknown field in an operation": with_spec({"action": "DENY", "rules": [rule(to_=[to(path=["/admin"])])]}),
    "unknown field in a source": with_spec({"action": "ALLOW", "rules": [rule(from_=[src(principal=["x"])])]}),
    "unknown when key": with_spec(
        {"action": "DENY", "rules": [rule(when=[{"key": "destination.labels[app]", "values": ["details"]}])]}
    ),
    "misspelt when key": with_spec(
        {"action": "DENY", "rules": [rule(when=[{"key": "request.header[x-role]", "values": ["admin"]}])]}
    ),
    "action CUSTOM": with_spec(
        {"action": "CUSTOM", "provider": {"name": "ext-authz"}, "rules": [rule(to_=[to(paths=["/admin"])])]}
    ),
    "unknown action": with_spec({"action": "REJECT", "rules": [{}]}),
    "bad CIDR": with_spec({"action": "DENY", "rules": [rule(from_=[src(ipBlocks=["10.0.0.300/8"])])]}),
    "bad CIDR prefix length": with_spec({"action": "ALLOW", "rules": [rule(from_=[src(remoteIpBlocks=["10.0.0.0/33"])])]}),
    "empty string in paths": with_spec({"action": "DENY", "rules": [rule(to_=[to(paths=[""])])]}),
    "empty string in principals": with_spec({"action": "ALLOW", "rules": [rule(from_=[src(principals=[""])])]}),
    "empty string in when values": with_spec(
        {"action": "DENY", "rules": [rule(when=[{"key": "request.headers[x-a]", "values": [""]}])]}
    ),
    "port out of range": with_spec({"action": "DENY", "rules": [rule(to_=[to(ports=["70000"])])]}),
    "when without values": with_spec({"action": "DENY", "rules": [rule(when=[{"key": "request.headers[x-a]"}])]}),
    "DENY without rules": with_spec({"action": "DENY"}),
    "invalid path template": with_spec({"action": "ALLOW", "rules": [rule(to_=[to(paths=["/foo/{**}/bar/{*}"])])]}),
    "not JSON": "{not json",
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_invalid_config_is_rejected(validate, name):
    rc, out = validate(BAD[name])
    assert rc != 0, f"{name}: envoy --mode validate accepted it\n{out[-3000:]}"


def test_unknown_top_level_field_is_rejected(validate):
    pc = copy.deepcopy(VALID)
    pc["decisionHeaders"] = True
    rc, out = validate(pc)
    assert rc != 0, out[-3000:]


def test_rejection_names_the_problem(validate):
    rc, out = validate(BAD["bad CIDR"])
    assert rc != 0
    assert "10.0.0.300/8" in out or "ipBlocks" in out, out[-3000:]


def test_envoy_refuses_to_start_with_a_bad_config(envoy_binary, cert_dir, tmp_path):
    """Not only validate mode: a real start fails too (no silent allow)."""
    import subprocess

    from meshguard_tools.e2e.fixtures import E2E_DIR, WASM, free_port, render_to_file

    E2E_DIR.mkdir(parents=True, exist_ok=True)
    path = render_to_file(tmp_path, BAD["action CUSTOM"], dict(
        plain_port=free_port(), mtls_port=free_port(), admin_port=free_port(), wasm_path=str(WASM), cert_dir=str(cert_dir)))
    p = subprocess.run([envoy_binary, "-c", str(path), "--disable-hot-restart", "--log-level", "warn"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode != 0, p.stdout + p.stderr
