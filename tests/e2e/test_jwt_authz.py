"""AuthorizationPolicy rules on verified Keycloak claims, through the real Envoy.

Expectations: authz-semantics §6.5 (requestPrincipals = iss/sub, notRequestPrincipals ["*"] DENY = require a JWT),
§8 (request.auth.claims[a][b] nested, list claims match any element, scope split on spaces,
request.auth.audiences / presenter), jwt.md §4.2.
"""
import pytest

from meshguard_tools.e2e.policies import DENY_BODY, allow, assert_allowed, config, deny, rule, src, to
from meshguard_tools.e2e.jwt_tokens import ALICE, BOB, bearer, jwt_rule, principal, request_authentication, token

WEB_API = {"app": "web-api"}


def claim(path: str, *values, negate: bool = False) -> dict:
    return {"key": f"request.auth.claims{path}", ("notValues" if negate else "values"): list(values)}


PC = config(
    request_authentication("keycloak", jwt_rule(audiences=["web-api", "account"]), labels=WEB_API),
    # "require JWT": deny any request without a valid token (authz-semantics §6.5)
    deny("require-jwt", [rule(from_=[src(notRequestPrincipals=["*"])])]),
    allow("web-api", [
        rule(to_=[to(paths=["/admin/*"])], when=[claim("[realm_access][roles]", "admin")]),
        rule(to_=[to(paths=["/email/*"])], when=[claim("[scope]", "email")]),
        rule(from_=[src(requestPrincipals=[principal(ALICE)])], to_=[to(paths=["/alice/*"])]),
        rule(to_=[to(paths=["/articles/*"], methods=["GET"])],
             when=[claim("[resource_access][web-api][roles]", "articles.read")]),
        rule(to_=[to(paths=["/account/*"])], when=[{"key": "request.auth.audiences", "values": ["account"]}]),
        rule(to_=[to(paths=["/frontend/*"])], when=[{"key": "request.auth.presenter", "values": ["frontend"]}]),
        rule(to_=[to(paths=["/public/*"])]),
    ]),
    labels=WEB_API,
)


@pytest.fixture
def c(envoy):
    return envoy(PC)


def get(c, path, tok=None):
    return c.request("GET", path, headers=[bearer(tok)] if tok else [])


def assert_denied_by(r, policy: str | None) -> None:
    assert (r.status, r.body) == (403, DENY_BODY), r
    assert r.header("x-meshguard-decision") == (f"deny ns[default]-policy[{policy}]-rule[0]" if policy else "deny none"), r


def assert_allowed_by(r, rule_index: int) -> None:
    assert_allowed(r)
    assert r.header("x-meshguard-decision") == f"allow ns[default]-policy[web-api]-rule[{rule_index}]", r


def test_realm_role_admin(c):
    assert_allowed_by(get(c, "/admin/users", token(realm_roles=["offline_access", "admin"])), 0)
    assert_denied_by(get(c, "/admin/users", token(realm_roles=["offline_access", "user"])), None)
    # a prefix of a role, or the role in another place of the token, is not the role
    assert_denied_by(get(c, "/admin/users", token(realm_roles=["administrator"])), None)
    assert_denied_by(get(c, "/admin/users", token(realm_roles=[], client_roles=["admin"])), None)


def test_realm_roles_as_a_single_string_match_too(c):
    # the matcher is OR(list contains v, claim == v) (authz-semantics §8)
    assert_allowed_by(get(c, "/admin/x", token(realm_access={"roles": "admin"})), 0)


def test_scope_is_split_on_spaces(c):
    # "openid profile email" is the list [openid, profile, email] for the matcher (jwt.md §3.6, §4.2)
    assert_allowed_by(get(c, "/email/inbox", token(scope="openid profile email")), 1)
    assert_denied_by(get(c, "/email/inbox", token(scope="openid profile")), None)
    assert_denied_by(get(c, "/email/inbox", token(scope="openid emails")), None)


def test_request_principal_is_issuer_slash_subject(c):
    assert_allowed_by(get(c, "/alice/profile", token(sub=ALICE)), 2)
    assert_denied_by(get(c, "/alice/profile", token(sub=BOB, username="bob")), None)


def test_client_role_nested_three_levels(c):
    assert_allowed_by(get(c, "/articles/1", token(client_roles=["articles.read"])), 3)
    assert_denied_by(get(c, "/articles/1", token(client_roles=["articles.write"])), None)


def test_audiences_and_presenter(c):
    assert_allowed_by(get(c, "/account/x", token(aud=["web-api", "account"])), 4)
    assert_denied_by(get(c, "/account/x", token(aud="web-api")), None)
    assert_allowed_by(get(c, "/frontend/x", token(azp="frontend")), 5)
    assert_denied_by(get(c, "/frontend/x", token(azp="cli")), None)


def test_not_request_principals_star_requires_a_token(c):
    # no token: DENY notRequestPrincipals ["*"] matches, whatever the ALLOW rules say
    assert_denied_by(get(c, "/public/index.html"), "require-jwt")
    assert_allowed_by(get(c, "/public/index.html", token()), 6)
