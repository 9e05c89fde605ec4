"""The JWT section: signing keys (RS256, RS384, RS512, PS256, ES256, ES384), tokens, and the meshguard / native
Envoy configurations.

Keys and tokens are generated at bench time (``cryptography`` + ``PyJWT``, see requirements.txt).
The distinct-token cases send 1000 tokens in rotation, ten times the token cache of both filters
(100), so every request is a cache miss and pays one signature verification.

* meshguard: a RequestAuthentication with the inline JWKS and an ALLOW policy
  ``from: [{source: {requestPrincipals: ["*"]}}]`` (jwtSource ``filter``: meshguard verifies).
* native: what Istio builds for the same two resources, with stock Envoy filters: ``jwt_authn`` (the
  provider with ``local_jwks``, ``requires_any: [provider, allow_missing]``, ``forward: false``,
  payload in metadata, token cache of 100 like meshguard's default) then an ALLOW RBAC filter whose
  principal requires a non-empty ``sub`` in the verified payload (Istio's ``request.auth.principal``
  check goes through its own ``istio_authn`` filter, not in upstream Envoy).
"""
from __future__ import annotations

import json
import time

ISSUER = "https://issuer.bench.meshguard.test"
PROVIDER = "origins-0"
# The algorithms the distinct-token cases can use: (PyJWT algorithm, key factory, JWK converter).
ALGS = ("RS256", "RS384", "RS512", "PS256", "ES256", "ES384")


class Tokens:
    """One signing key of algorithm ``alg`` (RSA 2048-bit, P-256 or P-384), its JWKS, one token for the
    cached cases and ``distinct`` tokens (different ``sub``) for the cache-miss cases."""

    def __init__(self, distinct: int = 1000, alg: str = "RS256"):
        import jwt  # PyJWT
        from cryptography.hazmat.primitives.asymmetric import ec, rsa

        if alg not in ALGS:
            raise ValueError(f"unsupported bench algorithm {alg}")
        self.alg = alg
        self.kid = f"bench-{alg.lower()}"
        if alg.startswith("ES"):
            key = ec.generate_private_key(ec.SECP384R1() if alg == "ES384" else ec.SECP256R1())
            jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
        else:
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
        jwk.update({"kid": self.kid, "alg": alg, "use": "sig"})
        self.jwks = json.dumps({"keys": [jwk]}, separators=(",", ":"))
        now = int(time.time())

        def token(sub: str) -> str:
            claims = {"iss": ISSUER, "sub": sub, "iat": now, "exp": now + 24 * 3600}
            return jwt.encode(claims, key, algorithm=alg, headers={"kid": self.kid})

        self.same = token("bench-user")
        self.pool = [token(f"bench-user-{k}") for k in range(distinct)]


def meshguard_resources(tokens: Tokens) -> list:
    return [
        {
            "apiVersion": "security.istio.io/v1",
            "kind": "RequestAuthentication",
            "metadata": {"name": "bench-jwt", "namespace": "default"},
            "spec": {"selector": {"matchLabels": {"app": "bench"}},
                     "jwtRules": [{"issuer": ISSUER, "jwks": tokens.jwks}]},
        },
        {
            "apiVersion": "security.istio.io/v1",
            "kind": "AuthorizationPolicy",
            "metadata": {"name": "require-jwt", "namespace": "default"},
            "spec": {"selector": {"matchLabels": {"app": "bench"}}, "action": "ALLOW",
                     "rules": [{"from": [{"source": {"requestPrincipals": ["*"]}}]}]},
        },
    ]


def native_filters(tokens: Tokens, cache_size: int = 100) -> list:
    jwt_authn = {
        "name": "envoy.filters.http.jwt_authn",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
            "providers": {
                PROVIDER: {
                    "issuer": ISSUER,
                    "local_jwks": {"inline_string": tokens.jwks},
                    "forward": False,
                    "payload_in_metadata": "payload",
                    "jwt_cache_config": {"jwt_cache_size": cache_size},
                }
            },
            "rules": [{
                "match": {"prefix": "/"},
                "requires": {"requires_any": {"requirements": [{"provider_name": PROVIDER},
                                                               {"allow_missing": {}}]}},
            }],
            "bypass_cors_preflight": True,
        },
    }
    rbac = {
        "name": "envoy.filters.http.rbac",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC",
            "rules": {"action": "ALLOW", "policies": {"ns[default]-policy[require-jwt]-rule[0]": {
                "permissions": [{"any": True}],
                "principals": [{"and_ids": {"ids": [{"or_ids": {"ids": [{"metadata": {
                    "filter": "envoy.filters.http.jwt_authn",
                    "path": [{"key": "payload"}, {"key": "sub"}],
                    "value": {"string_match": {"safe_regex": {"regex": ".+"}}},
                }}]}}]}}],
            }}},
        },
    }
    return [jwt_authn, rbac]


def requests(tokens: Tokens, distinct: bool) -> list:
    toks = tokens.pool if distinct else [tokens.same]
    return [{"method": "GET", "path": "/api/items", "headers": {"authorization": f"Bearer {t}"}, "expect": 200}
            for t in toks]
