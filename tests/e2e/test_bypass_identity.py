"""Bypass suite, class E (known-bypasses.md E1-E5): peer identity from the mTLS client certificate, with plaintext
peers, certificates without a URI SAN, other trust domains, `*`-prefixed principals, regex metacharacters and odd
SPIFFE URIs (authz-semantics §5, §6, §9; README: identity only from the verified certificate, first URI SAN).

One plugin configuration: each ALLOW rule is scoped to its own path ``/a/<case>``; DENY rules to ``/d/<case>`` (an
ALLOW rule opens ``/d/*``). Every case sends the same request from every identity and lists who gets a 200.
"""
import pytest

from meshguard_tools.e2e.bypass import EXTRA_IDENTITIES, bypass_cert_dir, check, with_certs  # noqa: F401 (fixture)
from meshguard_tools.e2e.policies import allow, config, deny, rule, src, to

PLAIN = None
SPIFFE = ["productpage", "reviews", "foo-bar", "ingress", "other-td"]
BASE_IDS = [PLAIN, *SPIFFE, "no-uri"]
# nested-ns, ns-only, dot-ns, dot-sa, not-spiffe (two-uris only in its own test: the filter sees its first SAN only)
EXTRA = [name for name in EXTRA_IDENTITIES if name != "two-uris"]
ALL = BASE_IDS + EXTRA
FOO = {"foo-bar", "other-td"}  # the identities in namespace foo, sa bar (two trust domains)

# (case, source or when, identities that match; the rest get 403, reason)
ALLOW_CASES = [
    # E1 negative fields: an absent identity (plaintext) matches every not* field (ISTIO-SECURITY-2021-004)
    ("notPrincipals", dict(notPrincipals=["cluster.local/ns/default/sa/productpage"]), set(ALL) - {"productpage"},
     "plaintext and non-SPIFFE certs match a not* field"),
    ("notNamespaces", dict(notNamespaces=["foo"]), set(ALL) - FOO - {"nested-ns", "dot-sa", "not-spiffe"},
     "plaintext matches notNamespaces; `/ns/foo/` anywhere in the URI is namespace foo (Istio regex)"),
    ("notServiceAccounts", dict(notServiceAccounts=["foo/bar"]), set(ALL) - FOO, "plaintext matches notServiceAccounts"),
    ("notTrustDomains", dict(notTrustDomains=["other-td"]), set(ALL) - {"other-td"}, "plaintext matches notTrustDomains"),
    ("notPrincipals-star", dict(notPrincipals=["*"]), {PLAIN}, "only an absent identity is not `*`"),
    ("when-notValues-source.namespace", {"when": [{"key": "source.namespace", "notValues": ["foo"]}]},
     set(ALL) - FOO - {"nested-ns", "dot-sa", "not-spiffe"}, "when-form of notNamespaces"),
    # positive forms never match plaintext
    ("principals-star", dict(principals=["*"]), set(ALL) - {PLAIN}, "`*` = any certificate, SPIFFE or not, never plaintext"),
    ("namespaces-star", dict(namespaces=["*"]), set(ALL) - {PLAIN, "no-uri", "ns-only"},
     "`*` namespace needs `/ns/<x>/` in the identity"),
    ("trustDomains-star", dict(trustDomains=["*"]), set(ALL) - {PLAIN, "no-uri", "not-spiffe"}, "any SPIFFE identity"),
    # E2 `*`-prefixed principals
    ("principals-suffix", dict(principals=["*/ns/foo/sa/bar"]), FOO, "suffix matches any trust domain (CVE-2020-16844)"),
    ("principals-suffix-short", dict(principals=["*/sa/bar"]), FOO | {"dot-ns"}, "suffix is a plain suffix"),
    ("principals-suffix-non-spiffe", dict(principals=["*example.test"]), set(),
     "a suffix principal still needs `spiffe://`: the DNS-SAN-only cert does not match"),
    ("principals-dns-san", dict(principals=["no-uri-client.example.test"]), set(),
     "`spiffe://` is prepended: a DNS SAN never equals a principal"),
    ("principals-prefix", dict(principals=["cluster.local/ns/foo/*"]), {"foo-bar", "dot-sa"}, "prefix within the trust domain"),
    # E5 trust domains
    ("principals-exact-local-td", dict(principals=["cluster.local/ns/foo/sa/bar"]), {"foo-bar"},
     "another trust domain is another principal (no aliases configured)"),
    ("trustDomains-exact", dict(trustDomains=["cluster.local"]), set(SPIFFE) - {"other-td"} | set(EXTRA) - {"not-spiffe"},
     "exact trust domain"),
    ("trustDomains-boundary", dict(trustDomains=["other-t"]), set(), "`other-t` is not a prefix of the trust domain `other-td`"),
    ("trustDomains-prefix", dict(trustDomains=["other*"]), {"other-td"}, "prefix within the trust-domain segment"),
    # E3 regex metacharacters are literal (CVE-2026-39350)
    ("namespaces-dot", dict(namespaces=["f.o"]), set(), "`.` is literal: not foo, not fxo"),
    ("namespaces-dot-star", dict(namespaces=[".*"]), set(), "`.` literal then `*`: no namespace starts with `.`"),
    ("namespaces-glob", dict(namespaces=["f*"]), FOO | {"dot-ns", "dot-sa", "nested-ns", "not-spiffe"},
     "namespaces: `*` is a glob anywhere"),
    ("serviceAccounts-dot", dict(serviceAccounts=["foo/b.r"]), set(), "`.` is literal in service accounts: not bar, not bxr"),
    ("serviceAccounts-ns-dot", dict(serviceAccounts=["f.o/bar"]), set(), "`.` is literal in the namespace part"),
    ("serviceAccounts-exact", dict(serviceAccounts=["foo/bar"]), FOO, "control: any trust domain, exact ns and sa"),
    ("principals-suffix-dot", dict(principals=["*/ns/f.o/sa/bar"]), set(), "`.` in a suffix principal is literal"),
    # E4 namespace pattern: Istio's `.*/ns/<ns>/.*` finds `/ns/foo/` anywhere in the identity (pinned Istio behaviour)
    ("namespaces-foo", dict(namespaces=["foo"]), FOO | {"dot-sa", "nested-ns", "not-spiffe"},
     "Istio: `/ns/foo/` anywhere (nested-ns: spiffe://.../ns/evil/sa/x/ns/foo/y; not-spiffe: https://.../ns/foo/...)"),
    ("principals-exact-not-spiffe", dict(principals=["cluster.local/ns/foo/sa/bar"]), {"foo-bar"},
     "an https:// URI with the same path is not the SPIFFE principal"),
]


def _allow_rule(case: str, fields: dict) -> dict:
    if "when" in fields:
        return rule(to_=[to(paths=[f"/a/{case}"])], when=fields["when"])
    return rule(from_=[src(**fields)], to_=[to(paths=[f"/a/{case}"])])


# (case, DENY source, identities that are DENIED, reason)
DENY_CASES = [
    ("namespaces", dict(namespaces=["foo"]), FOO | {"dot-sa", "nested-ns", "not-spiffe"},
     "E1: a DENY on namespaces does not stop plaintext (use STRICT mTLS or notNamespaces *)"),
    ("notNamespaces-star", dict(notNamespaces=["*"]), {PLAIN, "no-uri", "ns-only"},
     "E1 mitigation: deny anything without a namespace"),
    ("notPrincipals-star", dict(notPrincipals=["*"]), {PLAIN}, "deny plaintext"),
    ("principals-suffix", dict(principals=["*/ns/foo/sa/bar"]), FOO, "E2: suffix principal denies every trust domain"),
    ("serviceAccounts-dot", dict(serviceAccounts=["foo/b.r"]), set(), "E3: literal `.`, denies nobody"),
    ("notTrustDomains", dict(notTrustDomains=["cluster.local"]), {PLAIN, "other-td", "no-uri", "not-spiffe"},
     "E5: everything outside the local trust domain, plaintext included"),
]

IDENTITY = config(
    allow("per-case", [_allow_rule(c, f) for c, f, _, _ in ALLOW_CASES] + [rule(to_=[to(paths=["/d/*"])])]),
    *[deny(f"deny-{c}", [rule(from_=[src(**f)], to_=[to(paths=[f"/d/{c}"])])]) for c, f, _, _ in DENY_CASES],
)


@pytest.fixture
def client(envoy, bypass_cert_dir):
    return with_certs(envoy(IDENTITY), bypass_cert_dir)


def _who(identity):
    return identity or "plaintext"


@pytest.mark.parametrize("case,fields,allowed,reason", ALLOW_CASES, ids=[c[0] for c in ALLOW_CASES])
def test_allow_identity(client, case, fields, allowed, reason):
    failures = []
    for ident in ALL:
        r = client.request("GET", f"/a/{case}", identity=ident)
        want = "allow" if ident in allowed else "deny:none"
        try:
            check(r, want, f"{_who(ident)}")
        except AssertionError as e:
            failures.append(str(e).splitlines()[0])
    assert not failures, f"ALLOW {fields} ({reason}):\n" + "\n".join(failures)


@pytest.mark.parametrize("case,fields,denied,reason", DENY_CASES, ids=[c[0] for c in DENY_CASES])
def test_deny_identity(client, case, fields, denied, reason):
    failures = []
    for ident in ALL:
        r = client.request("GET", f"/d/{case}", identity=ident)
        want = f"deny:deny-{case}" if ident in denied else "allow"
        try:
            check(r, want, f"{_who(ident)}")
        except AssertionError as e:
            failures.append(str(e).splitlines()[0])
    assert not failures, f"DENY {fields} ({reason}):\n" + "\n".join(failures)


@pytest.mark.xfail(strict=True, reason="README deliberate difference: Wasm sees only the first URI SAN; Istio's RBAC "
                                       "tries every SAN and would deny this certificate")
def test_second_uri_san_is_invisible(client):
    """A certificate with URI SANs productpage then foo/bar: Istio denies it under DENY namespaces [foo]."""
    check(client.request("GET", "/d/namespaces", identity="two-uris"), "deny:deny-namespaces", "two URI SANs")


def test_plaintext_listener_never_has_an_identity(client):
    """Headers cannot stand in for a certificate on the plaintext listener, whatever they claim."""
    spoof = [("x-forwarded-client-cert", "URI=spiffe://cluster.local/ns/foo/sa/bar"),
             ("x-envoy-peer-metadata-id", "sidecar~1.2.3.4~bar.foo~foo.svc.cluster.local")]
    for case in ("principals-star", "namespaces-foo", "serviceAccounts-exact", "trustDomains-star"):
        check(client.request("GET", f"/a/{case}", headers=spoof), "deny:none", f"{case} with spoofed headers")
    check(client.request("GET", "/d/notPrincipals-star", headers=spoof), "deny:deny-notPrincipals-star",
          "still plaintext")
