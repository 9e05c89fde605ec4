"""The hostile requests of the JWT parity test (``jwt_parity.py``), by class. Built at test time from
freshly generated keys; every token is new (fresh ``iat``/``exp``), so no case is a cache hit of another."""
from __future__ import annotations

import json

from meshguard_tools.e2e.jwt_parity import ISS, ISS2, Case, b64, claims, forge, pct


def bearer(tok: str) -> tuple:
    return ("authorization", f"Bearer {tok}")


def build(ring) -> list[Case]:
    out: list[Case] = []

    def add(klass, name, scenario, path, headers=(), method="GET"):
        out.append(Case(klass, name, scenario, path, list(headers), method))

    t = lambda **kw: forge(claims(**kw))  # noqa: E731
    ok = t()

    # -- basics: valid tokens of every algorithm, every location, the obvious failures
    for key in (ring.rsa, ring.ps, ring.ec, ring.ec384, ring.ed, ring.hs):
        add("basic", f"valid-{key.alg}", "default", "/any/x", [bearer(forge(claims(), key))])
        add("basic", f"alice-{key.alg}", "default", "/alice/x", [bearer(forge(claims(), key))])
    add("basic", "no-token-open", "default", "/open/x")
    add("basic", "no-token-alice", "default", "/alice/x")
    add("basic", "bob", "default", "/alice/x", [bearer(t(sub="bob"))])
    add("basic", "expired", "default", "/open", [bearer(t(exp=1000))])
    add("basic", "expired-in-skew", "default", "/open", [bearer(t(exp=__import__("time").time().__int__() - 30))])
    add("basic", "nbf-future", "default", "/open", [bearer(t(nbf=4_000_000_000))])
    add("basic", "wrong-aud", "default", "/open", [bearer(t(aud="other"))])
    add("basic", "aud-url", "default", "/open", [bearer(t(aud=["x", "https://web-api/"]))])
    add("basic", "no-aud", "default", "/open", [bearer(t(aud=None))])
    add("basic", "unknown-iss", "default", "/open", [bearer(t(iss="https://evil.test"))])
    add("basic", "bad-signature", "default", "/open", [bearer(forge(claims(), ring.other))])
    add("basic", "alg-none", "default", "/open", [bearer(forge(claims(), header={"alg": "none"}, sig_text="e30"))])
    add("basic", "hs-with-rsa-kid", "default", "/open",
        [bearer(forge(claims(), ring.hs, header={"alg": "HS256", "kid": "rsa-1"}))])
    add("basic", "unknown-kid", "default", "/open", [bearer(forge(claims(), ring.rsa, kid="nope"))])
    add("basic", "no-kid", "default", "/alice", [bearer(forge(claims(), ring.ed, kid=None))])
    add("basic", "ES512", "default", "/open", [bearer(forge(claims(), ring.ec, header={"alg": "ES512"}, sig_text="AAAA"))])
    add("basic", "alg-mismatch-kid", "default", "/open",
        [bearer(forge(claims(), ring.rsa, header={"alg": "RS384", "kid": "rsa-1"}))])
    add("basic", "ps-key-rs-alg", "default", "/open",
        [bearer(forge(claims(), ring.ps, header={"alg": "RS256", "kid": "ps-1"}))])

    # -- (2) malformed tokens in a configured location are bad tokens
    for name, value in [("bang", "Bearer !!!"), ("empty-after-prefix", "Bearer "), ("spaces", "Bearer    "),
                        ("junk-before", f"Bearer !{ok}"), ("plus-before", f"Bearer +{ok}"),
                        ("two-dots-only", "Bearer .."), ("one-dot", "Bearer a.b"), ("four", "Bearer a.b.c.d"),
                        ("lower-bearer", f"bearer {ok}"), ("prefix-inside", f"xBearer {ok}"),
                        ("trailing", f"Bearer {ok} trailing"), ("tab", f"Bearer\t{ok}"),
                        ("star", "Bearer *"), ("only-prefix-no-space", "Bearer")]:
        add("malformed-location", f"authorization-{name}", "default", "/open/x", [("authorization", value)])
        add("malformed-location", f"authorization-{name}-alice", "default", "/alice/x", [("authorization", value)])
    for name, q in [("empty", "access_token="), ("bang", "access_token=!!!"), ("plus", f"access_token=+{ok}"),
                    ("no-value", "access_token"), ("pct-junk", "access_token=%21" + ok), ("space", "access_token=%20"),
                    ("two", f"access_token={ok}&access_token=x"), ("second-empty", f"access_token=&access_token={ok}")]:
        add("malformed-location", f"param-{name}", "default", f"/open/x?{q}")
    for name, headers in [("x-raw-empty", [("x-raw", "")]), ("x-raw-bang", [("x-raw", "!")]),
                          ("x-raw-junk-before", [("x-raw", f"!{ok}")]), ("x-raw-space-before", [("x-raw", f" {ok}")]),
                          ("x-tok-no-prefix", [("x-tok", ok)]), ("x-tok-prefix-empty", [("x-tok", "Tok ")]),
                          ("x-tok-prefix-bang", [("x-tok", "Tok !!")]),
                          ("cookie-empty", [("cookie", "session=")]), ("cookie-bang", [("cookie", "session=!!")]),
                          ("cookie-junk-before", [("cookie", f"session=!{ok}")]),
                          ("cookie-other", [("cookie", f"other={ok}")]),
                          ("param-tok-empty", []), ("x-raw-and-good-cookie", [("x-raw", "!"), ("cookie", f"session={ok}")])]:
        path = "/open/x?tok=" if name == "param-tok-empty" else "/open/x"
        add("malformed-location", name, "locations", path, headers)
    add("malformed-location", "junk-next-to-valid", "default", f"/open/x?access_token=!!", [bearer(ok)])
    add("malformed-location", "valid-next-to-junk-header", "locations", f"/open/x?tok={ok}", [("x-raw", "???")])

    # -- (3) payload rules
    def raw_payload(text: str, name: str, path: str = "/open"):
        add("payload", name, "default", path, [bearer(forge(text))])

    base = claims()
    core = json.dumps(base, separators=(",", ":"))[1:-1]
    raw_payload('{"role":"admin",' + core + ',"role":"user"}', "duplicate-role", "/deny-admin")
    raw_payload('{"role":"user",' + core + ',"role":"admin"}', "duplicate-role-2", "/deny-admin")
    raw_payload('{"sub":"bob",' + core + '}', "duplicate-sub", "/alice")
    raw_payload('{' + core + ',"role":"admin"}', "single-role", "/deny-admin")
    for depth in (30, 31, 32, 33, 50, 63, 64, 65, 99, 100, 101, 102, 150):
        nested = "[" * depth + "]" * depth
        raw_payload('{' + core + f',"deep":{nested}}}', f"array-depth-{depth}")
        obj = '{"a":' * depth + "1" + "}" * depth
        raw_payload('{' + core + f',"deep":{obj}}}', f"object-depth-{depth}")
    for field_ in ("exp", "nbf", "iat"):
        for name, v in [("negative", "-1"), ("zero", "0"), ("float", "1.5"), ("huge", "1e30"),
                        ("int64-max", "9223372036854775807"), ("int64-max+1", "9223372036854775808"),
                        ("uint64-max", "18446744073709551615"), ("uint64-max+1", "18446744073709551616"),
                        ("two-pow-63-float", "9.2233720368547758e18"), ("near-u64", "18446744073709549568"),
                        ("string", '"1"'), ("null", "null"), ("bool", "true"), ("exp-notation", "4e9"),
                        ("negative-zero", "-0"), ("tiny", "1e-300"), ("list", "[1]")]:
            c = {k: v2 for k, v2 in base.items() if k != field_}
            text = json.dumps(c, separators=(",", ":"))[:-1] + f',"{field_}":{v}}}'
            raw_payload(text, f"{field_}-{name}")
    raw_payload(json.dumps({**base, "exp": 0}), "exp-0-alice", "/alice")
    for name, text in [("not-object", "[1]"), ("null", " null "), ("number", "7"), ("string", '"x"'), ("trailing-comma", '{"sub":"a",}'),
                       ("comment", '{"sub":"a"/*c*/}'), ("bom", "\ufeff" + json.dumps(base)),
                       ("nan", json.dumps(base)[:-1] + ',"n":NaN}'), ("big-number", json.dumps(base)[:-1] + ',"n":1e400}'),
                       ("lone-surrogate", json.dumps(base)[:-1] + ',"n":"\\ud800"}'),
                       ("escaped-key", json.dumps(base)[:-1] + ',"s\\u0075b":"bob"}'),
                       ("trailing-ws", json.dumps(base) + " \n"), ("trailing-junk", json.dumps(base) + "x"),
                       ("empty-key", json.dumps(base)[:-1] + ',"":1}'), ("null-sub", json.dumps({**base, "sub": None})),
                       ("iss-number", json.dumps({**base, "iss": 1})), ("aud-list-number", json.dumps({**base, "aud": ["web-api", 1]})),
                       ("jti-number", json.dumps({**base, "jti": 7})), ("sub-object", json.dumps({**base, "sub": {}})),
                       ("invalid-utf8", b'{"sub":"\xff"}')]:
        add("payload", name, "default", "/open", [bearer(forge(text if isinstance(text, bytes) else text.encode()))])
    for name, text in [("dup-alg", '{"alg":"none","alg":"RS256","kid":"rsa-1"}'),
                       ("header-depth-101", '{"alg":"RS256","kid":"rsa-1","x":' + "[" * 101 + "]" * 101 + "}")]:
        add("payload", f"header-{name}", "default", "/open", [bearer(forge(claims(), header=text))])

    # -- (4) space-delimited claims
    for name, scope in [("single-space", " "), ("spaces", "   "), ("empty", ""), ("tab", "\t"), ("read", "read"),
                        ("leading", " read"), ("double", "read  write"), ("newline", "read\nwrite"),
                        ("nbsp", "\u00a0"), ("tab-read", "read\tx")]:
        for path in ("/deny-scope/x", "/scope/x"):
            add("space-delimited", f"scope-{name}{path.split('/')[1][4:]}", "default", path,
                [bearer(t(scope=scope))])
    add("space-delimited", "scope-list", "default", "/scope", [bearer(t(scope=["read", "x"]))])
    add("space-delimited", "scope-list-deny", "default", "/deny-scope", [bearer(t(scope=[]))])
    add("space-delimited", "scope-number", "default", "/deny-scope", [bearer(t(scope=5))])
    add("space-delimited", "scope-missing", "default", "/deny-scope", [bearer(t(scope=None))])
    add("space-delimited", "groups-space", "default", "/group", [bearer(t(groups="ops dev"))])
    add("space-delimited", "groups-list", "default", "/group", [bearer(t(groups=["ops"]))])
    add("space-delimited", "groups-string", "default", "/group", [bearer(t(groups="ops"))])

    # -- (5) several tokens: which one authorizes, outputs, removal
    alice, bob = t(sub="alice"), t(sub="bob")
    expired = t(exp=1000)
    for name, scen, path, headers in [
        ("header-alice-param-bob", "default", f"/alice?access_token={bob}", [bearer(alice)]),
        ("header-bob-param-alice", "default", f"/alice?access_token={alice}", [bearer(bob)]),
        ("two-auth-headers", "default", "/alice", [bearer(bob), bearer(alice)]),
        ("two-auth-headers-rev", "default", "/alice", [bearer(alice), bearer(bob)]),
        ("same-token-twice", "default", f"/alice?access_token={alice}", [bearer(alice)]),
        ("valid-and-expired", "default", f"/alice?access_token={expired}", [bearer(alice)]),
        ("expired-and-valid", "default", f"/alice?access_token={alice}", [bearer(expired)]),
        ("raw-bob-cookie-alice", "locations", "/alice", [("x-raw", bob), ("cookie", f"session={alice}")]),
        ("cookie-bob-raw-alice", "locations", "/alice", [("cookie", f"session={bob}"), ("x-raw", alice)]),
        ("tok-alice-raw-bob", "locations", "/alice", [("x-tok", f"Tok {alice}"), ("x-raw", bob)]),
        ("raw-alice-tok-bob", "locations", "/alice", [("x-raw", alice), ("x-tok", f"Tok {bob}")]),
        ("param-alice-raw-bob", "locations", f"/alice?tok={alice}", [("x-raw", bob)]),
        ("param-bob-raw-alice", "locations", f"/alice?tok={bob}", [("x-raw", alice)]),
        ("params-two", "locations", f"/alice?tok={bob}&t%20k={alice}", []),
        ("params-two-rev", "locations", f"/alice?t+k={bob}&tok={alice}", []),
        ("all-four", "locations", f"/alice?tok={bob}", [("x-raw", alice), ("x-tok", f"Tok {bob}"),
                                                       ("cookie", f"session={alice}")]),
        ("strip-all", "strip", f"/alice?tok={alice}&access_token={bob}&keep=1",
         [("x-raw", bob), bearer(alice), ("cookie", f"session={bob}")]),
        ("strip-header-param", "strip", f"/alice?keep=1&access_token={alice}", [bearer(bob)]),
        ("issuers-both", "issuers", f"/alice?access_token={forge(claims(sub='bob', iss=ISS2))}", [bearer(alice)]),
        ("issuers-both-rev", "issuers", f"/alice?access_token={alice}", [bearer(forge(claims(sub='bob', iss=ISS2)))]),
        ("issuers-second", "issuers", "/alice", [bearer(forge(claims(iss=ISS2)))]),
        ("issuers-unknown", "issuers", "/alice", [bearer(forge(claims(iss="https://x.test")))]),
        ("two-cookie-headers", "locations", "/alice", [("cookie", f"session={bob}"), ("cookie", f"session={alice}")]),
        ("cookie-twice-one-header", "locations", "/alice", [("cookie", f"session={bob}; session={alice}")]),
        ("two-x-raw", "locations", "/alice", [("x-raw", alice), ("x-raw", bob)]),
        ("issuers-second-expired", "issuers", "/any", [bearer(forge(claims(iss=ISS2, exp=1000)))]),
        ("issuers-first-expired", "issuers", "/any", [bearer(forge(claims(exp=1000)))]),
        ("issuers-second-bad-signature", "issuers", "/any", [bearer(forge(claims(iss=ISS2), ring.other))]),
        ("issuers-good-and-second-expired", "issuers", f"/any?access_token={forge(claims(iss=ISS2, exp=1000))}",
         [bearer(alice)]),
        ("issuers-second-twice", "issuers", f"/any?access_token={forge(claims(iss=ISS2, sub='p'))}",
         [bearer(forge(claims(iss=ISS2, sub="h")))]),
        ("issuers-both-spoofed", "issuers", f"/any?access_token={forge(claims(iss=ISS2, sub='p'))}",
         [bearer(forge(claims(sub="h"))), ("x-sub", "spoof"), ("x-num", "spoof")]),
        ("issuers-spoof-other-output", "issuers", "/any", [bearer(alice), ("x-num", "spoof")]),
        ("same-issuer-first-key", "same-issuer", "/alice", [bearer(forge(claims(), ring.rsa))]),
        ("same-issuer-second-key", "same-issuer", "/alice", [bearer(forge(claims(), ring.ec))]),
        ("same-issuer-third-key", "same-issuer", "/alice", [bearer(forge(claims(), ring.ed, kid=None))]),
        ("same-issuer-no-key", "same-issuer", "/alice", [bearer(forge(claims(), ring.ps))]),
        ("same-issuer-bad-signature", "same-issuer", "/alice", [bearer(forge(claims(), ring.other))]),
        ("same-issuer-expired", "same-issuer", "/alice", [bearer(forge(claims(exp=1000), ring.ec))]),
        ("same-issuer-both-keys", "same-issuer", f"/alice?access_token={forge(claims(sub='bob'), ring.ec)}",
         [bearer(forge(claims(), ring.rsa))]),
        ("same-issuer-ed-wrong-length", "same-issuer", "/any", [bearer(forge(claims(), ring.ed, sig=b"1" * 9))]),
        ("split-own-header", "split-locations", "/alice", [("x-raw", alice)]),
        ("split-other-issuer-in-header", "split-locations", "/alice", [("x-raw", forge(claims(iss=ISS2)))]),
        ("split-second-header", "split-locations", "/alice", [("x-tok", "Tok " + forge(claims(iss=ISS2)))]),
        ("split-second-header-first-issuer", "split-locations", "/alice", [("x-tok", "Tok " + alice)]),
        ("split-shared-param-second", "split-locations", f"/alice?tok={forge(claims(iss=ISS2))}", []),
        ("split-shared-param-expired", "split-locations", f"/alice?tok={forge(claims(iss=ISS2, exp=1000))}", []),
        ("split-both-headers", "split-locations", "/alice",
         [("x-raw", alice), ("x-tok", "Tok " + forge(claims(iss=ISS2, sub="bob")))]),
        ("split-both-headers-one-bad", "split-locations", "/alice",
         [("x-raw", alice), ("x-tok", "Tok " + forge(claims(iss=ISS2, exp=1000)))]),
        ("split-header-and-param", "split-locations", f"/alice?tok={forge(claims(iss=ISS2, sub='bob'))}",
         [("x-raw", alice)]),
        ("split-junk-second-header", "split-locations", "/alice", [("x-raw", alice), ("x-tok", "Tok !")]),
        ("two-bad-different", "default", "/any?access_token=zz", [bearer(expired)]),
        ("two-bad-header-cookie", "locations", "/any", [("x-raw", expired), ("cookie", "session=zz")]),
        ("two-bad-cookie-header", "locations", "/any", [("x-raw", "zz"), ("cookie", f"session={expired}")]),
        ("good-param-then-bad-param", "strip", f"/any?q=1&tok={alice}&access_token=zz", []),
        ("good-header-then-bad-header", "strip", "/any", [("x-raw", "zz"), bearer(alice)]),
    ]:
        add("several-tokens", name, scen, path, headers)

    # -- (6) query tokens: removal from the upstream :path when not forwarded
    for name, scen, path in [
        ("only", "default", f"/any/x?access_token={ok}"),
        ("first", "default", f"/any/x?access_token={ok}&a=1&b=2"),
        ("middle", "default", f"/any/x?a=1&access_token={ok}&b=2"),
        ("last", "default", f"/any/x?a=1&access_token={ok}"),
        ("repeated", "default", f"/any/x?access_token={ok}&a=1&access_token={ok}"),
        ("encoded-other", "default", f"/any/x?a=%2F%20b&access_token={ok}&c=d%3De"),
        ("plus-other", "default", f"/any/x?a=b+c&access_token={ok}"),
        ("empty-pairs", "default", f"/any/x?&&access_token={ok}&&"),
        ("no-equals-other", "default", f"/any/x?flag&access_token={ok}"),
        ("fragment", "default", f"/any/x?access_token={ok}#frag"),
        ("forwarded", "locations", f"/any/x?tok={ok}&a=1"),
        ("strip-tok", "strip", f"/any/x?a=1&tok={ok}"),
        ("strip-both-params", "strip", f"/any/x?tok={ok}&access_token={ok}"),
        ("pct-name", "default", f"/any/x?access%5Ftoken={ok}&z=1"),
        ("pct-value", "default", f"/any/x?access_token={pct(ok).replace('.', '%2E')}"),
        ("space-name", "locations", f"/any/x?t%20k={ok}"),
        ("plus-name", "locations", f"/any/x?t+k={ok}"),
        ("dup-keys-same", "default", f"/any/x?b=1&access_token={ok}&b=2"),
        ("empty-value-other", "default", f"/any/x?x=&access_token={ok}"),
    ]:
        add("query-strip", name, scen, path)

    # -- (7) what Envoy accepts and meshguard used to refuse
    h, p, s = ok.split(".")
    add("envoy-accepts", "leading-dot", "default", "/alice", [bearer("." + ok)])
    add("envoy-accepts", "double-dot", "default", "/alice", [bearer(f"{h}..{p}.{s}")])
    add("envoy-accepts", "trailing-dots", "default", "/alice", [bearer(ok + "..")])
    add("envoy-accepts", "padded-signature", "default", "/alice",
        [bearer(f"{h}.{p}.{s}" + "=" * (-len(s) % 4))])
    padded_h = b64(json.dumps({"alg": "RS256", "kid": "rsa-1", "typ": "JWT"}).encode())
    pad = "=" * (-len(padded_h) % 4)
    add("envoy-accepts", "padded-header-segment", "default", "/alice",
        [bearer(forge(claims(), h_text=padded_h + pad))])
    add("envoy-accepts", "pct-encoded-param", "default", f"/alice?access_token={pct(ok)}")
    add("envoy-accepts", "pct-encoded-dots", "default", "/alice?access_token=" + ok.replace(".", "%2E"))
    add("envoy-accepts", "pct-encoded-cookie", "locations", "/alice", [("cookie", "session=" + ok.replace(".", "%2E"))])
    add("envoy-accepts", "quoted-cookie", "locations", "/alice", [("cookie", f'session="{ok}"')])
    add("envoy-accepts", "cookie-spaces", "locations", "/alice", [("cookie", f"a=1;   session={ok} ; b=2")])
    add("envoy-accepts", "cookie-no-space", "locations", "/alice", [("cookie", f"a=1;session={ok}")])
    add("envoy-accepts", "repeated-cookie-headers", "locations", "/alice", [("cookie", "a=1"), ("cookie", f"session={ok}")])
    for name, header in [("kid-empty", {"alg": "RS256", "kid": ""}), ("typ-number", {"alg": "RS256", "kid": "rsa-1", "typ": 1}),
                         ("typ-other", {"alg": "RS256", "kid": "rsa-1", "typ": "at+jwt"}),
                         ("crit", {"alg": "RS256", "kid": "rsa-1", "crit": ["exp"]}),
                         ("jwk-string", {"alg": "RS256", "kid": "rsa-1", "jwk": "x"}),
                         ("x5c-string", {"alg": "RS256", "kid": "rsa-1", "x5c": "x"}),
                         ("cty", {"alg": "RS256", "kid": "rsa-1", "cty": 5}),
                         ("kid-number", {"alg": "RS256", "kid": 1}), ("kid-null", {"alg": "RS256", "kid": None}),
                         ("alg-number", {"alg": 256}), ("alg-lower", {"alg": "rs256"}), ("no-alg", {"kid": "rsa-1"}),
                         ("header-list", [1]), ("header-null", "null"), ("header-string", '"x"'), ("b64", {"alg": "RS256", "kid": "rsa-1", "b64": False})]:
        add("envoy-accepts", f"header-{name}", "default", "/alice", [bearer(forge(claims(), ring.rsa, header=header))])
    r_s = ring.ec.sign(f"{h}.{p}".encode())
    # ES256 with 33-byte halves (a leading zero on r and s): BN_bin2bn takes each half as a number
    tok33 = lambda sig: forge(claims(), ring.ec, sig=sig)  # noqa: E731
    from meshguard_tools.e2e import jwt_parity as jp
    hh = b64(json.dumps({"alg": "ES256", "typ": "JWT", "kid": "ec-1"}, separators=(",", ":")).encode())
    pp = b64(json.dumps(claims(), separators=(",", ":")).encode())
    sig = ring.ec.sign(f"{hh}.{pp}".encode())
    padded_halves = b64(b"\x00" + sig[:32] + b"\x00" + sig[32:])
    add("envoy-accepts", "es256-33-byte-halves", "default", "/alice", [bearer(f"{hh}.{pp}.{padded_halves}")])
    add("envoy-accepts", "es256-63-bytes", "default", "/alice", [bearer(f"{hh}.{pp}.{b64(sig[:63])}")])
    add("envoy-accepts", "es256-empty-sig-bytes", "default", "/open", [bearer(f"{hh}.{pp}.AA")])
    add("envoy-accepts", "ed25519-short", "default", "/open",
        [bearer(forge(claims(), ring.ed, sig=ring.ed.sign(b"x")[:63]))])
    add("envoy-accepts", "ed25519-short-no-kid", "default", "/open",
        [bearer(forge(claims(), ring.ed, kid=None, sig=b"\x00" * 10))])
    add("envoy-accepts", "hs-short-sig", "default", "/open", [bearer(forge(claims(), ring.hs, sig=b"\x00" * 31))])
    add("envoy-accepts", "rsa-short-sig", "default", "/open", [bearer(forge(claims(), ring.rsa, sig=b"\x01" * 10))])
    add("envoy-accepts", "sig-nonzero-trailing-bits", "default", "/alice",
        [bearer(ok[:-1] + chr(ord(ok[-1]) ^ 1) if ok[-1] not in "AQgw" else ok)])
    add("envoy-accepts", "sig-space", "default", "/open", [bearer(f"{h}.{p}.{s[:10]} {s[10:]}")])
    add("envoy-accepts", "sig-bad-char", "default", "/open", [bearer(f"{h}.{p}.{s[:10]}*{s[10:]}")])
    add("envoy-accepts", "sig-std-alphabet", "default", "/open", [bearer(f"{h}.{p}.{s.replace('-', '+').replace('_', '/')}")])
    add("envoy-accepts", "header-bad-b64", "default", "/open", [bearer(f"!{h}.{p}.{s}")])
    add("envoy-accepts", "payload-one-char", "default", "/open", [bearer(f"{h}.A.{s}")])
    add("envoy-accepts", "payload-padding-3", "default", "/open", [bearer(f"{h}.{p}===.{s}")])
    del tok33, jp, r_s
    for key in (ring.rsa, ring.ps, ring.ec, ring.ec384, ring.ed, ring.hs):
        add("envoy-accepts", f"odd-jwks-{key.alg}", "odd-jwks", "/alice", [bearer(forge(claims(), key))])
        add("envoy-accepts", f"odd-jwks-{key.alg}-no-kid", "odd-jwks", "/alice", [bearer(forge(claims(), key, kid=None))])
    for salt in (0, 1, 20, 32, 48, 64, 190, 222):
        hh2 = b64(json.dumps({"alg": "PS256", "kid": "ps-1"}).encode())
        pp2 = b64(json.dumps(claims()).encode())
        add("envoy-accepts", f"ps256-salt-{salt}", "default", "/alice",
            [bearer(f"{hh2}.{pp2}.{b64(ring.ps.sign(f'{hh2}.{pp2}'.encode(), 'PS256', salt))}")])
    hh3 = b64(json.dumps({"alg": "PS384", "kid": "ps-1"}).encode())
    add("envoy-accepts", "ps384-on-ps256-key", "default", "/alice",
        [bearer(f"{hh3}.{pp2}.{b64(ring.ps.sign(f'{hh3}.{pp2}'.encode(), 'PS384'))}")])
    add("envoy-accepts", "odd-jwks-weak-kid", "odd-jwks", "/alice", [bearer(forge(claims(), ring.rsa, kid="weak"))])

    # -- more location and time edges
    for name, scen, path, headers in [
        ("latin1-before-token", "default", "/open", [("authorization", "Bearer \xe9" + ok)]),
        ("space-inside-header-section", "default", "/alice", [("authorization", f"Bearer {h[:5]} {h[5:]}.{p}.{s}")]),
        ("tab-after-token", "default", "/alice", [("authorization", f"Bearer {ok}\t")]),
        ("cookie-name-case", "locations", "/alice", [("cookie", "Session=" + ok)]),
        ("prefix-twice", "locations", "/alice", [("x-tok", "Tok Tok " + ok)]),
        ("prefix-in-the-middle", "locations", "/alice", [("x-tok", "abc Tok " + ok)]),
        ("cookie-empty-then-good", "locations", "/alice", [("cookie", "session=; session=" + ok)]),
        ("cookie-without-equals", "locations", "/alice", [("cookie", "session; session=" + ok)]),
        ("semicolon-in-query", "default", "/any/x?a=1;access_token=" + ok, []),
        ("plus-inside-param-token", "default", "/any/x?access_token=" + ok[:10] + "+" + ok[10:], []),
        ("empty-query", "default", "/any/x?", []),
        ("double-equals", "default", "/any/x?access_token==" + ok, []),
        ("upper-case-param", "default", "/any/x?ACCESS_TOKEN=" + ok, []),
        ("issuer-case", "default", "/alice", [bearer(t(iss=ISS.upper()))]),
        ("aud-empty-and-slash", "default", "/open", [bearer(t(aud=["", "web-api/"]))]),
        ("aud-scheme-only", "default", "/open", [bearer(t(aud="http://"))]),
        ("sub-list", "default", "/alice", [bearer(t(sub=["alice"]))]),
    ]:
        add("malformed-location", name, scen, path, headers)

    # -- (8) texts and claim-to-header formatting
    fmt = dict(big=12345678901234567890, float=1.5, neg=-3, empty="", flag=False, org={"team": "core"},
               groups=["a", "b"])
    add("outputs", "claim-formats", "default", "/alice", [bearer(t(**fmt))])
    for name, extra in [("num-1e3", {"num": 1000.0}), ("num-exp", {"num": 1e21}), ("num-small", {"num": 1e-7}),
                        ("num-2-53", {"num": 9007199254740993}), ("num-neg-zero", {"num": -0.0}),
                        ("num-float-int", {"num": 2.0}), ("num-third", {"num": 1 / 3}),
                        ("big-u64", {"big": 18446744073709551615}), ("big-2-64", {"big": 18446744073709551616}),
                        ("float-big", {"float": 1e300}), ("neg-frac", {"neg": -0.5}), ("empty-nested", {"org": {"team": ""}}),
                        ("nested-num", {"org": {"team": 7}}), ("bool-true", {"flag": True}), ("sub-empty", {"sub": ""}),
                        ("unicode", {"empty": "é✓"}), ("null-claim", {"org": {"team": None}}),
                        # numbers in a list or object claim: protobuf's JSON text (%.15g, or %.17g when
                        # 15 digits do not round-trip, whatever the shortest form; %.17g above
                        # DBL_MAX / 1.000000000000001)
                        ("list-17-digits", {"groups": [1 / 3, 2 / 3, 0.1, 1e-7 / 3, 123456789.123456789]}),
                        ("list-17-digit-ties", {"groups": [1000000000000000.25, 1000000000000000.75]}),
                        ("list-near-max", {"groups": [1.7976931348623157e308, 1.7e308, 1e21, 1e15, 5e-324]}),
                        # one key: Envoy prints a Struct's keys in its protobuf map's order, which
                        # is unspecified (meshguard sorts them; README, deliberate differences)
                        ("obj-17-digits", {"org": {"team": -2 / 3}})]:
        add("outputs", name, "default", "/any", [bearer(t(**extra))])
    add("outputs", "spoofed-outputs", "default", "/open", [("x-sub", "admin"), ("x-jwt-payload", "e30"), ("x-num", "1")])
    add("outputs", "spoofed-with-token", "default", "/any", [("x-sub", "admin"), bearer(ok)])
    add("outputs", "cors-preflight", "default", "/any", [bearer("!!"), ("origin", "https://a.test"),
                                                          ("access-control-request-method", "GET")], method="OPTIONS")
    add("outputs", "long-path-realm", "default", "/open/" + "a" * 300 + "?q=1", [bearer("x.y.z")])
    add("outputs", "ed25519-wrong-length", "default", "/open", [bearer(forge(claims(), ring.ed, sig=b"\x00" * 10))])

    # -- (9) ECDSA P-384 (meshguard's own p384_verify against BoringSSL): signatures Envoy reads as two
    # BN_bin2bn halves of len/2 bytes each, r and s in [1, n-1], high S accepted; the digest is chosen by
    # the token's alg (SHA-384 only for ES384 and SHA-512 only for ES512 with an EC key, else SHA-256)
    es384_cases(ring, add)
    return out


P384_N = int("ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973", 16)


def es384_cases(ring, add) -> None:
    key = ring.ec384

    def segments(alg: str = "ES384", kid: str | None = "ec-2", **claim) -> str:
        header = {"alg": alg, "typ": "JWT", **({"kid": kid} if kid is not None else {})}
        return f"{b64(json.dumps(header, separators=(',', ':')).encode())}.{b64(json.dumps(claims(**claim)).encode())}"

    def tok(signed: str, sig: bytes) -> list:
        return [bearer(f"{signed}.{b64(sig)}")]

    def num(v: int, size: int = 48) -> bytes:
        return v.to_bytes(size, "big")

    signed = segments()
    sig = key.sign(signed.encode())
    r, s = int.from_bytes(sig[:48], "big"), int.from_bytes(sig[48:], "big")
    flipped = bytearray(sig)
    flipped[20] ^= 0x10
    other = segments(sub="bob")
    cls = "es384"
    for name, path, headers in [
        ("valid", "/alice", tok(signed, sig)),
        ("high-s", "/alice", tok(signed, num(r) + num(P384_N - s))),
        ("tampered-signature", "/open", tok(signed, bytes(flipped))),
        ("tampered-payload", "/alice", tok(segments(sub="alice", num=43), key.sign(other.encode()))),
        ("other-key", "/open", tok(signed, ec_other_signature(signed))),
        ("swapped-r-s", "/open", tok(signed, sig[48:] + sig[:48])),
        ("97-bytes-trailing", "/alice", tok(signed, sig + b"\x5a")),
        ("98-bytes-padded-halves", "/alice", tok(signed, b"\x00" + sig[:48] + b"\x00" + sig[48:])),
        ("98-bytes-trailing", "/open", tok(signed, sig + b"\x00\x00")),
        ("95-bytes", "/open", tok(signed, sig[:95])),
        ("64-bytes", "/open", tok(signed, sig[:64])),
        ("2-bytes", "/open", tok(signed, b"\x01\x01")),
        ("r-zero", "/open", tok(signed, num(0) + num(s))),
        ("s-zero", "/open", tok(signed, num(r) + num(0))),
        ("r-n", "/open", tok(signed, num(P384_N) + num(s))),
        ("s-n", "/open", tok(signed, num(r) + num(P384_N))),
        ("r-plus-n", "/open", tok(signed, num(r + P384_N, 49) + num(s, 49))),
        ("s-plus-n", "/open", tok(signed, num(r, 49) + num(s + P384_N, 49))),
        ("r-all-ones", "/open", tok(signed, b"\xff" * 48 + num(s))),
    ]:
        add(cls, name, "default", path, headers)
    # the digest of an alg other than ES384 on a P-384 key without alg (odd-jwks' kid ec-2)
    for alg, digest_of, path in [("ES256", "ES256", "/alice"), ("ES512", "ES512", "/alice"),
                                 ("ES256", "ES384", "/open"), ("ES512", "ES384", "/open"),
                                 ("RS384", "ES256", "/alice"), ("RS384", "ES384", "/open"),
                                 ("HS384", "ES256", "/alice"), ("HS384", "ES384", "/open"),
                                 ("PS512", "ES256", "/alice")]:
        signed2 = segments(alg=alg)
        add(cls, f"no-alg-key-{alg.lower()}-token-{digest_of.lower()}-digest", "odd-jwks", path,
            tok(signed2, key.sign(signed2.encode(), digest_of)))
    # P-384 keys Envoy refuses at import (odd-jwks: kid ec-bad-*): the token then has no key to match
    for kid in ("ec-bad-y", "ec-bad-x-plus-p", "ec-bad-zero", "ec-bad-p256-point"):
        signed3 = segments(kid=kid)
        add(cls, f"key-{kid[3:]}", "odd-jwks", "/open", tok(signed3, key.sign(signed3.encode())))


def ec_other_signature(signed: str) -> bytes:
    from cryptography.hazmat.primitives.asymmetric import ec

    from meshguard_tools.e2e.jwt_parity import Key
    return Key("x", "ES384", ec.generate_private_key(ec.SECP384R1())).sign(signed.encode())
