"""The OCI image (`make oci` / `make publish`, meshguard_tools/oci.py): reproducible, in the compat layout Istio's
fetcher accepts, pushed to a real registry (Debian `docker-registry`, the Distribution v2 registry) on loopback,
pulled back with plain HTTP, and the pulled plugin.wasm loads in Envoy.

Istio's rules (pkg/wasm/imagefetcher.go): a single image manifest, not an index; the last layer's media type is
`application/vnd.oci.image.layer.v1.tar+gzip`; the layer holds `plugin.wasm`; WasmPlugin `sha256` is compared with
the manifest digest.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from meshguard_tools.e2e.fixtures import E2E_DIR, WASM, free_port
from meshguard_tools.paths import REPO

OCI = [sys.executable, "-m", "meshguard_tools.oci"]
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
BOOKINFO = json.loads((REPO / "envoy-test" / "demos" / "bookinfo.json").read_text())


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def build(out: Path, *extra: str) -> str:
    p = subprocess.run([*OCI, "build", "--wasm", str(WASM), "--out", str(out), *extra],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip()


@pytest.fixture(scope="module")
def workdir():
    if not WASM.exists():
        pytest.fail(f"{WASM} does not exist: run `make build` first", pytrace=False)
    E2E_DIR.mkdir(parents=True, exist_ok=True)
    d = Path(tempfile.mkdtemp(prefix="oci-", dir=E2E_DIR))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def layout(workdir):
    out = workdir / "layout"
    digest = build(out)
    return out, digest


def test_build_is_reproducible(layout, workdir):
    out, digest = layout
    again = workdir / "again"
    assert build(again) == digest
    for f in sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file()):
        assert (out / f).read_bytes() == (again / f).read_bytes(), f
    # Another tag names the same image: only index.json's ref name differs.
    assert build(workdir / "tagged", "--tag", "v9") == digest
    assert (out / "manifest.digest").read_text().strip() == digest


def test_layout_is_the_compat_variant(layout):
    out, digest = layout
    assert json.loads((out / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads((out / "index.json").read_text())
    assert [m["digest"] for m in index["manifests"]] == [digest]
    blob = lambda d: (out / "blobs" / "sha256" / d.split(":")[1]).read_bytes()  # noqa: E731
    manifest = json.loads(blob(digest))
    check_manifest(manifest, blob)
    wasm = WASM.read_bytes()
    assert (out / "meshguard.wasm").read_bytes() == wasm
    assert (out / "meshguard.wasm.sha256").read_text() == f"{hashlib.sha256(wasm).hexdigest()}  meshguard.wasm\n"


def layer_files(layer: bytes) -> dict[str, tuple[tarfile.TarInfo, bytes]]:
    out = {}
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(layer)), mode="r:") as tar:
        for m in tar:
            f = tar.extractfile(m)
            out[m.name] = (m, f.read() if f else b"")
    return out


def check_manifest(manifest: dict, blob) -> bytes:
    """Istio's compat rules plus our reproducibility settings; returns plugin.wasm."""
    assert manifest["schemaVersion"] == 2
    assert manifest["mediaType"] == MANIFEST_TYPE
    assert "manifests" not in manifest, "an index, not an image manifest"
    assert manifest["annotations"]["module.wasm.image/variant"] == "compat"
    assert len(manifest["layers"]) == 1
    desc = manifest["layers"][0]
    assert desc["mediaType"] == LAYER_TYPE
    layer = blob(desc["digest"])
    assert (sha(layer), len(layer)) == (desc["digest"], desc["size"])
    assert layer[4:8] == b"\0\0\0\0", "gzip header mtime must be 0"
    files = layer_files(layer)
    assert list(files) == ["plugin.wasm"]
    info, wasm = files["plugin.wasm"]
    assert (info.mtime, info.uid, info.gid, info.mode, info.uname, info.gname) == (0, 0, 0, 0o644, "", "")
    assert wasm.startswith(b"\0asm")
    assert manifest["config"]["mediaType"] == CONFIG_TYPE
    config_bytes = blob(manifest["config"]["digest"])
    assert sha(config_bytes) == manifest["config"]["digest"]
    config = json.loads(config_bytes)
    assert (config["os"], config["architecture"]) == ("linux", "amd64")
    assert config["rootfs"] == {"type": "layers", "diff_ids": [sha(gzip.decompress(layer))]}
    return wasm


# --------------------------------------------------------------------------------------------------
# a real registry on loopback


@pytest.fixture(scope="module")
def registry(workdir):
    binary = shutil.which("docker-registry") or ("/usr/bin/docker-registry" if Path("/usr/bin/docker-registry").exists() else None)
    if not binary:
        pytest.skip("Debian package docker-registry is not installed (`make deps` installs it; "
                    "apt-get install docker-registry)")
    port = free_port()
    storage = workdir / "registry-storage"
    cfg = workdir / "registry.yml"
    cfg.write_text(json.dumps({  # JSON is YAML
        "version": 0.1,
        "log": {"level": "warn", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(storage)}, "delete": {"enabled": True}},
        "http": {"addr": f"127.0.0.1:{port}", "secret": "meshguard-test"},
    }))
    log = open(workdir / "registry.log", "wb")
    proc = subprocess.Popen([binary, "serve", str(cfg)], stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 15
    while True:
        try:
            with urllib.request.urlopen(f"{base}/v2/", timeout=2) as r:
                if r.status == 200:
                    break
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"docker-registry did not start:\n{(workdir / 'registry.log').read_text()[-2000:]}")
        time.sleep(0.1)
    yield base, f"127.0.0.1:{port}"
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def get(url: str, accept: str | None = None) -> tuple[bytes, dict]:
    req = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.read(), dict(r.headers)


def push(layout_dir: Path, host: str, repo: str, tag: str) -> subprocess.CompletedProcess:
    return subprocess.run([*OCI, "push", "--layout", str(layout_dir),
                           "--registry", f"{host}/{repo}", "--tag", tag],
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def pushed(layout, registry):
    out, digest = layout
    base, host = registry
    p = push(out, host, "meshguard/meshguard", "0.1.0-test")
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == digest
    return base, digest


def test_push_then_pull_back(pushed, workdir, validate):
    base, digest = pushed
    repo = f"{base}/v2/meshguard/meshguard"
    body, headers = get(f"{repo}/manifests/0.1.0-test", accept=MANIFEST_TYPE)
    assert headers["Content-Type"] == MANIFEST_TYPE
    assert headers["Docker-Content-Digest"] == digest
    assert sha(body) == digest, "the registry stores the manifest byte for byte"
    # By digest too (what a sha256-pinned WasmPlugin pulls).
    assert get(f"{repo}/manifests/{digest}", accept=MANIFEST_TYPE)[0] == body

    wasm = check_manifest(json.loads(body), lambda d: get(f"{repo}/blobs/{d}")[0])
    assert wasm == WASM.read_bytes(), "plugin.wasm differs from the built module"

    # The pulled module loads in Envoy and runs on_configure: a good configuration validates, a bad one is refused.
    pulled = workdir / "pulled" / "plugin.wasm"
    pulled.parent.mkdir(exist_ok=True)
    pulled.write_bytes(wasm)
    rc, out = validate(BOOKINFO, wasm_path=str(pulled))
    assert rc == 0, out[-3000:]
    rc, out = validate({"resources": 3}, wasm_path=str(pulled))
    assert rc != 0, out[-3000:]


def test_push_is_idempotent(pushed, layout, registry):
    out, digest = layout
    _, host = registry
    p = push(out, host, "meshguard/meshguard", "again")
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == digest
    assert "already present" in p.stderr


def test_push_refuses_a_non_compat_layout(layout, registry, workdir):
    """The self-check mirrors Istio's fetcher: a layout whose layer is not tar+gzip is not pushed."""
    out, digest = layout
    _, host = registry
    broken = workdir / "broken"
    shutil.copytree(out, broken)
    manifest_path = broken / "blobs" / "sha256" / digest.split(":")[1]
    manifest = json.loads(manifest_path.read_bytes())
    manifest["layers"][0]["mediaType"] = "application/vnd.oci.image.layer.v1.tar+zstd"
    data = json.dumps(manifest).encode()
    (broken / "blobs" / "sha256" / sha(data).split(":")[1]).write_bytes(data)
    index = json.loads((broken / "index.json").read_text())
    index["manifests"][0].update(digest=sha(data), size=len(data))
    (broken / "index.json").write_text(json.dumps(index))
    p = push(broken, host, "meshguard/broken", "x")
    assert p.returncode != 0
    assert "tar+gzip" in p.stderr
