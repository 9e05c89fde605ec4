"""A small version of `make soak` (meshguard_tools/soak/soak.py): requests keep flowing on keep-alive
connections (plaintext, and mTLS with the productpage certificate) while the listeners are replaced
through a watched file, once with a valid policy generation and once with a configuration meshguard
refuses. No request may fail; each is decided by generation 0 or 1 (never by none); once the update is
applied and the old connections drained, only generation 1 decides; the invalid update is rejected and
generation 1 keeps deciding."""
from __future__ import annotations

import http.client
import ssl
import threading
import time

from meshguard_tools.e2e.fixtures import WASM, free_port
from meshguard_tools.soak import scenario as S
from test_failure_policy import lds_counters, start_envoy, wait_lds

DRAIN_S = 1  # start_envoy starts Envoy with --drain-time-s 1 --drain-strategy immediate


def connection(listener: str, plain: int, mtls: int, cert_dir) -> http.client.HTTPConnection:
    if listener == "plain":
        return http.client.HTTPConnection("127.0.0.1", plain, timeout=10)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile=str(cert_dir / "ca.crt"))
    ctx.load_cert_chain(str(cert_dir / "productpage.crt"), str(cert_dir / "productpage.key"))
    return http.client.HTTPSConnection("localhost", mtls, context=ctx, timeout=10)


def test_requests_during_valid_and_invalid_listener_updates(envoy_binary, cert_dir, tmp_path):
    assert WASM.exists(), "run `make build` first"
    tokens = S.Tokens()
    lds = S.LdsDir(tmp_path)
    plain, mtls, admin = free_port(), free_port(), free_port()

    def listeners(pc):
        return S.listeners(pc, wasm_path=str(WASM), cert_dir=str(cert_dir), plain_port=plain, mtls_port=mtls)

    lds.write(listeners(S.plugin_config(0, tokens.jwks)))
    p = start_envoy(envoy_binary, S.server_bootstrap(lds, admin), tmp_path, "server", admin)
    results: list = []  # (t_sent, kind, status, decision)
    failures: list = []
    stop = threading.Event()

    def client(listener: str):
        kinds = [k for k in S.KINDS if k.listener == listener]
        conn, i = connection(listener, plain, mtls, cert_dir), 0
        while not stop.is_set():
            k = kinds[i % len(kinds)]
            i += 1
            t = time.time()
            try:
                conn.request(k.method, k.path, headers={**k.headers(tokens), "Content-Length": "0"})
                r = conn.getresponse()
                r.read()
                results.append((t, k.name, r.status, r.getheader(S.DECISION_HEADER) or "-"))
                if r.getheader("connection", "").lower() == "close":  # drained: reconnect, as any client would
                    conn.close()
                    conn = connection(listener, plain, mtls, cert_dir)
            except Exception as e:  # noqa: BLE001 - every failure is a test failure, collected
                failures.append(f"{k.name}: {type(e).__name__}: {e}")
                conn.close()
                conn = connection(listener, plain, mtls, cert_dir)
            time.sleep(0.002)

    try:
        p.wait_ready()
        threads = [threading.Thread(target=client, args=(lst,), daemon=True) for lst in ("plain", "plain", "mtls", "mtls")]
        for t in threads:
            t.start()
        time.sleep(1.0)
        before = lds_counters(p)
        lds.write(listeners(S.plugin_config(1, tokens.jwks)))
        wait_lds(p, "success", before["success"])
        t_applied = time.time()
        time.sleep(DRAIN_S + 2.0)
        before = lds_counters(p)
        t_invalid = time.time()
        lds.write(listeners(S.invalid_plugin_config(2, tokens.jwks, "bad-cidr")))
        after = wait_lds(p, "rejected", before["rejected"])
        assert after["success"] == before["success"], after
        time.sleep(1.5)
        stop.set()
        for t in threads:
            t.join(timeout=15)
    finally:
        stop.set()
        p.stop()

    assert not failures, failures[:10]
    assert len(results) >= 200, f"only {len(results)} requests"  # about 5,000 on an idle machine
    wrong, late_old = [], []
    for t, kind, status, decision in results:
        ok = [g for g in (0, 1) if S.expected(kind, g) == (status, decision)]
        if not ok:
            wrong.append((kind, status, decision))
        elif t > t_applied + DRAIN_S + 1.0 and ok == [0]:
            late_old.append((kind, status, decision, round(t - t_applied, 2)))
    assert not wrong, f"decided by neither generation: {wrong[:10]}"
    assert not late_old, f"generation 0 still deciding after the update and the drain: {late_old[:10]}"
    # both generations really decided, and generation 1 also after the rejected update
    gens = {S.generation_of(d) for _, _, _, d in results}
    assert {0, 1} <= gens, gens
    after_invalid = [(k, s, d) for t, k, s, d in results if t > t_invalid and S.generation_of(d) is not None]
    assert after_invalid and all(S.generation_of(d) == 1 for _, _, d in after_invalid), after_invalid[:10]


def test_soak_checker_catches_wrong_and_stale_decisions():
    """The soak's verdict (scenario.check_tallies) on made-up tallies: what it must count as wrong."""
    gens = {0: {"written": 1000.0, "applied": 1000.5, "retired": 1100.2},
            1: {"written": 1100.0, "applied": 1100.2}}
    ok = [("flip-a", *S.expected("flip-a", 0), 1050, 10),  # old generation while it is current
          ("flip-a", *S.expected("flip-a", 0), 1103, 3),  # old generation during the drain
          ("flip-a", *S.expected("flip-a", 1), 1101, 5),
          ("jwt-expired", 401, "-", 1200, 2), ("api-no-identity", 403, "deny none", 1060, 4)]
    c = S.check_tallies(ok, gens, drain_s=2)
    assert (c["requests"], c["wrong"], c["errors"]) == (24, 0, 0), c
    bad = [("flip-a", *S.expected("flip-a", 0), 1110, 1),  # old generation long after the drain
           ("flip-a", 200, "-", 1050, 1),  # allowed with no decision: the filter did not run
           ("flip-b", *S.expected("flip-a", 0), 1050, 1),  # the other path's decision
           ("public", 403, "deny none", 1050, 1),
           ("admin", *S.expected("admin", 2), 1105, 1),  # a generation that was never applied
           ("jwt-valid", 401, "-", 1050, 1)]
    c = S.check_tallies(bad, gens, drain_s=2)
    assert c["wrong"] == len(bad) and c["errors"] == 0, c["wrong_examples"]
    c = S.check_tallies([("public", 503, "-", 1050, 7), ("public", 0, "-", 1050, 1)], gens, drain_s=2)
    assert (c["wrong"], c["errors"]) == (0, 8), c
