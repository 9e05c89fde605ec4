"""Peer identity from the mTLS client certificate: principals, namespaces, trust domains, absent identity on
plaintext (authz-semantics §6.1, §6.2, §9)."""
import pytest

from meshguard_tools.e2e.policies import allow, assert_allowed, assert_denied, config, deny, rule, src

PLAIN = None  # no client certificate, plaintext listener
ALL = [PLAIN, "productpage", "reviews", "foo-bar", "ingress", "other-td", "no-uri"]


def check(client, allowed_identities, path="/"):
    for ident in ALL:
        r = client.request("GET", path, identity=ident)
        if ident in allowed_identities:
            assert_allowed(r, f"identity={ident}")
        else:
            assert_denied(r, f"identity={ident}")


def allow_source(**source):
    return config(allow("allow-source", [rule(from_=[src(**source)])]))


def test_principal_exact(envoy):
    check(envoy(allow_source(principals=["cluster.local/ns/default/sa/productpage"])), {"productpage"})


def test_principal_list_is_ored(envoy):
    c = envoy(allow_source(principals=["cluster.local/ns/default/sa/productpage", "cluster.local/ns/foo/sa/bar"]))
    check(c, {"productpage", "foo-bar"})


def test_principal_prefix(envoy):
    check(envoy(allow_source(principals=["cluster.local/ns/default/*"])), {"productpage", "reviews"})


def test_principal_suffix_any_trust_domain(envoy):
    check(envoy(allow_source(principals=["*/ns/foo/sa/bar"])), {"foo-bar", "other-td"})


def test_principal_star_matches_any_client_certificate_but_not_plaintext(envoy):
    # `*` = any non-empty identity, SPIFFE or not: the DNS-SAN-only cert matches too (§6.1)
    check(envoy(allow_source(principals=["*"])), set(ALL) - {PLAIN})


def test_principal_of_other_trust_domain_does_not_match(envoy):
    check(envoy(allow_source(principals=["cluster.local/ns/foo/sa/bar"])), {"foo-bar"})


def test_trust_domain_alias_expands_principals(envoy):
    pc = allow_source(principals=["cluster.local/ns/foo/sa/bar"])
    pc["trustDomainAliases"] = ["other-td"]
    check(envoy(pc), {"foo-bar", "other-td"})


def test_namespace(envoy):
    # namespaces are read from the identity (`.*/ns/foo/.*`), whatever the trust domain
    check(envoy(allow_source(namespaces=["foo"])), {"foo-bar", "other-td"})


def test_namespace_default(envoy):
    check(envoy(allow_source(namespaces=["default"])), {"productpage", "reviews"})


def test_namespace_star_needs_a_namespace_in_the_identity(envoy):
    check(envoy(allow_source(namespaces=["*"])), {"productpage", "reviews", "foo-bar", "ingress", "other-td"})


def test_namespace_glob(envoy):
    check(envoy(allow_source(namespaces=["istio-*"])), {"ingress"})


def test_not_principals_matches_plaintext(envoy):
    # absent identity matches a negative field (§9)
    check(envoy(allow_source(notPrincipals=["cluster.local/ns/default/sa/productpage"])), set(ALL) - {"productpage"})


def test_not_namespaces_in_allow_lets_plaintext_in(envoy):
    check(envoy(allow_source(notNamespaces=["foo"])), set(ALL) - {"foo-bar", "other-td"})


def test_deny_namespace_does_not_stop_plaintext(envoy):
    c = envoy(config(deny("deny-foo", [rule(from_=[src(namespaces=["foo"])])])))
    check(c, set(ALL) - {"foo-bar", "other-td"})


def test_deny_not_namespaces_star_requires_mtls(envoy):
    # the ISTIO-SECURITY-2021-004 mitigation: deny anything without a namespace in its identity
    c = envoy(config(deny("require-mtls", [rule(from_=[src(notNamespaces=["*"])])])))
    check(c, {"productpage", "reviews", "foo-bar", "ingress", "other-td"})


def test_source_fields_are_anded(envoy):
    c = envoy(allow_source(namespaces=["foo"], notPrincipals=["other-td/ns/foo/sa/bar"]))
    check(c, {"foo-bar"})


def test_sources_are_ored(envoy):
    c = envoy(config(allow("two-sources", [rule(from_=[src(namespaces=["foo"]), src(principals=["cluster.local/ns/istio-system/sa/ingress"])])])))
    check(c, {"foo-bar", "other-td", "ingress"})


@pytest.mark.parametrize("key,value,allowed", [
    ("source.principal", "cluster.local/ns/default/sa/reviews", {"reviews"}),
    ("source.namespace", "istio-system", {"ingress"}),
])
def test_when_source_conditions(envoy, key, value, allowed):
    c = envoy(config(allow("when-source", [rule(when=[{"key": key, "values": [value]}])])))
    check(c, allowed)
