"""Differential test, bounded: meshguard and Envoy's native RBAC filter (the filters istiod would generate,
``meshguard_tools/istio_rbac.py``) serve the same random AuthorizationPolicies behind two listeners of one real
Envoy, and every random request must get the same decision from both (``meshguard_tools/difftest/``).

The seed is fixed so CI is reproducible (``DIFF_SEED`` overrides it, ``DIFF_POLICIES`` / ``DIFF_REQUESTS``
the size); ``make difftest`` runs a longer campaign with a fresh seed. What is compared and what is
excluded by rule: README, "Reliability".
"""
import os

from meshguard_tools.difftest import difftest
from meshguard_tools.e2e.fixtures import E2E_DIR, WASM

SEED = int(os.environ.get("DIFF_SEED", "20261123"))
POLICIES = int(os.environ.get("DIFF_POLICIES", "40"))
REQUESTS = int(os.environ.get("DIFF_REQUESTS", "50"))


def test_meshguard_decides_like_native_rbac(envoy_binary, cert_dir, capsys):
    assert WASM.exists(), f"{WASM} does not exist: run `make build` first"
    lines = []
    result = difftest.campaign(seed=SEED, policies=POLICIES, requests=REQUESTS, envoy_binary=envoy_binary,
                               wasm_path=WASM, cert_dir=cert_dir, workdir=E2E_DIR / "difftest",
                               log=lines.append)
    with capsys.disabled():
        print("\n" + result.summary())
    assert result.compared == POLICIES * REQUESTS
    # the campaign must exercise both decisions, or it compares nothing interesting
    assert result.outcomes.get("200", 0) > result.compared // 10, result.summary()
    assert result.outcomes.get("403", 0) > result.compared // 10, result.summary()
    assert not result.mismatches, "\n\n".join(["\n".join(lines[:200])] + [m.report() for m in result.mismatches[:3]])
