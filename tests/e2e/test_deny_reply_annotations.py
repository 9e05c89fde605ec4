"""meshguard's own AuthorizationPolicy annotations in the real Envoy (issue 17): a DENY policy's
`meshguard.io/deny-status|-body|-headers` reply (gRPC-shaped for gRPC requests, as Envoy maps HTTP
statuses), the plugin's `denyResponse` for every other authorization denial,
`meshguard.io/case-insensitive-paths`, and the load refusals. `meshguard check` and `convert`
are run against the same configurations."""
import json
import subprocess
from pathlib import Path

import pytest

from meshguard_tools.e2e.policies import DENY_BODY, allow, assert_allowed, config, deny, rule, to

from meshguard_tools.paths import REPO

HIDE = deny("hide-internal", [rule(to_=[to(paths=["/internal/*", "/pkg.Internal/*"])])], annotations={
    "meshguard.io/deny-status": "404",
    "meshguard.io/deny-body": '{"title": "not found"}',
    "meshguard.io/deny-headers": '{"Content-Type": "application/problem+json", "x-why": "hidden"}',
})
TEAPOT = deny("teapot", [rule(to_=[to(paths=["/internal/*"])])], annotations={"meshguard.io/deny-status": "418"})
PLAIN = deny("plain", [rule(to_=[to(paths=["/plain"])])])
ALLOW_GET = allow("allow-get", [rule(to_=[to(methods=["GET"])])])
CI = deny("deny-admin", [rule(to_=[to(paths=["/admin", "/api/{*}/secret"], notPaths=["/admin/ok"])])],
          annotations={"meshguard.io/case-insensitive-paths": "true"})


@pytest.mark.parametrize("http2", [False, True])
def test_the_deciding_annotated_policy_shapes_the_reply(envoy, http2):
    r = envoy(config(HIDE, PLAIN)).request("GET", "/internal/x", http2=http2)
    assert r.status == 404, r
    assert r.body == b'{"title": "not found"}' or r.body == '{"title": "not found"}', r
    assert r.header("content-type") == "application/problem+json", r
    assert r.header("x-why") == "hidden", r
    assert r.header("x-meshguard-decision") == "deny ns[default]-policy[hide-internal]-rule[0]", r
    # A DENY policy without annotations keeps RBAC's reply.
    r = envoy(config(HIDE, PLAIN)).request("GET", "/plain", http2=http2)
    assert (r.status, r.body) == (403, DENY_BODY), r
    assert r.header("x-why") is None, r


def test_the_first_matching_deny_policy_in_order_decides(envoy):
    assert envoy(config(HIDE, TEAPOT)).request("GET", "/internal/x").status == 404
    assert envoy(config(TEAPOT, HIDE)).request("GET", "/internal/x").status == 418


def test_grpc_keeps_a_grpc_shaped_denial_mapped_from_the_status(envoy):
    c = envoy(config(HIDE, PLAIN))
    r = c.request("POST", "/pkg.Internal/Get", grpc=True)
    assert r.status == 200, r  # trailers-only
    assert r.header("grpc-status") == "12", r  # Envoy's httpToGrpcStatus(404) = UNIMPLEMENTED
    assert r.header("x-why") == "hidden", r
    assert r.header("grpc-message") is not None and "not found" in r.header("grpc-message"), r
    # 418 has no gRPC equivalent: UNKNOWN (2); the unannotated DENY stays PERMISSION_DENIED (7).
    r = envoy(config(TEAPOT)).request("POST", "/internal/x", grpc=True)
    assert r.header("grpc-status") == "2", r
    r = c.request("POST", "/plain", grpc=True)
    assert r.header("grpc-status") == "7", r


def test_plugin_deny_response_answers_every_other_authorization_denial(envoy):
    pc = config(HIDE, PLAIN, ALLOW_GET)
    pc["denyResponse"] = {"status": 401, "body": '{"error": "denied"}', "headers": {"Content-Type": "application/json"}}
    c = envoy(pc)
    for method, path in [("POST", "/x"), ("GET", "/plain")]:
        r = c.request(method, path)
        assert r.status == 401, r
        assert r.body in (b'{"error": "denied"}', '{"error": "denied"}'), r
        assert r.header("content-type") == "application/json", r
    assert c.request("GET", "/internal/a").status == 404
    assert_allowed(c.request("GET", "/public"))
    # gRPC: 401 maps to UNAUTHENTICATED (16).
    assert c.request("POST", "/pkg.X/Y", grpc=True).header("grpc-status") == "16"


def test_case_insensitive_paths_deny_every_spelling(envoy):
    c = envoy(config(CI))
    for path in ["/admin", "/ADMIN", "/Admin?x=1", "/api/v1/SECRET", "/API/v2/Secret"]:
        r = c.request("GET", path)
        assert r.status == 403, (path, r)
    for path in ["/admin/ok", "/ADMIN/OK", "/admin/", "/api/v1/secrets"]:
        assert_allowed(c.request("GET", path), path)
    off = deny("deny-admin", [rule(to_=[to(paths=["/admin"])])],
               annotations={"meshguard.io/case-insensitive-paths": "false"})
    assert_allowed(envoy(config(off)).request("GET", "/ADMIN"))


def with_annotations(annotations, spec_action="DENY"):
    p = deny("bad", [rule(to_=[to(paths=["/a"])])], annotations=annotations)
    p["spec"]["action"] = spec_action
    return config(p)


REFUSED = {
    "status below 400": (with_annotations({"meshguard.io/deny-status": "302"}), "meshguard.io/deny-status"),
    "status above 599": (with_annotations({"meshguard.io/deny-status": "600"}), "meshguard.io/deny-status"),
    "status not a number": (with_annotations({"meshguard.io/deny-status": "forbidden"}), "meshguard.io/deny-status"),
    "pseudo-header": (with_annotations({"meshguard.io/deny-headers": '{":status": "200"}'}), "meshguard.io/deny-headers"),
    "hop-by-hop header": (with_annotations({"meshguard.io/deny-headers": '{"Transfer-Encoding": "chunked"}'}),
                          "meshguard.io/deny-headers"),
    "content-length": (with_annotations({"meshguard.io/deny-headers": '{"content-length": "5"}'}),
                       "meshguard.io/deny-headers"),
    "headers not a JSON object": (with_annotations({"meshguard.io/deny-headers": '["x"]'}), "meshguard.io/deny-headers"),
    "body too large": (with_annotations({"meshguard.io/deny-body": "x" * 5000}), "meshguard.io/deny-body"),
    "case-insensitive-paths not a boolean": (with_annotations({"meshguard.io/case-insensitive-paths": "yes"}),
                                             "meshguard.io/case-insensitive-paths"),
    "unknown meshguard annotation": (with_annotations({"meshguard.io/deny-stauts": "404"}), "meshguard.io/deny-stauts"),
    "deny reply on an ALLOW policy": (with_annotations({"meshguard.io/deny-status": "404"}, "ALLOW"), "DENY policy"),
    "denyResponse status": ({**config(), "denyResponse": {"status": 200}}, "denyResponse.status"),
    "denyResponse header": ({**config(), "denyResponse": {"headers": {"Connection": "close"}}}, "denyResponse.headers"),
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_bad_annotations_stop_envoy_naming_the_annotation(validate, name):
    pc, needle = REFUSED[name]
    rc, out = validate(pc)
    assert rc != 0, f"{name}: envoy --mode validate accepted it\n{out[-3000:]}"
    assert needle in out, out[-3000:]
    if needle.startswith("meshguard.io/"):
        assert "policy default/bad" in out, out[-3000:]


@pytest.fixture(scope="module")
def cli() -> str:
    p = subprocess.run(["cargo", "build", "--bin", "meshguard"], cwd=REPO, capture_output=True, text=True,
                       timeout=900)
    if p.returncode != 0:
        pytest.fail(f"cargo build --bin meshguard failed:\n{p.stderr[-3000:]}", pytrace=False)
    return str(REPO / "target" / "debug" / "meshguard")


def test_check_lint_and_convert_agree_with_envoy(envoy, cli, tmp_path):
    pc = config(HIDE, PLAIN, ALLOW_GET)
    pc["denyResponse"] = {"status": 401, "body": "denied"}
    f = tmp_path / "config.json"
    f.write_text(json.dumps(pc))
    c = envoy(pc)
    for method, path, grpc in [("GET", "/internal/x", False), ("POST", "/x", False), ("POST", "/pkg.Internal/Get", True)]:
        args = [cli, "check", str(f), "--method", method, "--path", path, "--json"]
        if grpc:
            args += ["--header", "content-type=application/grpc"]
        out = json.loads(subprocess.run(args, capture_output=True, text=True, timeout=60).stdout)
        r = c.request(method, path, grpc=grpc)
        if grpc:
            assert str(out["reply"]["grpcStatus"]) == r.header("grpc-status"), (out, r)
        else:
            assert out["reply"]["status"] == r.status, (out, r)
            body = r.body.decode() if isinstance(r.body, bytes) else r.body
            assert out["reply"]["body"] == body, (out, r)
        for name, value in out["reply"]["headers"]:
            if grpc and name == "content-type":
                # Envoy's gRPC shaping sets content-type: application/grpc over the configured one.
                assert r.header(name) == "application/grpc", r
                continue
            assert r.header(name) == value, (name, out, r)
    # lint refuses a bad annotation, naming it.
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(with_annotations({"meshguard.io/deny-status": "99"})))
    p = subprocess.run([cli, "lint", str(bad)], capture_output=True, text=True, timeout=60)
    assert p.returncode != 0 and "meshguard.io/deny-status" in p.stderr, p
    # convert keeps the annotations.
    yaml_file = tmp_path / "policies.json"
    yaml_file.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": [HIDE, CI]}))
    p = subprocess.run([cli, "convert", str(yaml_file), "--to", "config"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p
    for key, value in {**HIDE["metadata"]["annotations"], **CI["metadata"]["annotations"]}.items():
        assert key in p.stdout and (value in p.stdout or json.dumps(value) in p.stdout), (key, p.stdout)
