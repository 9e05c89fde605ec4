"""JWT counters in Envoy's admin /stats (README "Observability": meshguard_jwt_accepted,
meshguard_jwt_rejected_<reason>, meshguard_jwt_cache_hit|miss, under ``wasmcustom.``, flushed once a second)."""
import re

from meshguard_tools.e2e.policies import config
from meshguard_tools.e2e.jwt_tokens import bearer, jwt_rule, keys, meshguard_counters as counters, poll, request_authentication, token

# labels of its own, so this Envoy (and its counters) is not shared with other tests
LABELS = {"app": "web-api", "test": "jwt-metrics"}
PC = config(request_authentication("keycloak", jwt_rule(audiences=["web-api"]), labels=LABELS), labels=LABELS)


def test_jwt_counters(envoy):
    c = envoy(PC)
    tok = token()
    for _ in range(6):  # one token, new connections: each of the 2 workers misses once at most, then hits
        assert c.request("GET", "/", headers=[bearer(tok)]).status == 200
    for _ in range(2):
        assert c.request("GET", "/", headers=[bearer(token(exp_in=-3600))]).status == 401
    assert c.request("GET", "/", headers=[bearer(token(keys().impostor))]).status == 401
    assert c.request("GET", "/", headers=[bearer(token(aud="other"))]).status == 403
    assert c.request("GET", "/", headers=[bearer(token(iss="https://other.test"))]).status == 401
    assert c.request("GET", "/").status == 200

    def settled():
        s = counters(c)
        return s if (s.get("meshguard_jwt_accepted") == 6 and s.get("meshguard_jwt_rejected_expired") == 2
                     and s.get("meshguard_jwt_cache_hit", 0) + s.get("meshguard_jwt_cache_miss", 0) == 11) else None

    s = poll(settled, timeout=3.0)
    assert s, f"counters not flushed within 3 s: {counters(c)}"
    assert s["meshguard_jwt_cache_hit"] >= 4, s
    assert s["meshguard_jwt_rejected_signature"] == 1, s
    assert s["meshguard_jwt_rejected_audience"] == 1, s
    assert s["meshguard_jwt_rejected_unknown_issuer"] == 1, s
    assert s["meshguard_allowed"] == 7, s  # the 6 verified requests and the one without a token

    prom = c.admin("/stats/prometheus")
    m = re.search(r"^(\S*meshguard_jwt_accepted)\S* (\d+)$", prom, re.M)
    assert m and int(m.group(2)) == 6, prom[:2000]
