"""Paths: Istio path templates (authz-semantics §7.1), string match forms (§5) and what the filter sees
after Envoy's path normalization (§7, §10)."""
import pytest

from meshguard_tools.e2e.policies import allow, assert_allowed, assert_denied, config, deny, rule, to

TEMPLATE_POLICY = config(
    allow("path-templates", [rule(to_=[to(paths=["/allow/admin/{**}", "/foo/{*}/bar/{**}", "/store/{**}/cart"])])])
)

# tests/integration/security/authz_test.go TestAuthz_PathTemplating (authz-semantics §7.1)
TEMPLATE_CASES = [
    ("/allow/admin/", True),
    ("/allow/admin", False),
    ("/allow/admin?param=value", False),
    ("/allow/user/", False),
    ("/allow", False),
    ("/allow/admin/temp", True),
    ("/allow/admin/temp.txt", True),
    ("/allow/admin/foo/temp.txt", True),
    ("/foo/buzz/bar/bat.txt", True),
    ("/foo/buzz/bar/bat.temp.txt", True),
    ("/foo/buzz/bar/bat/fuzz.txt", True),
    ("/foo/buzz/bar/bat", True),
    ("/foo/bar/bat.txt", False),
    ("/foo//bar/bat.txt", False),
    ("/store//cart", True),
    ("/store/foo/cart", True),
    ("/store/foo/bar/cart", True),
    ("/store/cart", False),
]


@pytest.mark.parametrize("path,allowed", TEMPLATE_CASES)
def test_path_templates(envoy, path, allowed):
    r = envoy(TEMPLATE_POLICY).request("GET", path)
    (assert_allowed if allowed else assert_denied)(r, path)


STRING_FORMS = config(
    allow("forms", [rule(to_=[to(paths=["/exact", "/prefix/*", "*.png", "/service/*health"])])])
)


@pytest.mark.parametrize(
    "path,allowed",
    [
        ("/exact", True),
        ("/exact/", False),
        ("/Exact", False),  # case-sensitive
        ("/prefix/", True),
        ("/prefix/a/b", True),
        ("/prefix", False),
        ("/img/a.png", True),
        ("/img/a.png?x=1", True),  # query removed before matching
        ("/img/a.PNG", False),
        ("/service/*health", True),  # a star in the middle is a literal star
        ("/service/xhealth", False),
        ("/service/health", False),
    ],
)
def test_string_match_forms(envoy, path, allowed):
    r = envoy(STRING_FORMS).request("GET", path)
    (assert_allowed if allowed else assert_denied)(r, path)


def test_presence_path_matches_any_path(envoy):
    c = envoy(config(allow("any-path", [rule(to_=[to(paths=["*"])])])))
    assert_allowed(c.request("GET", "/"))
    assert_allowed(c.request("GET", "/a/b"))


# ---- normalization (Istio BASE = HCM normalize_path: true) -----------------------------------------

BASE_DENY = config(deny("deny-private", [rule(to_=[to(paths=["/private", "/app/admin", "/admin"])])]))


@pytest.mark.parametrize(
    "raw,denied",
    [
        ("/public", False),
        ("/private", True),
        ("/public/../private", True),  # dot segments removed before authorization
        ("/public/./../private", True),
        ("/app/%2E./admin", True),  # %2E decoded (unreserved) then dot segments removed -> /admin
        ("/app\\admin", True),  # backslash -> slash: /app/admin
        ("/admin?x=1", True),  # query stripped for `paths`
        ("/admin/?x=1", False),  # /admin/ is not /admin
        ("/%61dmin", True),  # %61 = 'a', an unreserved char: decoded by normalize_path
        ("/app//admin", False),  # BASE does not merge slashes
        ("/ADMIN", False),  # case is not normalized and paths are case-sensitive
    ],
)
def test_base_normalization(envoy, raw, denied):
    r = envoy(BASE_DENY).request("GET", raw)
    (assert_denied if denied else assert_allowed)(r, raw)


def test_fragment_never_reaches_an_allow(envoy):
    """Istio strips `#fragment` before matching (§10). Envoy 1.40's HTTP/1 codec goes further and rejects a
    request-target with a fragment (400, runtime http_reject_path_with_fragment). Either way: never a 200."""
    r = envoy(BASE_DENY).request("GET", "/admin#frag")
    assert r.status in (400, 403), r


def test_path_header_condition_keeps_query(envoy):
    """`request.headers[:path]` is the :path header: normalized by the HCM but with the query (§7)."""
    c = envoy(config(deny("deny-raw-path", [rule(when=[{"key": "request.headers[:path]", "values": ["/admin"]}])])))
    assert_denied(c.request("GET", "/admin"))
    assert_allowed(c.request("GET", "/admin?x=1"), "query is part of :path")
    assert_denied(c.request("GET", "/public/../admin"), ":path is normalized before filters run")
    c2 = envoy(config(deny("deny-raw-query", [rule(when=[{"key": "request.headers[:path]", "values": ["/admin?x=1"]}])])))
    assert_denied(c2.request("GET", "/admin?x=1"))
    assert_allowed(c2.request("GET", "/admin"))


MODE_DENY = config(deny("deny-admin", [rule(to_=[to(paths=["/app/admin", "/app/admin/abc"])])]))


@pytest.mark.parametrize(
    "mode,raw,denied",
    [
        ("BASE", "/app//admin", False),
        ("MERGE_SLASHES", "/app//admin", True),
        ("MERGE_SLASHES", "/app/\\/\\/\\admin", True),  # -> /app/admin (matrix §10)
        ("BASE", "/app//../admin", True),  # -> /app/admin (matrix §10)
        ("MERGE_SLASHES", "/app//../admin", True),
        ("BASE", "/%2Fapp%5cadmin%5Cabc", False),  # escaped slashes are kept under BASE
        ("MERGE_SLASHES", "/%2Fapp%5cadmin%5Cabc", False),
        ("DECODE_AND_MERGE_SLASHES", "/%2Fapp%5cadmin%5Cabc", True),  # -> /app/admin/abc
        ("DECODE_AND_MERGE_SLASHES", "/app%2fadmin", True),
    ],
)
def test_normalization_modes(envoy, mode, raw, denied):
    r = envoy(MODE_DENY, normalization=mode).request("GET", raw)
    (assert_denied if denied else assert_allowed)(r, f"{mode} {raw}")
