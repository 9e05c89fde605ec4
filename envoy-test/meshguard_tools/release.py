"""`make release`: the files of a meshguard release in target/release-artifacts/, reproducibly (stdlib only).

    python -m meshguard_tools.release --wasm target/wasm32-wasip1/release/meshguard.wasm --oci target/oci \\
        --out target/release-artifacts

* ``meshguard-<v>.wasm``: the raw module (for a WasmPlugin ``url: https://...`` or ``file://...``);
* ``meshguard-<v>-oci.tar``: the OCI image layout of ``make oci`` as one tar (``oras``/``skopeo`` copy it
  to a registry as ``oci-archive:``; ``make publish`` pushes the same image); ``meshguard-<v>.digest``:
  its manifest digest, the value for a WasmPlugin's ``sha256``;
* ``meshguard-<v>.cdx.json``: a CycloneDX 1.5 SBOM made from Cargo.lock (every crate of the lock file,
  with its checksum, license when the crate's source is in the cargo registry cache, and the dependency
  graph); the module's own component carries the module's sha256;
* ``SHA256SUMS``: ``sha256sum -c`` format, for every file above.

Same inputs, same bytes: tar entries have fixed metadata, JSON is serialized with sorted keys, the SBOM's
serial number is derived from its content and its timestamp is ``SOURCE_DATE_EPOCH`` (or the last commit's
time, or none).
"""
from __future__ import annotations

import argparse
import datetime
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tomllib
import uuid
from pathlib import Path

from meshguard_tools import oci
from meshguard_tools.paths import REPO, TARGET

CRATES_IO = "registry+https://github.com/rust-lang/crates.io-index"


def purl(name: str, version: str) -> str:
    return f"pkg:cargo/{name}@{version}"


def _registry_license(name: str, version: str) -> str | None:
    """The ``license`` of a crate's Cargo.toml in the local cargo registry cache, if it is there."""
    cargo_home = Path(os.environ.get("CARGO_HOME", Path.home() / ".cargo"))
    for manifest in sorted(cargo_home.glob(f"registry/src/*/{name}-{version}/Cargo.toml")):
        with open(manifest, "rb") as f:
            lic = tomllib.load(f).get("package", {}).get("license")
        if isinstance(lic, str):
            return lic
    return None


def _commit_time() -> str | None:
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if not epoch:
        try:
            epoch = subprocess.run(["git", "log", "-1", "--format=%ct"], cwd=REPO, capture_output=True, text=True,
                                   timeout=30, check=True).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None
    if not epoch:
        return None
    return datetime.datetime.fromtimestamp(int(epoch), datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def sbom(lock_path: Path, root_name: str, root_version: str, wasm: bytes) -> dict:
    """A CycloneDX 1.5 document from Cargo.lock; ``root_name`` is the package the module is built from."""
    with open(lock_path, "rb") as f:
        packages = tomllib.load(f).get("package", [])
    by_name: dict[str, list[dict]] = {}
    for p in packages:
        by_name.setdefault(p["name"], []).append(p)

    def ref_of(dep: str) -> str:
        # Cargo.lock writes "name", "name version" or "name version (source)"
        parts = dep.split(" ")
        if len(parts) == 1:
            (only,) = by_name[parts[0]]
            return purl(only["name"], only["version"])
        return purl(parts[0], parts[1])

    components, dependencies = [], []
    root_ref = purl(root_name, root_version)
    for p in sorted(packages, key=lambda p: (p["name"], p["version"])):
        ref = purl(p["name"], p["version"])
        dependencies.append({"ref": ref, "dependsOn": sorted({ref_of(d) for d in p.get("dependencies", [])})})
        if ref == root_ref:
            continue
        c: dict = {"type": "library", "bom-ref": ref, "name": p["name"], "version": p["version"], "purl": ref}
        if p.get("checksum"):
            c["hashes"] = [{"alg": "SHA-256", "content": p["checksum"]}]
        if p.get("source") and p["source"] != CRATES_IO:
            c["externalReferences"] = [{"type": "distribution", "url": p["source"]}]
        if not p.get("source"):
            c["scope"] = "required"  # another package of this workspace
        lic = _registry_license(p["name"], p["version"]) if p.get("source") == CRATES_IO else None
        if lic:
            c["licenses"] = [{"expression": lic}]
        components.append(c)
    root = {"type": "application", "bom-ref": root_ref, "name": root_name, "version": root_version,
            "purl": root_ref, "licenses": [{"expression": "Apache-2.0"}],
            "hashes": [{"alg": "SHA-256", "content": hashlib.sha256(wasm).hexdigest()}],
            "description": "meshguard.wasm, the proxy-wasm authorization filter"}
    metadata: dict = {"component": root,
                      "tools": {"components": [{"type": "application", "name": "meshguard_tools.release"}]},
                      "properties": [{"name": "meshguard:sbom:source",
                                      "value": "Cargo.lock: every crate of the workspace lock file (the module, "
                                               "the CLI and the tests), a superset of what the module links"}]}
    when = _commit_time()
    if when:
        metadata["timestamp"] = when
    doc = {"bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1, "metadata": metadata,
           "components": components, "dependencies": dependencies}
    doc["serialNumber"] = "urn:uuid:" + str(uuid.uuid5(uuid.NAMESPACE_URL, hashlib.sha256(
        oci.canonical_json(doc)).hexdigest()))
    return doc


def layout_tar(layout: Path) -> bytes:
    """The OCI image layout (``oci-layout``, ``index.json``, ``blobs/``; not the extra files ``make oci`` writes
    next to them) as an uncompressed tar with fixed metadata, entries in sorted order."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        members = [layout / "oci-layout", layout / "index.json", *(layout / "blobs").rglob("*")]
        for path in sorted(p for p in members if p.is_file()):
            data = path.read_bytes()
            info = tarfile.TarInfo(path.relative_to(layout).as_posix())
            info.size, info.mtime, info.mode, info.uid, info.gid = len(data), 0, 0o644, 0, 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def release(wasm_path: Path, layout: Path, out: Path) -> dict[str, str]:
    """Writes the artifacts into ``out`` (emptied first); returns file name -> sha256 hex."""
    version = oci.crate_version()
    wasm = wasm_path.read_bytes()
    manifest, blobs = oci.read_layout(layout)
    if oci.self_check(manifest, lambda d: blobs[d]) != wasm:
        raise SystemExit(f"release: the image in {layout} does not hold {wasm_path}: run `make oci`")
    with open(REPO / "Cargo.toml", "rb") as f:
        root_name = tomllib.load(f).get("package", {}).get("name", "meshguard")
    files = {
        f"meshguard-{version}.wasm": wasm,
        f"meshguard-{version}-oci.tar": layout_tar(layout),
        f"meshguard-{version}.digest": (oci.sha256(manifest) + "\n").encode(),
        f"meshguard-{version}.cdx.json": json.dumps(sbom(REPO / "Cargo.lock", root_name, version, wasm),
                                                    indent=2, sort_keys=True).encode() + b"\n",
    }
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    sums = {}
    for name, data in files.items():
        (out / name).write_bytes(data)
        sums[name] = hashlib.sha256(data).hexdigest()
    (out / "SHA256SUMS").write_text("".join(f"{h}  {n}\n" for n, h in sorted(sums.items())), encoding="ascii")
    return sums


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--wasm", type=Path, default=oci.DEFAULT_WASM)
    ap.add_argument("--oci", type=Path, default=oci.DEFAULT_OUT, help="the OCI layout of `make oci`")
    ap.add_argument("--out", type=Path, default=TARGET / "release-artifacts")
    a = ap.parse_args(argv)
    sums = release(a.wasm, a.oci, a.out)
    for name, h in sorted(sums.items()):
        print(f"release: {a.out / name}  sha256:{h}")
    print(f"release: {a.out / 'SHA256SUMS'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
