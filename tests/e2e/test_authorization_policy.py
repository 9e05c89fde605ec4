"""Actions, degenerate policies, targeting, dry-run and the seed-001 pong-server policies, through Envoy
(authz-semantics §2, §3, §4, §9, §11)."""
import pytest

from meshguard_tools.e2e.policies import allow, assert_allowed, assert_denied, config, deny, policy, rule, src, to

# ---- seed 001: pong-server -------------------------------------------------------------------------

PONG = config(
    policy(
        "deny-pongs",
        {
            "selector": {"matchLabels": {"app": "pong-server"}},
            "action": "DENY",
            "rules": [rule(from_=[src(notNamespaces=["default"])], to_=[to(methods=["GET"], paths=["/pongs"])])],
        },
        api_version="security.istio.io/v1beta1",
    ),
    labels={"app": "pong-server", "version": "v1"},
)


def test_pong_plaintext_is_denied_because_absent_identity_matches_not_namespaces(envoy):
    assert_denied(envoy(PONG).request("GET", "/pongs"))


@pytest.mark.parametrize("identity", ["productpage", "reviews"])
def test_pong_mtls_from_default_namespace_is_allowed(envoy, identity):
    assert_allowed(envoy(PONG).request("GET", "/pongs", identity=identity))


@pytest.mark.parametrize("identity", ["foo-bar", "ingress", "no-uri"])
def test_pong_mtls_from_other_namespace_is_denied(envoy, identity):
    assert_denied(envoy(PONG).request("GET", "/pongs", identity=identity))


def test_pong_rule_only_covers_get_pongs(envoy):
    c = envoy(PONG)
    assert_allowed(c.request("POST", "/pongs", body=b""), "POST is not in methods")
    assert_allowed(c.request("GET", "/pings"))
    assert_allowed(c.request("GET", "/pongs/1"), "exact path /pongs only")


def test_pong_policy_does_not_select_other_workloads(envoy):
    other = dict(PONG, workload={"namespace": "default", "labels": {"app": "ping-server"}})
    assert_allowed(envoy(other).request("GET", "/pongs"))


PONG_TOKEN = config(
    policy(
        "protect-pongs",
        {
            "selector": {"matchLabels": {"app": "pong-server"}},
            "action": "DENY",
            "rules": [
                rule(
                    to_=[to(paths=["/pongs"])],
                    when=[{"key": "request.headers[x-token]", "notValues": ["somerandomsequenceofstrings"]}],
                )
            ],
        },
    ),
    labels={"app": "pong-server", "version": "v1"},
)


def test_pong_token(envoy):
    c = envoy(PONG_TOKEN)
    assert_denied(c.request("GET", "/pongs"), "no header: absent attribute matches notValues")
    assert_denied(c.request("GET", "/pongs", headers=[("x-token", "wrong")]))
    assert_denied(c.request("GET", "/pongs", headers=[("x-token", "SOMERANDOMSEQUENCEOFSTRINGS")]), "case-sensitive")
    assert_denied(c.request("GET", "/pongs", headers=[("x-token", "")]))
    assert_allowed(c.request("GET", "/pongs", headers=[("x-token", "somerandomsequenceofstrings")]))
    assert_allowed(c.request("GET", "/pongs", headers=[("X-Token", "somerandomsequenceofstrings")]), "header names")
    assert_allowed(c.request("GET", "/other"))


# ---- actions and degenerate policies (§3.2, §3.3) ---------------------------------------------------


def test_no_policy_allows_all(envoy):
    c = envoy(config())
    assert_allowed(c.request("GET", "/"))
    assert_allowed(c.request("DELETE", "/anything", identity="foo-bar"))


def test_allow_with_empty_spec_denies_everything(envoy):
    c = envoy(config(policy("allow-nothing", {})))
    assert_denied(c.request("GET", "/"))
    assert_denied(c.request("GET", "/x", identity="productpage"))


def test_allow_with_empty_rules_list_denies_everything(envoy):
    assert_denied(envoy(config(allow("allow-nothing", []))).request("GET", "/"))


def test_allow_with_one_empty_rule_allows_everything(envoy):
    c = envoy(config(allow("allow-all", [{}])))
    assert_allowed(c.request("GET", "/"))
    assert_allowed(c.request("POST", "/x", identity="other-td", body=b"x"))


def test_deny_with_one_empty_rule_denies_everything(envoy):
    c = envoy(config(deny("deny-all", [{}])))
    assert_denied(c.request("GET", "/"))
    assert_denied(c.request("GET", "/", identity="productpage"))


def test_deny_wins_over_allow(envoy):
    c = envoy(config(allow("allow-all", [{}]), deny("deny-admin", [rule(to_=[to(paths=["/admin"])])])))
    assert_allowed(c.request("GET", "/public"))
    assert_denied(c.request("GET", "/admin"))
    assert_denied(c.request("GET", "/admin", identity="productpage"))


def test_deny_wins_even_when_an_allow_rule_matches_exactly(envoy):
    c = envoy(
        config(
            allow("allow-productpage", [rule(from_=[src(principals=["cluster.local/ns/default/sa/productpage"])])]),
            deny("deny-delete", [rule(to_=[to(methods=["DELETE"])])]),
        )
    )
    assert_allowed(c.request("GET", "/a", identity="productpage"))
    assert_denied(c.request("DELETE", "/a", identity="productpage"))
    assert_denied(c.request("GET", "/a", identity="reviews"), "deny by default")


def test_allow_policies_are_ored(envoy):
    c = envoy(
        config(
            allow("allow-get", [rule(to_=[to(methods=["GET"])])]),
            allow("allow-health", [rule(to_=[to(paths=["/healthz"])])]),
        )
    )
    assert_allowed(c.request("GET", "/x"))
    assert_allowed(c.request("POST", "/healthz", body=b""))
    assert_denied(c.request("POST", "/x", body=b""))


def test_fields_of_one_operation_are_anded_and_rules_ored(envoy):
    c = envoy(
        config(
            allow(
                "and-or",
                [
                    rule(to_=[to(methods=["GET"], paths=["/a"])]),
                    rule(to_=[to(methods=["POST"])], when=[{"key": "request.headers[x-ok]", "values": ["1"]}]),
                ],
            )
        )
    )
    assert_allowed(c.request("GET", "/a"))
    assert_denied(c.request("GET", "/b"))
    assert_denied(c.request("PUT", "/a", body=b""))
    assert_allowed(c.request("POST", "/b", headers=[("x-ok", "1")], body=b""))
    assert_denied(c.request("POST", "/b", body=b""))


def test_methods_are_case_sensitive_and_exact(envoy):
    c = envoy(config(allow("get-only", [rule(to_=[to(methods=["GET"])])])))
    assert_allowed(c.request("GET", "/"))
    assert_denied(c.request("HEAD", "/"))
    c2 = envoy(config(allow("lower-get", [rule(to_=[to(methods=["get"])])])))
    assert_denied(c2.request("GET", "/"), "methods: [get] never matches")


def test_not_paths(envoy):
    c = envoy(config(allow("not-private", [rule(to_=[to(notPaths=["/private*"])])])))
    assert_allowed(c.request("GET", "/public"))
    assert_denied(c.request("GET", "/private/x"))


# ---- targeting (§2) ----------------------------------------------------------------------------------


def test_policy_in_another_namespace_does_not_apply(envoy):
    c = envoy(config(deny("deny-all", [{}], namespace="foo")))
    assert_allowed(c.request("GET", "/"))


def test_root_namespace_policy_applies_to_every_namespace(envoy):
    c = envoy(config(deny("deny-all", [rule(to_=[to(paths=["/root-denied"])])], namespace="istio-system")))
    assert_denied(c.request("GET", "/root-denied"))
    assert_allowed(c.request("GET", "/ok"))


def test_root_namespace_allow_nothing_enables_deny_by_default(envoy):
    c = envoy(
        config(
            policy("allow-nothing", {}, namespace="istio-system"),
            allow("allow-get", [rule(to_=[to(methods=["GET"])])]),
        )
    )
    assert_allowed(c.request("GET", "/"))
    assert_denied(c.request("POST", "/", body=b""))


@pytest.mark.parametrize(
    "selector,applies",
    [
        ({"matchLabels": {"app": "details"}}, True),
        ({"matchLabels": {"app": "details", "version": "v1"}}, True),
        ({"matchLabels": {}}, True),
        ({"matchLabels": {"app": "reviews"}}, False),
        ({"matchLabels": {"app": "details", "version": "v2"}}, False),
    ],
)
def test_selector_match_labels_subset(envoy, selector, applies):
    c = envoy(
        config(
            policy("deny-all", {"selector": selector, "action": "DENY", "rules": [{}]}),
            labels={"app": "details", "version": "v1"},
        )
    )
    r = c.request("GET", "/")
    (assert_denied if applies else assert_allowed)(r, str(selector))


def test_policy_with_target_refs_is_ignored_by_a_sidecar(envoy):
    spec = {
        "targetRefs": [{"group": "", "kind": "Service", "name": "details"}],
        "action": "DENY",
        "rules": [{}],
    }
    assert_allowed(envoy(config(policy("waypoint-only", spec))).request("GET", "/"))


# ---- dry-run (§11) -------------------------------------------------------------------------------------

DRY = {"istio.io/dry-run": "true"}


def test_dry_run_deny_is_not_enforced(envoy):
    c = envoy(config(deny("dry-deny-all", [{}], annotations=DRY)))
    assert_allowed(c.request("GET", "/"))
    assert_allowed(c.request("GET", "/admin", identity="foo-bar"))


def test_dry_run_allow_alone_does_not_enable_deny_by_default(envoy):
    c = envoy(config(allow("dry-allow-health", [rule(to_=[to(paths=["/healthz"])])], annotations=DRY)))
    assert_allowed(c.request("GET", "/healthz"))
    assert_allowed(c.request("GET", "/anything-else"))


def test_dry_run_allow_next_to_an_enforced_allow(envoy):
    c = envoy(
        config(
            allow("dry-allow-all", [{}], annotations=DRY),
            allow("allow-get", [rule(to_=[to(methods=["GET"])])]),
        )
    )
    assert_allowed(c.request("GET", "/"))
    assert_denied(c.request("POST", "/", body=b""), "the dry-run ALLOW must not allow")


def test_dry_run_false_is_enforced(envoy):
    c = envoy(config(deny("deny-all", [{}], annotations={"istio.io/dry-run": "false"})))
    assert_denied(c.request("GET", "/"))
