"""meshguard's own JWT verification against Envoy's ``jwt_authn`` + RBAC in the same Envoy, on generated
hostile tokens of every class (``meshguard_tools/e2e/jwt_parity.py``, ``jwt_parity_cases.py``). Prints the
count per class and writes them to ``target/e2e/jwt-parity.json``."""
import json

from meshguard_tools.e2e import jwt_parity
from meshguard_tools.e2e.fixtures import E2E_DIR, WASM, free_port
from meshguard_tools.e2e.policies import config


def test_meshguard_answers_every_hostile_token_as_jwt_authn_and_rbac(envoy, echo_server):
    ring = jwt_parity.KeyRing.generate()
    extra, ports = jwt_parity.listeners(ring, echo_server.port, str(WASM), free_port)
    envoy(config(), echo_port=echo_server.port, extra_listeners=extra)
    cases = jwt_parity.cases(ring)
    counts, mismatches = jwt_parity.run(cases, ports)
    E2E_DIR.mkdir(parents=True, exist_ok=True)
    (E2E_DIR / "jwt-parity.json").write_text(json.dumps(
        {k: {"compared": n, "mismatches": m} for k, (n, m) in sorted(counts.items())}, indent=2))
    print("\njwt parity (class: compared, mismatches):")
    for k, (n, m) in sorted(counts.items()):
        print(f"  {k:20} {n:4} {m:4}")
    report = "\n".join(f"[{c.klass}] {c.name} ({c.scenario} {c.method} {c.path[:120]} {c.headers!r:.200})\n"
                       f"    Envoy:     {e!r:.600}\n    meshguard: {g!r:.600}" for c, e, g in mismatches)
    (E2E_DIR / "jwt-parity-mismatches.txt").write_text(report + "\n")
    assert not mismatches, f"{len(mismatches)} of {len(cases)} differ:\n{report}"
    assert len(counts) >= 8 and all(n > 0 for n, _ in counts.values())
