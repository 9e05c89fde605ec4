"""Keys, JWKS documents, tokens and RequestAuthentication resources for the JWT end-to-end tests.

Everything is made at test time: RSA 2048 (RS256), EC P-256 (ES256) and Ed25519 (EdDSA) keys from
``cryptography``, JWKS documents built from their public halves (Keycloak-shaped: ``kid``, ``alg``,
``use: sig``, plus the RSA-OAEP ``use: enc`` entry every Keycloak realm publishes, which a verifier
must ignore), and tokens signed with PyJWT. Tokens that no library would produce (``alg: none``,
broken segments) are assembled by hand.

Keycloak access-token shape (jwt.md §4.1): ``iss https://keycloak.test/realms/quarkus``, ``aud`` a
string for one audience and a list for several, ``azp``, ``scope`` as one space-separated string,
``realm_access.roles``, ``resource_access.<client>.roles``, ``preferred_username``, ``exp``/``iat``.
"""
from __future__ import annotations

import base64
import copy
import functools
import json
import time
import uuid
from dataclasses import dataclass

import jwt as pyjwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

KEYCLOAK_ISS = "https://keycloak.test/realms/quarkus"
ISTIO_TEST_ISS = "testing@secure.istio.io"  # the issuer of Istio's sample JWKS (seed 003)
ALICE = "f1b8a6c2-3d7e-4a2b-9c11-2b7e5d9a0f33"  # Keycloak user ids are UUIDs
BOB = "0c6e3b1d-8a51-4f0e-9d7a-6f2b9e4c1a77"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _int_b64(n: int) -> str:
    return b64url(n.to_bytes((n.bit_length() + 7) // 8, "big"))


@dataclass(frozen=True)
class SigningKey:
    """A private key with the JWK of its public half."""

    kid: str
    alg: str  # JWS alg the key signs with (RS256, ES256, EdDSA), or RSA-OAEP for the enc key
    private: object
    use: str = "sig"

    def jwk(self) -> dict:
        pub = self.private.public_key()
        if isinstance(pub, rsa.RSAPublicKey):
            nums = pub.public_numbers()
            # Keycloak's order of members: kid, kty, alg, use, n, e
            return {"kid": self.kid, "kty": "RSA", "alg": self.alg, "use": self.use,
                    "n": _int_b64(nums.n), "e": _int_b64(nums.e)}
        if isinstance(pub, ec.EllipticCurvePublicKey):
            nums = pub.public_numbers()
            return {"kid": self.kid, "kty": "EC", "alg": self.alg, "use": self.use, "crv": "P-256",
                    "x": b64url(nums.x.to_bytes(32, "big")), "y": b64url(nums.y.to_bytes(32, "big"))}
        if isinstance(pub, ed25519.Ed25519PublicKey):
            raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            return {"kid": self.kid, "kty": "OKP", "alg": self.alg, "use": self.use, "crv": "Ed25519", "x": b64url(raw)}
        raise TypeError(type(pub))


def rsa_key(kid: str, alg: str = "RS256", use: str = "sig") -> SigningKey:
    return SigningKey(kid, alg, rsa.generate_private_key(public_exponent=65537, key_size=2048), use)


def ec_key(kid: str) -> SigningKey:
    return SigningKey(kid, "ES256", ec.generate_private_key(ec.SECP256R1()))


def ed_key(kid: str) -> SigningKey:
    return SigningKey(kid, "EdDSA", ed25519.Ed25519PrivateKey.generate())


@dataclass(frozen=True)
class Keys:
    rsa: SigningKey  # RS256, kid rsa-1: the realm's active signing key
    ec: SigningKey  # ES256, kid ec-1
    ed: SigningKey  # EdDSA, kid ed-1
    enc: SigningKey  # RSA-OAEP, use enc, kid enc-1: published next to the sig keys, never for signatures
    impostor: SigningKey  # another RSA key that claims kid rsa-1 (bad signatures)
    rotated: SigningKey  # RS256, kid rsa-2: the key a rotation switches to


@functools.lru_cache(maxsize=None)
def keys() -> Keys:
    """The keys of this test session (generated once, in memory only)."""
    return Keys(
        rsa=rsa_key("rsa-1"),
        ec=ec_key("ec-1"),
        ed=ed_key("ed-1"),
        enc=rsa_key("enc-1", alg="RSA-OAEP", use="enc"),
        impostor=rsa_key("rsa-1"),
        rotated=rsa_key("rsa-2"),
    )


def jwks(*signing: SigningKey, enc: bool = True) -> str:
    """A JWKS document (JSON text). With ``enc``, the Keycloak RSA-OAEP encryption key comes first,
    so a verifier that chokes on it (instead of skipping it) loses every key after it."""
    entries = ([keys().enc.jwk()] if enc else []) + [k.jwk() for k in signing]
    return json.dumps({"keys": entries})


def realm_jwks(enc: bool = True) -> str:
    """The realm's JWKS: RSA, EC and Ed25519 signing keys (and the enc key)."""
    k = keys()
    return jwks(k.rsa, k.ec, k.ed, enc=enc)


# --------------------------------------------------------------------------------------------------
# claims and tokens


def keycloak_claims(
    sub: str = ALICE,
    *,
    username: str = "alice",
    realm_roles=("default-roles-quarkus", "offline_access", "uma_authorization", "user"),
    client_roles=("articles.read",),
    aud="web-api",
    azp: str = "frontend",
    scope: str = "openid profile email",
    iss: str = KEYCLOAK_ISS,
    exp_in: int | None = 300,
    **extra,
) -> dict:
    """A Keycloak access token payload; ``exp`` is ``now + exp_in`` (None: no ``exp``)."""
    now = int(time.time())
    claims = {
        "iat": now,
        "jti": str(uuid.uuid4()),
        "iss": iss,
        "aud": aud,  # None: no aud claim (dropped below)
        "sub": sub,
        "typ": "Bearer",
        "azp": azp,
        "sid": str(uuid.uuid4()),
        "acr": "1",
        "allowed-origins": ["https://frontend.test"],
        "realm_access": {"roles": list(realm_roles)},
        "resource_access": {"web-api": {"roles": list(client_roles)},
                            "account": {"roles": ["manage-account", "view-profile"]}},
        "scope": scope,
        "email_verified": True,
        "preferred_username": username,
        "email": f"{username}@keycloak.test",
    }
    if exp_in is not None:
        claims["exp"] = now + exp_in
    if aud is None:
        del claims["aud"]
    for k, v in extra.items():
        if v is None:
            claims.pop(k, None)
        else:
            claims[k] = v
    return claims


def sign(claims: dict, key: SigningKey | None = None, *, kid: str | None = "", alg: str | None = None) -> str:
    """A compact JWS of ``claims`` signed with ``key`` (default: the realm RSA key). ``kid=""`` uses the
    key's kid, ``kid=None`` leaves it out; ``alg`` overrides the key's algorithm (RS256 for the enc key)."""
    key = key or keys().rsa
    headers = {"typ": "JWT"}
    kid = key.kid if kid == "" else kid
    if kid is not None:
        headers["kid"] = kid
    # Sign the payload bytes with PyJWS: PyJWT's claim layer would refuse deliberately wrong claim
    # types (a numeric `iss`), which the parity tests need to send.
    payload = json.dumps(claims, separators=(",", ":")).encode()
    return pyjwt.api_jws.encode(payload, key.private, algorithm=alg or key.alg, headers=headers)


def token(key: SigningKey | None = None, **claim_overrides) -> str:
    """A valid Keycloak token (fresh ``jti``, so never a JWT-cache hit of an earlier test)."""
    return sign(keycloak_claims(**claim_overrides), key)


def unsigned(claims: dict, signature: str = "") -> str:
    """``alg: none``: by default with the empty signature segment of RFC 7519 §6 ("unsecured JWT")."""
    header = b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{b64url(json.dumps(claims).encode())}.{signature}"


def with_segments(header: str | None = None, payload: str | None = None, signature: str | None = None,
                  base: str | None = None) -> str:
    """``base`` (a valid token) with some segments replaced by raw text."""
    h, p, s = (base or token()).split(".")
    return ".".join([header if header is not None else h, payload if payload is not None else p,
                     signature if signature is not None else s])


def payload_segment(tok: str) -> str:
    return tok.split(".")[1]


def decode_segment(segment: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def bearer(tok: str) -> tuple[str, str]:
    return ("authorization", f"Bearer {tok}")


# --------------------------------------------------------------------------------------------------
# resources


def jwt_rule(issuer: str = KEYCLOAK_ISS, *, jwks_doc: str | None = None, jwks_uri: str | None = None, **fields) -> dict:
    """One ``jwtRules`` entry; the inline realm JWKS unless ``jwks_doc``/``jwks_uri`` is given.
    ``fields`` are the other RequestAuthentication fields in their camelCase spelling."""
    r: dict = {"issuer": issuer}
    if jwks_uri is not None:
        r["jwksUri"] = jwks_uri
    else:
        r["jwks"] = jwks_doc if jwks_doc is not None else realm_jwks()
    r.update(fields)
    return r


def request_authentication(name: str, *rules: dict, labels: dict | None = None, namespace: str = "default",
                           api_version: str = "security.istio.io/v1") -> dict:
    """A RequestAuthentication as ``kubectl get -o json`` shows it."""
    spec: dict = {"jwtRules": list(rules)}
    if labels:
        spec["selector"] = {"matchLabels": dict(labels)}
    return {"apiVersion": api_version, "kind": "RequestAuthentication",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def principal(sub: str, iss: str = KEYCLOAK_ISS) -> str:
    """``request.auth.principal``: ``<iss>/<sub>`` (authz-semantics §6.5)."""
    return f"{iss}/{sub}"


# --------------------------------------------------------------------------------------------------
# assertions on Envoy's jwt_authn-style local replies (jwt.md §3.1)


def assert_jwt_rejected(resp, body: str, *, status: int = 401, realm: str | None = None) -> None:
    """``status`` (401, or 403 for audiences), the status string as body, and
    ``www-authenticate: Bearer realm="<scheme>://<authority><path>", error="invalid_token"``."""
    assert resp.status == status, f"expected {status} {body!r}: {resp!r}"
    assert resp.text == body, resp
    challenge = resp.header_values("www-authenticate")
    assert len(challenge) == 1, resp
    if realm is not None:
        assert challenge[0] == f'Bearer realm="{realm}", error="invalid_token"', resp
    else:
        assert challenge[0].startswith('Bearer realm="') and challenge[0].endswith('", error="invalid_token"'), resp
    assert resp.header("content-type") == "text/plain", resp


# --------------------------------------------------------------------------------------------------
# polling (per-worker state: every Envoy worker has its own Wasm VM, which fetches JWKS on its own 1 s tick)


def poll(check, timeout: float, interval: float = 0.1):
    """Call ``check()`` until it returns a truthy value or ``timeout`` seconds pass; returns the last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def poll_response(send, accept, timeout: float, streak: int = 6, interval: float = 0.1):
    """Send requests (``send()``, each on a new connection, so both workers answer some) until ``streak``
    consecutive responses satisfy ``accept(resp)``; returns (ok, last response, seconds waited)."""
    start = time.monotonic()
    run, last = 0, None
    while time.monotonic() - start < timeout:
        last = send()
        run = run + 1 if accept(last) else 0
        if run >= streak:
            return True, last, time.monotonic() - start
        time.sleep(0 if run else interval)
    return False, last, time.monotonic() - start


def meshguard_counters(client) -> dict[str, int]:
    """meshguard's counters from the admin ``/stats`` (``wasmcustom.meshguard_*``), without the prefix."""
    out = {}
    for line in client.admin("/stats?filter=meshguard").splitlines():
        name, _, value = line.partition(": ")
        if name.startswith("wasmcustom.meshguard_") and value.strip().isdigit():
            out[name.removeprefix("wasmcustom.")] = int(value)
    return out
