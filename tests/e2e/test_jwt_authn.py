"""RequestAuthentication with an inline JWKS, through the real Envoy: what Envoy's jwt_authn (as istiod configures
it) answers for each kind of token, and what the authorization layer sees afterwards.

Expectations: jwt.md §3.1 (local reply: status, body, www-authenticate), §3.2 (order of checks, 60 s skew,
audience sanitising, kid/alg key selection), §3.3 (token locations), §3.4 (no token passes with no identity),
authz-semantics §14 (RequestAuthentication behaviour, CORS preflight, unconfigured locations, several tokens).
"""
import json
import time

import jwt as pyjwt
import pytest

from meshguard_tools.e2e.policies import DENY_BODY, OK_BODY, allow, assert_allowed, config, rule, src
from meshguard_tools.e2e.jwt_tokens import (
    assert_jwt_rejected, bearer, jwt_rule, keycloak_claims, keys, request_authentication, sign,
    token, unsigned, with_segments, b64url,
)

WEB_API = {"app": "web-api"}
RA = request_authentication("web-api-jwt", jwt_rule(audiences=["web-api"]), labels=WEB_API)
# RequestAuthentication only: a missing token is fine, a bad one is not
AUTHN_ONLY = config(RA, labels=WEB_API)
# plus "any valid JWT" (authz-semantics §6.5): the documented way to require a token
REQUIRE_JWT = config(RA, allow("require-jwt", [rule(from_=[src(requestPrincipals=["*"])])]), labels=WEB_API)

EXPIRED = "Jwt is expired"
BAD_SIG = "Jwt verification fails"
UNKNOWN_ISS = "Jwt issuer is not configured"
BAD_AUD = "Audiences in Jwt are not allowed"
KID_ALG = "Jwks doesn't have key to match kid or alg from Jwt"
BAD_FORMAT = "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections"


def expired_token(**kw):
    return token(exp_in=-3600, iat=int(time.time()) - 7200, **kw)


def get(client, tok=None, path="/", headers=(), **kw):
    hdrs = ([bearer(tok)] if tok else []) + list(headers)
    return client.request("GET", path, headers=hdrs, **kw)


# --- valid tokens -----------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["rsa", "ec", "ed"])
def test_valid_token_of_each_key_type_is_accepted(envoy, key):
    # RS256 / ES256 / EdDSA from one Keycloak-shaped JWKS whose first entry is the RSA-OAEP `use: enc` key
    c = envoy(REQUIRE_JWT)
    r = get(c, token(getattr(keys(), key)))
    assert_allowed(r, key)
    assert r.header("x-meshguard-decision") == "allow ns[default]-policy[require-jwt]-rule[0]", r
    assert r.header("www-authenticate") is None, r


@pytest.mark.parametrize("aud", ["web-api", ["web-api", "account"], ["account", "web-api"], "https://web-api/"])
def test_audience_string_or_list_any_one_allowed(envoy, aud):
    # aud is a string for one audience, a list for several (Keycloak StringOrArraySerializer); any element
    # may be allowed; both sides lose http(s):// and one trailing slash before comparing (jwt.md §3.2 step 4)
    assert_allowed(get(envoy(REQUIRE_JWT), token(aud=aud)), repr(aud))


def test_token_without_kid_tries_every_key(envoy):
    # jwt.md §3.2 step 6: a JWT without kid tries every key of matching alg
    assert_allowed(get(envoy(REQUIRE_JWT), sign(keycloak_claims(), keys().ec, kid=None)))


def test_token_without_exp_is_accepted(envoy):
    # exp is optional unless require_expiration (Istio never sets it): jwt.md §3.2 step 3
    assert_allowed(get(envoy(REQUIRE_JWT), token(exp_in=None)))


def test_expired_within_clock_skew_is_accepted(envoy):
    # 60 s skew: exp 20 s ago still verifies
    assert_allowed(get(envoy(REQUIRE_JWT), token(exp_in=-20)))


def test_access_token_query_parameter_is_a_default_location(envoy):
    # default locations: Authorization: Bearer and ?access_token= (jwt.md §3.3)
    c = envoy(REQUIRE_JWT)
    assert_allowed(c.request("GET", f"/articles?access_token={token()}"))
    tok = expired_token()
    # the realm's path (query included) is cut to 256 characters, see test_realm_cuts_the_path_at_256
    realm = "http://localhost" + f"/articles?access_token={tok}"[:256]
    assert_jwt_rejected(c.request("GET", f"/articles?access_token={tok}"), EXPIRED, realm=realm)


# --- no token -------------------------------------------------------------------------------------


def test_no_token_passes_with_only_request_authentication(envoy):
    # authz-semantics §14: no token -> request passes, no identity. (AUTHN_ONLY has no policy, so
    # authorization allows everything: every 401 below comes from authentication alone.)
    r = get(envoy(AUTHN_ONLY))
    assert_allowed(r)
    assert r.header("www-authenticate") is None, r


def test_no_token_is_denied_by_allow_request_principals_star(envoy):
    # the missing-token denial comes from authorization: 403 RBAC: access denied (jwt.md §3.4)
    r = get(envoy(REQUIRE_JWT))
    assert (r.status, r.body) == (403, DENY_BODY), r
    assert r.header("x-meshguard-decision") == "deny none", r
    assert r.header("www-authenticate") is None, r


def test_token_in_unconfigured_header_is_treated_as_missing(envoy):
    # authz-semantics §14: a token in a location the rule does not configure is not looked at
    tok = token()
    r = get(envoy(REQUIRE_JWT), headers=[("x-jwt-token", tok)])
    assert (r.status, r.body) == (403, DENY_BODY), r
    r = get(envoy(REQUIRE_JWT), headers=[("authorization", f"Token {tok}")])  # not the "Bearer " prefix
    assert (r.status, r.body) == (403, DENY_BODY), r
    # and an expired one there is not validated either
    assert_allowed(get(envoy(AUTHN_ONLY), headers=[("x-jwt-token", expired_token())]))


# --- rejected tokens ------------------------------------------------------------------------------


def test_expired_token_401_with_exact_www_authenticate_realm(envoy):
    c = envoy(AUTHN_ONLY)
    tok = expired_token()
    # realm = :scheme :// :authority + :path as sent, query included (jwt.md §3.1 buildOriginalUri)
    r = get(c, tok, path="/articles/42?lang=en")
    assert_jwt_rejected(r, EXPIRED, realm="http://localhost/articles/42?lang=en")
    r = get(c, tok, path="/a", headers=[("host", "web-api.default.svc.cluster.local:8081")])
    assert_jwt_rejected(r, EXPIRED, realm="http://web-api.default.svc.cluster.local:8081/a")


def test_realm_cuts_the_path_at_256(envoy):
    # jwt.md §3.1: the realm is Http::Utility::buildOriginalUri(headers, 256), whose 256 is the maximum *path*
    # length: scheme://authority is kept whole and only the path is cut (Envoy 1.40's jwt_authn answers so, see
    # test_jwt_envoy_jwt_authn.py::test_meshguard_extracts_tokens_like_jwt_authn)
    c = envoy(AUTHN_ONLY)
    path = "/" + "a" * 300
    assert_jwt_rejected(get(c, expired_token(), path=path), EXPIRED, realm="http://localhost" + path[:256])
    host = "h" * 200 + ".example"
    assert_jwt_rejected(get(c, expired_token(), path=path, headers=[("host", host)]), EXPIRED,
                        realm=f"http://{host}" + path[:256])


def test_expired_token_realm_over_mtls_is_https(envoy):
    r = get(envoy(AUTHN_ONLY), expired_token(), path="/x", identity="productpage")
    assert_jwt_rejected(r, EXPIRED, realm="https://localhost/x")


def test_bad_signature(envoy):
    # signed by another key that claims the realm key's kid
    assert_jwt_rejected(get(envoy(AUTHN_ONLY), token(keys().impostor)), BAD_SIG, realm="http://localhost/")


def test_tampered_payload(envoy):
    good = token()
    forged = b64url(json.dumps(keycloak_claims(realm_roles=["admin"])).encode())
    assert_jwt_rejected(get(envoy(AUTHN_ONLY), with_segments(payload=forged, base=good)), BAD_SIG)


def test_unknown_issuer(envoy):
    tok = token(iss="https://keycloak.test/realms/other")
    assert_jwt_rejected(get(envoy(AUTHN_ONLY), tok), UNKNOWN_ISS, realm="http://localhost/")


def test_wrong_audience_is_403(envoy):
    # the one failure that is 403, still with error="invalid_token" (jwt.md §3.1)
    for aud in ("other-api", ["account", "other-api"]):
        assert_jwt_rejected(get(envoy(AUTHN_ONLY), token(aud=aud)), BAD_AUD, status=403, realm="http://localhost/")


def test_missing_audience_is_403(envoy):
    assert_jwt_rejected(get(envoy(AUTHN_ONLY), token(aud=None)), BAD_AUD, status=403)


def test_not_yet_valid(envoy):
    now = int(time.time())
    assert_jwt_rejected(get(envoy(AUTHN_ONLY), token(nbf=now + 600)), "Jwt not yet valid")


@pytest.mark.parametrize("tok,body", [
    ("not-a-jwt", BAD_FORMAT),
    ("a.b", BAD_FORMAT),
    (f"{b64url(b'hello')}.{b64url(b'{}')}.c2ln", "Jwt header is an invalid JSON"),
])
def test_malformed_token(envoy, tok, body):
    assert_jwt_rejected(get(envoy(AUTHN_ONLY), tok), body, realm="http://localhost/")


def test_alg_none_is_rejected(envoy):
    c = envoy(AUTHN_ONLY)
    # the RFC 7519 unsecured form ends in an empty signature segment: Envoy splits on '.' skipping empty
    # parts, so it is not "Header.Payload.Signature" at all
    assert_jwt_rejected(get(c, unsigned(keycloak_claims())), BAD_FORMAT, realm="http://localhost/")
    # with some signature text, "none" is not one of the supported algorithms (jwt.md §3.1)
    r = get(c, unsigned(keycloak_claims(), signature="c2ln"))
    assert_jwt_rejected(r, "Jwt header [alg] is not supported", realm="http://localhost/")


def test_enc_key_of_the_jwks_is_never_used_for_signatures(envoy):
    # a token signed with the RSA-OAEP encryption key (kid enc-1) finds no signing key with that kid
    tok = sign(keycloak_claims(), keys().enc, alg="RS256")
    assert_jwt_rejected(get(envoy(AUTHN_ONLY), tok), KID_ALG, realm="http://localhost/")


def test_hs256_token_against_rsa_key_is_a_kid_alg_mismatch(envoy):
    # algorithm confusion: kid names the RSA key but alg is HS256 -> no key fits (jwt.md §3.2 step 6)
    tok = pyjwt.encode(keycloak_claims(), "secret-secret-secret-secret-32by", algorithm="HS256",
                       headers={"kid": "rsa-1"})
    assert_jwt_rejected(get(envoy(AUTHN_ONLY), tok), KID_ALG)


def test_unknown_kid(envoy):
    tok = sign(keycloak_claims(), keys().rotated)  # kid rsa-2 is not in the realm JWKS
    assert_jwt_rejected(get(envoy(AUTHN_ONLY), tok), KID_ALG)


def test_text_after_the_token_is_part_of_the_token(envoy):
    # jwt.md §3.3: after the prefix, extraction skips to the first base64url-or-dot character and "takes the
    # rest of the value": a valid token followed by more text is not that valid token
    c = envoy(REQUIRE_JWT)
    for value in (f"Bearer {token()} trailing", f"Bearer {token()},x", f"Bearer {token()}!"):
        r = c.request("GET", "/", headers=[("authorization", value)])
        assert r.status == 401, (value[-12:], r)
        assert r.header("www-authenticate") == 'Bearer realm="http://localhost/", error="invalid_token"', r


def test_valid_and_expired_token_in_repeated_authorization_headers(envoy):
    # every token present must verify (jwt.md §3.2 step 8; §3.3 "every value of a repeated header is
    # considered"), whichever header comes first. (Envoy 1.40 joins the values with ',' and answers 401
    # "Jwt is not in the form ..."; the exact text is checked against it in test_jwt_envoy_jwt_authn.py.)
    c = envoy(REQUIRE_JWT)
    for headers in ([bearer(token()), bearer(expired_token())], [bearer(expired_token()), bearer(token())]):
        r = c.request("GET", "/", headers=headers)
        assert r.status == 401, r
        assert r.header("www-authenticate") == 'Bearer realm="http://localhost/", error="invalid_token"', r


def test_good_and_bad_token_together_are_rejected(envoy):
    # every token present must verify (jwt.md §3.2 step 8; authz-semantics §14: valid + expired -> 401)
    c = envoy(REQUIRE_JWT)
    r = c.request("GET", f"/?access_token={expired_token()}", headers=[bearer(token())])
    assert r.status == 401 and r.text == EXPIRED, r


# --- CORS preflight -------------------------------------------------------------------------------


def test_cors_preflight_skips_jwt_validation(envoy):
    # Istio sets bypass_cors_preflight: OPTIONS + Origin + Access-Control-Request-Method is not validated
    c = envoy(AUTHN_ONLY)
    preflight = [("origin", "https://frontend.test"), ("access-control-request-method", "GET")]
    r = c.request("OPTIONS", "/articles", headers=[bearer(expired_token())] + preflight)
    assert r.status != 401, r
    assert (r.status, r.body) == (200, OK_BODY), r


def test_options_without_origin_is_validated(envoy):
    c = envoy(AUTHN_ONLY)
    r = c.request("OPTIONS", "/articles", headers=[bearer(expired_token()), ("access-control-request-method", "GET")])
    assert_jwt_rejected(r, EXPIRED, realm="http://localhost/articles")
