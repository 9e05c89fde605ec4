"""Bypass suite, class A (known-bypasses.md A1-A8): path spellings against a DENY rule and an ALLOW-with-notPaths
rule, through the real Envoy under Istio's normalization modes (authz-semantics §7, §10).

One plugin configuration holds both forms, told apart by the decision header:
* ``DENY paths: ["/admin", "/private"]``  -> a blocked spelling of ``/admin`` is ``deny:deny-admin``;
* ``ALLOW notPaths: ["/secret"]``        -> a blocked spelling of ``/secret`` is ``deny:none``.
Every case is written once with ``X`` for the protected word and runs in both forms; the expectation is what Istio's
RBAC would decide after Envoy's HCM normalization (and 400 where Envoy's codec refuses the request first).
"""
import pytest

from meshguard_tools.e2e.bypass import check
from meshguard_tools.e2e.policies import allow, config, deny, rule, to

PATHS = config(
    deny("deny-admin", [rule(to_=[to(paths=["/admin", "/private"])])]),
    allow("allow-not-secret", [rule(to_=[to(notPaths=["/secret", "/private"])])]),
)
FORMS = {"admin": "deny:deny-admin", "secret": "deny:none"}
BLOCK, PASS = "block", "pass"

# (raw path with X, expected under BASE, reason)
BASE_CASES = [
    ("/X", BLOCK, "baseline"),
    # A1 dot segments (CVE-2019-9901): removed by normalize_path before any filter
    ("/public/../X", BLOCK, "dot-dot removed"),
    ("/public/./../X", BLOCK, "dot and dot-dot removed"),
    ("/public/.././X", BLOCK, "dot-dot then dot removed"),
    ("/../X", BLOCK, "dot-dot above the root stays at the root"),
    ("/a/b/../../X", BLOCK, "two levels up"),
    ("/public/%2E%2E/X", BLOCK, "%2E is unreserved: decoded, then dot-dot removed"),
    ("/public/%2e%2e/X", BLOCK, "lower-case %2e decoded too"),
    ("/public/.%2E/X", BLOCK, "mixed literal and encoded dots"),
    ("/public/%2E/%2E%2E/X", BLOCK, "encoded dot then encoded dot-dot"),
    ("/public/%2e%2e/%2e/X", BLOCK, "encoded dot-dot then encoded dot"),
    ("/x/..;/X", BLOCK, "Envoy 1.40 treats `..;` as a dot-dot segment (backend sees /X too)"),
    ("/public\\..\\X", BLOCK, "backslash becomes slash, then dot-dot removed"),
    ("/public/..%2FX", PASS, "BASE keeps %2F: `..%2FX` is one segment, backend sees it unchanged"),
    ("/app%2f..%2fX", PASS, "BASE keeps %2f (escaped slashes only decoded by DECODE_AND_MERGE_SLASHES)"),
    # A2 multiple and escaped slashes: BASE neither merges nor decodes (Istio's documented weakness)
    ("//X", PASS, "BASE does not merge slashes (use MERGE_SLASHES)"),
    ("///X", PASS, "BASE does not merge slashes"),
    ("/\\X", PASS, "backslash -> `//X`, not merged under BASE"),
    ("/X//", PASS, "`/X//` is not `/X`"),
    ("/%2FX", PASS, "BASE keeps %2F"),
    ("/%2fX", PASS, "BASE keeps %2f"),
    ("/%5CX", PASS, "BASE keeps %5C"),
    ("/%5cX", PASS, "BASE keeps %5c"),
    ("\\X", "400", "request-target not starting with `/`: Envoy's codec refuses it"),
    # A3 fragment (CVE-2021-39156)
    ("/X#frag", "400", "Envoy 1.40 rejects a fragment in the request-target (never reaches a filter)"),
    ("/X#", "400", "empty fragment rejected too"),
    ("/X?a#b", "400", "query then fragment rejected too"),
    ("/X%23frag", PASS, "encoded `#` is not a fragment: the path is `/X%23frag`"),
    # A4 query (CVE-2020-8595)
    ("/X?", BLOCK, "empty query removed before matching"),
    ("/X?a=b", BLOCK, "query removed before matching"),
    ("/X?/../other", BLOCK, "dots in the query are not path segments"),
    ("/X;?", PASS, "`;` stays part of the path (see A5)"),
    # A5 path parameters: Envoy 1.40 keeps `;params` (the backend sees them too), so Istio's RBAC does not match
    ("/X;a=b", PASS, "`;a=b` kept by Envoy 1.40; a Tomcat-like backend may ignore it (known Istio gap)"),
    ("/X;", PASS, "`;` kept by Envoy 1.40"),
    ("/X;a=b/xyz", PASS, "`;a=b` kept, extra segment"),
    ("/;/X", PASS, "`;` segment is not a dot segment"),
    ("/X,a=b/xyz", PASS, "`,` is a literal"),
    # A6 case: paths are case-sensitive, Envoy does not lower-case
    ("/Xupper", PASS, "placeholder replaced below: first letter upper-cased"),
    ("/XUPPER", PASS, "placeholder replaced below: all upper-case"),
    ("/Xpct41", PASS, "placeholder replaced below: upper-case first letter percent-encoded (decoded to upper case)"),
    # A7 percent-encoding of unreserved characters: decoded once by BASE
    ("/Xpctlow", BLOCK, "placeholder replaced below: first letter percent-encoded lower case -> decoded"),
    ("/Xpctmid", BLOCK, "placeholder replaced below: third letter percent-encoded -> decoded"),
    ("/Xdouble", PASS, "placeholder replaced below: double encoding `%25xx` decoded once only"),
    ("/X%00", "400", "NUL in the path: Envoy answers 400"),
    ("/X%20", PASS, "%20 is not unreserved: not decoded"),
    ("/X%09", PASS, "%09 is not unreserved: not decoded"),
    ("/X%2e", PASS, "`/X.` is not `/X`"),
    # A8 trailing slash and prefix boundaries
    ("/X/", PASS, "`/X/` is not `/X` (author error: add `/X/*`)"),
    ("/X/.", PASS, "`/X/.` normalizes to `/X/`"),
    ("/X/..", PASS, "`/X/..` normalizes to `/`"),
    ("/X/sub/..", PASS, "normalizes to `/X/`"),
    ("/Xtra", PASS, "exact `/X` does not match a longer name"),
]


def spell(template: str, word: str) -> str:
    special = {
        "/Xupper": "/" + word[0].upper() + word[1:],
        "/XUPPER": "/" + word.upper(),
        "/Xpct41": "/%" + format(ord(word[0].upper()), "02X") + word[1:],
        "/Xpctlow": "/%" + format(ord(word[0]), "02x") + word[1:],
        "/Xpctmid": "/" + word[:2] + "%" + format(ord(word[2]), "02X") + word[3:],
        "/Xdouble": "/%25" + format(ord(word[0]), "02x") + word[1:],
    }
    return special.get(template) or template.replace("X", word)


def expected(outcome: str, word: str) -> str:
    return {BLOCK: FORMS[word], PASS: "allow"}.get(outcome, outcome)


def ids(cases):
    return [c[0] for c in cases]


@pytest.mark.parametrize("word", list(FORMS))
@pytest.mark.parametrize("template,outcome,reason", BASE_CASES, ids=ids(BASE_CASES))
def test_base(envoy, template, outcome, reason, word):
    path = spell(template, word)
    check(envoy(PATHS).request("GET", path), expected(outcome, word), f"BASE {path!r} ({reason})")


MERGE_CASES = [
    ("//X", BLOCK, "merged to /X"),
    ("///X", BLOCK, "merged to /X"),
    ("/\\X", BLOCK, "backslash -> `//X` -> merged"),
    ("/public//../X", PASS, "dot-dot removal runs before merging: it eats the empty segment -> /public/X (matrix §10)"),
    ("/X//", PASS, "merged to `/X/`, still not `/X`"),
    ("/%2FX", PASS, "MERGE_SLASHES keeps %2F"),
    ("/%5CX", PASS, "MERGE_SLASHES keeps %5C"),
    ("/app%2f..%2fX", PASS, "escaped slashes kept"),
    ("/X?a=b", BLOCK, "query removed"),
]

DECODE_CASES = [
    ("/%2FX", BLOCK, "%2F decoded to `/`, then merged"),
    ("/%2fX", BLOCK, "%2f decoded, merged"),
    ("/%5CX", BLOCK, "%5C decoded to `\\`, to `/`, merged"),
    ("/%5cX", BLOCK, "%5c decoded, merged"),
    ("/%2F%2FX", BLOCK, "both decoded and merged"),
    ("/app%2f..%2fX", BLOCK, "decoded to /app/../X -> /X"),
    ("/public/..%2FX", BLOCK, "decoded to /public/../X -> /X"),
    ("//X", BLOCK, "merged"),
    ("/X%2F", PASS, "decoded to `/X/`: trailing slash is not `/X`"),
    ("/%252FX", PASS, "double-encoded slash decoded once: `/%2FX` literal segment"),
    ("/X%00", "400", "NUL still refused"),
]


@pytest.mark.parametrize("word", list(FORMS))
@pytest.mark.parametrize("template,outcome,reason", MERGE_CASES, ids=ids(MERGE_CASES))
def test_merge_slashes(envoy, template, outcome, reason, word):
    path = spell(template, word)
    check(envoy(PATHS, normalization="MERGE_SLASHES").request("GET", path), expected(outcome, word),
          f"MERGE_SLASHES {path!r} ({reason})")


@pytest.mark.parametrize("word", list(FORMS))
@pytest.mark.parametrize("template,outcome,reason", DECODE_CASES, ids=ids(DECODE_CASES))
def test_decode_and_merge_slashes(envoy, template, outcome, reason, word):
    path = spell(template, word)
    check(envoy(PATHS, normalization="DECODE_AND_MERGE_SLASHES").request("GET", path), expected(outcome, word),
          f"DECODE_AND_MERGE_SLASHES {path!r} ({reason})")


@pytest.mark.parametrize("path,expect,reason", [
    ("/admin", "deny:deny-admin", "h2 baseline"),
    ("/public/../admin", "deny:deny-admin", "h2 :path is normalized like HTTP/1"),
    ("/public/%2e%2e/admin", "deny:deny-admin", "encoded dot-dot over h2"),
    ("/admin?x=1", "deny:deny-admin", "query over h2"),
    ("/public/../secret", "deny:none", "ALLOW notPaths over h2"),
], ids=["admin", "dot-dot", "encoded-dot-dot", "query", "notPaths-dot-dot"])
def test_http2_paths(envoy, path, expect, reason):
    check(envoy(PATHS).request("GET", path, http2=True), expect, f"h2 {path} ({reason})")
