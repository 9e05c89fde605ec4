"""request.headers[...] conditions: repeated headers, presence, case (authz-semantics §5, §8, §10)."""
import pytest

from meshguard_tools.e2e.policies import assert_allowed, assert_denied, config, deny, rule

ROLE = config(deny("deny-admin-role", [rule(when=[{"key": "request.headers[x-role]", "values": ["admin"]}])]))


@pytest.mark.parametrize("headers,denied", [
    ([], False),
    ([("x-role", "admin")], True),
    ([("x-role", "user")], False),
    ([("x-role", "user"), ("x-role", "admin")], True),   # every value is matched, not only the first
    ([("x-role", "admin"), ("x-role", "user")], True),
    ([("X-Role", "user"), ("x-ROLE", "admin")], True),
    ([("x-role", "user,admin")], False),                 # one value "user,admin" is not exactly "admin"
    ([("x-role", "Admin")], False),                      # values are case-sensitive
])
def test_repeated_headers(envoy, headers, denied):
    r = envoy(ROLE).request("GET", "/", headers=headers)
    (assert_denied if denied else assert_allowed)(r, str(headers))


def test_repeated_headers_over_http2(envoy):
    r = envoy(ROLE).request("GET", "/", headers=[("x-role", "user"), ("x-role", "admin")], http2=True)
    assert_denied(r)


def test_header_presence_matches_empty_value(envoy):
    c = envoy(config(deny("deny-debug", [rule(when=[{"key": "request.headers[x-debug]", "values": ["*"]}])])))
    assert_denied(c.request("GET", "/", headers=[("x-debug", "1")]))
    assert_denied(c.request("GET", "/", headers=[("x-debug", "")]), "`*` on headers is presence, even empty")
    assert_allowed(c.request("GET", "/"))


def test_header_prefix_and_suffix(envoy):
    c = envoy(config(deny("deny-ua", [rule(when=[{"key": "request.headers[User-Agent]", "values": ["curl/*", "*bot"]}])])))
    assert_denied(c.request("GET", "/", headers=[("user-agent", "curl/8.0")]))
    assert_denied(c.request("GET", "/", headers=[("user-agent", "googlebot")]))
    assert_allowed(c.request("GET", "/", headers=[("user-agent", "Mozilla/5.0")]))


def test_not_values_with_repeated_header(envoy):
    # notValues = NOT(any value matches): a request carrying the token once is not denied
    c = envoy(config(deny("need-token", [rule(when=[{"key": "request.headers[x-token]", "notValues": ["secret"]}])])))
    assert_denied(c.request("GET", "/"))
    assert_allowed(c.request("GET", "/", headers=[("x-token", "secret")]))
    assert_denied(c.request("GET", "/", headers=[("x-token", "nope")]))


def test_method_pseudo_header_condition(envoy):
    c = envoy(config(deny("deny-put", [rule(when=[{"key": "request.headers[:method]", "values": ["PUT"]}])])))
    assert_denied(c.request("PUT", "/", body=b""))
    assert_allowed(c.request("GET", "/"))
