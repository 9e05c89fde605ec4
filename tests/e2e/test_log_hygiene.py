"""Envoy's log, with the wasm component at debug level (as every e2e Envoy runs), never carries a credential
or a query string: requests with ``?access_token=<jwt>&password=...``, an ``Authorization`` header and a
``Cookie`` go through allow, 401 and 403 paths, and none of the secrets appears at any level; the deny line
names the path without its query. The configuration is announced by one warning line per load, however many
VMs (main thread, each worker) load it."""
import time

from meshguard_tools.e2e.policies import allow, config, deny, rule, src
from meshguard_tools.e2e.jwt_tokens import jwt_rule, request_authentication, token

LABELS = {"app": "web-api"}
CONFIG = config(
    request_authentication("web-api-jwt", jwt_rule(audiences=["web-api"]), labels=LABELS),
    deny("deny-admin", [rule(to_=[{"operation": {"paths": ["/admin*"]}}])]),
    allow("require-jwt", [rule(from_=[src(requestPrincipals=["*"])])]),
    labels=LABELS,
)
PASSWORD = "hunter2-Pa55word-in-query"
COOKIE = "session-cookie-value-7f3a9c"


def test_no_credential_or_query_string_reaches_the_log(envoy):
    c = envoy(CONFIG)
    good = token()
    bad = good[:-6] + "AAAAAA"  # signature broken: 401
    secrets = [good, bad, PASSWORD, COOKIE, good.split(".")[2], bad.split(".")[2]]
    cookie = ("cookie", f"sid={COOKIE}")
    requests = [
        # token in the query, allowed
        (f"/data?access_token={good}&password={PASSWORD}", [cookie], 200),
        # token in the header and the query, denied by the DENY rule
        (f"/admin/users?access_token={good}&password={PASSWORD}", [("authorization", f"Bearer {good}"), cookie], 403),
        # a bad token: 401 before authorization
        (f"/data?password={PASSWORD}", [("authorization", f"Bearer {bad}"), cookie], 401),
        (f"/data?access_token={bad}&password={PASSWORD}", [cookie], 401),
        # no token: the ALLOW policy does not match
        (f"/data?password={PASSWORD}", [cookie, ("authorization", f"Basic {PASSWORD}")], 403),
    ]
    for path, headers, status in requests:
        r = c.request("GET", path, headers=headers)
        assert r.status == status, (path, r)
    time.sleep(0.3)  # --file-flush-interval-msec 20
    log = c.envoy.log_path.read_text("utf-8", "replace")
    assert "meshguard" in log
    for secret in secrets:
        assert secret not in log, f"a credential reached Envoy's log: ...{secret[-12:]}"
    assert "password=" not in log and "access_token=" not in log
    meshguard_lines = [line for line in log.splitlines() if "meshguard" in line]
    deny_lines = [line for line in meshguard_lines if "decision=deny ns[default]-policy[deny-admin]-rule[0]" in line]
    assert deny_lines, "\n".join(meshguard_lines[-20:])
    assert " path=/admin/users " in deny_lines[-1], deny_lines[-1]
    jwt_lines = [line for line in meshguard_lines if "jwt_rejected" in line]
    assert any(" path=/data" in line and "?" not in line.split(" path=")[1] for line in jwt_lines), jwt_lines
    assert not any("?" in line.split(" path=", 1)[1] for line in meshguard_lines if " path=" in line)


def test_one_start_up_line_per_configuration(envoy):
    c = envoy(config(allow("anyone", [rule()]), labels={"app": "startup-line"}))
    c.request("GET", "/")
    time.sleep(0.3)
    lines = [line for line in c.envoy.log_path.read_text("utf-8", "replace").splitlines()
             if "configuration loaded" in line and "startup-line" in line]
    # Envoy loads it in the main thread's VM and in each worker's (--concurrency 2): the others log at debug.
    warnings = [line for line in lines if "[warning]" in line]
    assert len(warnings) == 1, lines
    assert len(lines) >= 3, lines
    assert 'labels={"app": "startup-line"}' in warnings[0]
