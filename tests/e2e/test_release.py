"""Release files (`make release`, meshguard_tools/release.py), the licence and changelog, and the image the
WasmPlugin manifests name: a placeholder the user is told to replace, never an image nobody published."""
from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
import tomllib
from pathlib import Path

import pytest
import yaml

from meshguard_tools import oci, release
from meshguard_tools.e2e.fixtures import E2E_DIR, WASM
from meshguard_tools.paths import REPO, WASMPLUGIN_DIR

PLACEHOLDER = "oci://registry.example.com/meshguard"


def wasmplugins() -> list[tuple[Path, dict]]:
    out = []
    for path in sorted(WASMPLUGIN_DIR.rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if isinstance(doc, dict) and doc.get("kind") == "WasmPlugin":
                out.append((path, doc))
    return out


def test_manifests_name_the_placeholder_image_and_say_to_replace_it():
    plugins = wasmplugins()
    assert len(plugins) >= 10
    for path, doc in plugins:
        url = doc["spec"]["url"]
        assert url == f"{PLACEHOLDER}:{oci.crate_version()}", f"{path}: {url}"
        text = path.read_text(encoding="utf-8")
        assert f"# REPLACE {PLACEHOLDER.removeprefix('oci://')} with the image you published" in text, path
    assert "ghcr.io/meshguard" not in "".join(p.read_text(encoding="utf-8") for p, _ in plugins)


def test_license_is_the_apache_2_text_cargo_toml_names():
    with open(REPO / "Cargo.toml", "rb") as f:
        assert tomllib.load(f)["package"]["license"] == "Apache-2.0"
    text = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text and len(text.splitlines()) > 190


def test_changelog_has_a_section_for_the_crate_version():
    text = (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
    assert re.search(rf"^## \[{re.escape(oci.crate_version())}\]", text, re.M), "CHANGELOG.md: no section"
    assert "## [Unreleased]" in text


@pytest.fixture(scope="module")
def layout() -> Path:
    assert WASM.exists(), f"{WASM} does not exist: run `make build` first"
    out = E2E_DIR / "release" / "oci"
    oci.build(WASM, out, oci.crate_version())
    return out


def test_release_files_are_reproducible_and_checksummed(layout):
    a, b = E2E_DIR / "release" / "a", E2E_DIR / "release" / "b"
    sums = release.release(WASM, layout, a)
    assert release.release(WASM, layout, b) == sums
    v = oci.crate_version()
    names = {f"meshguard-{v}.wasm", f"meshguard-{v}-oci.tar", f"meshguard-{v}.digest", f"meshguard-{v}.cdx.json"}
    assert set(sums) == names
    assert {p.name for p in a.iterdir()} == names | {"SHA256SUMS"}
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    lines = (a / "SHA256SUMS").read_text(encoding="ascii").splitlines()
    assert len(lines) == len(names)
    for line in lines:
        digest, name = line.split("  ", 1)
        assert hashlib.sha256((a / name).read_bytes()).hexdigest() == digest, name
    assert (a / f"meshguard-{v}.wasm").read_bytes() == WASM.read_bytes()


def test_release_image_tar_is_the_oci_layout_holding_the_module(layout):
    out = E2E_DIR / "release" / "image"
    release.release(WASM, layout, out)
    v = oci.crate_version()
    with tarfile.open(fileobj=io.BytesIO((out / f"meshguard-{v}-oci.tar").read_bytes())) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
        assert all(m.mtime == 0 and m.uid == 0 for m in tar.getmembers())
    assert json.loads(members["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads(members["index.json"])
    manifest = members["blobs/sha256/" + index["manifests"][0]["digest"].split(":", 1)[1]]
    assert oci.self_check(manifest, lambda d: members["blobs/sha256/" + d.split(":", 1)[1]]) == WASM.read_bytes()
    assert (out / f"meshguard-{v}.digest").read_text() == oci.sha256(manifest) + "\n"
    assert oci.sha256(manifest) == (layout / "manifest.digest").read_text().strip()


def test_sbom_lists_every_locked_crate_with_its_checksum_and_the_graph(layout):
    out = E2E_DIR / "release" / "sbom"
    release.release(WASM, layout, out)
    v = oci.crate_version()
    bom = json.loads((out / f"meshguard-{v}.cdx.json").read_text(encoding="utf-8"))
    assert (bom["bomFormat"], bom["specVersion"], bom["version"]) == ("CycloneDX", "1.5", 1)
    assert re.fullmatch(r"urn:uuid:[0-9a-f-]{36}", bom["serialNumber"])
    root = bom["metadata"]["component"]
    assert (root["name"], root["version"], root["purl"]) == ("meshguard", v, f"pkg:cargo/meshguard@{v}")
    assert root["hashes"] == [{"alg": "SHA-256", "content": hashlib.sha256(WASM.read_bytes()).hexdigest()}]
    with open(REPO / "Cargo.lock", "rb") as f:
        locked = tomllib.load(f)["package"]
    by_ref = {c["bom-ref"]: c for c in bom["components"]}
    refs = set(by_ref) | {root["bom-ref"]}
    assert refs == {f"pkg:cargo/{p['name']}@{p['version']}" for p in locked}
    for p in locked:
        ref = f"pkg:cargo/{p['name']}@{p['version']}"
        if p.get("checksum"):
            assert by_ref[ref]["hashes"] == [{"alg": "SHA-256", "content": p["checksum"]}], ref
    graph = {d["ref"]: d["dependsOn"] for d in bom["dependencies"]}
    assert set(graph) == refs and all(set(deps) <= refs for deps in graph.values())
    # The module depends on the core crate, and through it on meshguard's signature crates.
    core = next(r for r in refs if r.startswith("pkg:cargo/meshguard-core@"))
    crypto = {r for r in refs if r.startswith(("pkg:cargo/meshguard-crypto@", "pkg:cargo/meshguard-crypto-p384@"))}
    assert core in graph[root["bom-ref"]] and len(crypto) == 2 and crypto <= set(graph[core])
