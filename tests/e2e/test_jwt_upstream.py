"""What the backend receives after meshguard verified a token: the token header is removed unless
forwardOriginalToken, outputPayloadToHeader / outputClaimToHeaders are set, and client-sent copies of the output
headers never get through (jwt.md §3.2 step 7, §3.3 sanitizeHeaders, §3.6; authz-semantics §14).

Requests to ``/echo...`` are routed to a loopback server that answers with the request headers it got.
"""
import base64
import json

import pytest

from meshguard_tools.e2e.policies import DENY_BODY, allow, config, rule, src
from meshguard_tools.e2e.jwt_tokens import (
    KEYCLOAK_ISS, bearer, decode_segment, jwt_rule, keycloak_claims, payload_segment, request_authentication, sign,
    token,
)

WEB_API = {"app": "web-api"}
PARTNER_ISS = "https://keycloak.test/realms/partners"
OUTPUTS = dict(
    outputPayloadToHeader="x-jwt-payload",
    outputClaimToHeaders=[
        {"header": "x-jwt-sub", "claim": "sub"},
        {"header": "x-jwt-username", "claim": "preferred_username"},
        {"header": "x-jwt-verified", "claim": "email_verified"},  # bool -> "true"
        {"header": "x-jwt-iat", "claim": "iat"},  # number
        {"header": "x-jwt-scope", "claim": "scope"},  # the token's string, not the split list
        {"header": "x-jwt-roles", "claim": "realm_access.roles"},  # an array: base64 JSON
        {"header": "x-jwt-acr", "claim": "acr"},
    ],
)
PC = config(
    request_authentication(
        "web-api-jwt",
        jwt_rule(audiences=["web-api"], **OUTPUTS),
        # a second realm whose tokens the backend wants to see (forwardOriginalToken)
        jwt_rule(PARTNER_ISS, forwardOriginalToken=True),
        labels=WEB_API,
    ),
    labels=WEB_API,
)
OUTPUT_HEADERS = ["x-jwt-payload", "x-jwt-sub", "x-jwt-username", "x-jwt-verified", "x-jwt-iat", "x-jwt-scope",
                  "x-jwt-roles", "x-jwt-acr"]


@pytest.fixture
def client(envoy, echo_server):
    return envoy(PC, echo_port=echo_server.port)


def upstream(resp) -> dict:
    assert resp.status == 200, resp
    assert resp.header("content-type") == "application/json", resp
    return json.loads(resp.body)


def values(doc: dict, name: str) -> list[str]:
    return [v for k, v in doc["headers"] if k == name]


def test_token_header_removed_and_outputs_set(client):
    claims = keycloak_claims()
    tok = sign(claims)
    doc = upstream(client.request("GET", "/echo/articles", headers=[bearer(tok)]))
    assert values(doc, "authorization") == [], doc
    # outputPayloadToHeader: the token's own base64url payload segment, unpadded (jwt.md §3.6)
    assert values(doc, "x-jwt-payload") == [payload_segment(tok)], doc
    assert decode_segment(values(doc, "x-jwt-payload")[0]) == claims
    assert values(doc, "x-jwt-sub") == [claims["sub"]], doc
    assert values(doc, "x-jwt-username") == ["alice"], doc
    assert values(doc, "x-jwt-verified") == ["true"], doc
    assert values(doc, "x-jwt-iat") == [str(claims["iat"])], doc
    assert values(doc, "x-jwt-scope") == ["openid profile email"], doc
    assert values(doc, "x-jwt-acr") == ["1"], doc
    # Envoy 1.40 copies a list or object claim as base64 of its JSON
    roles = json.dumps(claims["realm_access"]["roles"], separators=(",", ":")).encode()
    assert values(doc, "x-jwt-roles") == [base64.b64encode(roles).decode()], doc
    assert doc["path"] == "/echo/articles"


def test_forward_original_token_keeps_the_header(client):
    tok = token(iss=PARTNER_ISS)
    doc = upstream(client.request("GET", "/echo/partner", headers=[bearer(tok)]))
    assert values(doc, "authorization") == [f"Bearer {tok}"], doc
    # that provider has no output headers
    assert all(values(doc, h) == [] for h in OUTPUT_HEADERS), doc


def test_client_sent_output_headers_are_replaced(client):
    claims = keycloak_claims()
    tok = sign(claims)
    forged = [("x-jwt-payload", "eyJzdWIiOiJhZG1pbiJ9"), ("x-jwt-sub", "admin"), ("x-jwt-sub", "root"),
              ("X-JWT-Username", "mallory"), ("x-jwt-roles", "admin")]
    doc = upstream(client.request("GET", "/echo/", headers=forged + [bearer(tok)]))
    assert values(doc, "x-jwt-payload") == [payload_segment(tok)], doc
    assert values(doc, "x-jwt-sub") == [claims["sub"]], doc
    assert values(doc, "x-jwt-username") == ["alice"], doc
    # the client's copy of the list claim's header is replaced by the token's
    roles = json.dumps(claims["realm_access"]["roles"], separators=(",", ":")).encode()
    assert values(doc, "x-jwt-roles") == [base64.b64encode(roles).decode()], doc


@pytest.mark.parametrize("tok_iss", [None, PARTNER_ISS])
def test_client_sent_output_headers_are_removed_without_a_matching_token(client, tok_iss):
    # no token at all, or a token of the provider without output headers: every provider's output header
    # is sanitized (Envoy ExtractorImpl::sanitizeHeaders)
    forged = [("x-jwt-payload", "eyJzdWIiOiJhZG1pbiJ9"), ("x-jwt-sub", "admin"), ("x-jwt-verified", "true")]
    auth = [bearer(token(iss=tok_iss))] if tok_iss else []
    doc = upstream(client.request("GET", "/echo/", headers=forged + auth + [("x-other", "kept")]))
    assert all(values(doc, h) == [] for h in OUTPUT_HEADERS), doc
    assert values(doc, "x-other") == ["kept"], doc


def test_query_parameter_token_is_removed_from_the_upstream_path(client):
    # forward: false removes the token's parameter too (Envoy 1.40 JwtParamLocation::removeJwt): the query is
    # rebuilt from the other parameters, decoded, in name order; the JWT never reaches the app's URL or logs
    tok = token()
    doc = upstream(client.request("GET", f"/echo/q?z=2&access_token={tok}&x=1"))
    assert doc["path"] == "/echo/q?x=1&z=2", doc
    assert values(doc, "x-jwt-payload") == [payload_segment(tok)], doc


def test_denied_request_never_reaches_the_backend_and_outputs_need_an_allow(envoy, echo_server):
    # the output headers are applied only to allowed requests; a deny is answered by meshguard itself
    pc = config(
        request_authentication("web-api-jwt", jwt_rule(audiences=["web-api"], **OUTPUTS), labels=WEB_API),
        allow("only-bob", [rule(from_=[src(requestPrincipals=[f"{KEYCLOAK_ISS}/bob"])])]),
        labels=WEB_API,
    )
    c = envoy(pc, echo_port=echo_server.port)
    r = c.request("GET", "/echo/", headers=[bearer(token())])
    assert (r.status, r.body) == (403, DENY_BODY), r
    assert r.header("x-meshguard-decision") == "deny none", r
    doc = upstream(c.request("GET", "/echo/", headers=[bearer(token(sub="bob"))]))
    assert values(doc, "x-jwt-sub") == ["bob"], doc
