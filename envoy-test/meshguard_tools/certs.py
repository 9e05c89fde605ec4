"""The test PKI (``certs.sh``: a CA, a server certificate, SPIFFE client certificates), made on demand.

``python -m meshguard_tools.certs OUTDIR [NAME=URI ...]`` is the same as running ``certs.sh``."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent / "certs.sh"

# The client certificates the tests use (among those certs.sh makes by default) -> SPIFFE URI SAN
# (None: no URI SAN, CN=no-uri-client and a DNS SAN only).
IDENTITIES = {
    "productpage": "spiffe://cluster.local/ns/default/sa/productpage",
    "reviews": "spiffe://cluster.local/ns/default/sa/reviews",
    "foo-bar": "spiffe://cluster.local/ns/foo/sa/bar",
    "ingress": "spiffe://cluster.local/ns/istio-system/sa/ingress",
    "other-td": "spiffe://other-td/ns/foo/sa/bar",
    "no-uri": None,
}


def make_certs(out_dir: Path | str, *specs: str) -> Path:
    """Creates what is missing in ``out_dir`` (existing files are kept); ``specs`` are ``NAME=URI`` client
    certificates (none: the fixed list of certs.sh). Returns ``out_dir`` as a Path."""
    subprocess.run(["bash", str(SCRIPT), str(out_dir), *specs], check=True, capture_output=True, timeout=300)
    return Path(out_dir)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: python -m meshguard_tools.certs OUTDIR [NAME=URI ...]")
    print(make_certs(sys.argv[1], *sys.argv[2:]))
