#!/usr/bin/env python3
"""Build and publish meshguard's OCI image for Istio's WasmPlugin, without Docker (stdlib only).

The image is the "compat" variant Istio's fetcher accepts (istio pkg/wasm/imagefetcher.go):

* a single image manifest (``application/vnd.oci.image.manifest.v1+json``), never an index;
* one layer ``application/vnd.oci.image.layer.v1.tar+gzip`` holding ``plugin.wasm``;
* config ``application/vnd.oci.image.config.v1+json`` with ``os: linux``, ``architecture: amd64``
  and ``rootfs.diff_ids`` (platform-resolving tools are happy with it);
* manifest annotation ``module.wasm.image/variant: compat``.

It is reproducible: the tar entry has a fixed mtime (0), uid/gid (0), mode (0644) and no user
names, the gzip header has mtime 0 and no file name, and every JSON document is serialized with
sorted keys. The same .wasm always gives the same manifest digest, which is what a WasmPlugin's
``sha256`` field pins for ``oci://`` URLs.

    python -m meshguard_tools.oci build [--wasm target/wasm32-wasip1/release/meshguard.wasm] [--out target/oci]
                                        [--tag <crate version>]
    python -m meshguard_tools.oci push --registry HOST[:PORT]/REPO [--tag <crate version>] [--layout target/oci]
                                       [--plain-http | --tls]

``build`` writes an OCI image layout (``oci-layout``, ``index.json``, ``blobs/sha256/``) plus
``meshguard.wasm`` and ``meshguard.wasm.sha256`` (for ``https://``/``file://`` users), checks the
result against Istio's rules and prints the manifest digest. ``push`` uploads it with the registry
v2 HTTP API (blob upload POST + PUT, manifest PUT); loopback registries are spoken to over plain
http, others over https. Credentials: ``REGISTRY_USER`` / ``REGISTRY_PASSWORD`` (basic, or exchanged
for a bearer token when the registry asks for one).
"""
from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import io
import ipaddress
import json
import os
import shutil
import sys
import tarfile
import tomllib
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from meshguard_tools.paths import DEFAULT_WASM, REPO, TARGET

DEFAULT_OUT = TARGET / "oci"

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
INDEX_TYPE = "application/vnd.oci.image.index.v1+json"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_LAYER_TYPE = "application/vnd.docker.image.rootfs.diff.tar.gzip"
VARIANT_ANNOTATION = "module.wasm.image/variant"
SOURCE = "https://github.com/meshguard/meshguard"
MAX_WASM_BYTES = 256 * 1024 * 1024  # Istio's ISTIO_WASM_MAX_BINARY_SIZE_BYTES default
WASM_MAGIC = b"\0asm"


def crate_version() -> str:
    """The release version: Cargo.toml's ``package.version`` (or ``workspace.package.version`` it inherits)."""
    with open(REPO / "Cargo.toml", "rb") as f:
        cargo = tomllib.load(f)
    version = cargo.get("package", {}).get("version")
    if isinstance(version, str):
        return version
    return cargo["workspace"]["package"]["version"]


def canonical_json(doc) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def descriptor(media_type: str, data: bytes, annotations: dict | None = None) -> dict:
    d = {"mediaType": media_type, "digest": sha256(data), "size": len(data)}
    if annotations:
        d["annotations"] = annotations
    return d


# --------------------------------------------------------------------------------------------------
# build


def layer_tar(wasm: bytes) -> bytes:
    """An uncompressed tar with one entry, plugin.wasm, and nothing that varies between builds."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo("plugin.wasm")
        info.size = len(wasm)
        info.mtime = 0
        info.mode = 0o644
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.type = tarfile.REGTYPE
        tar.addfile(info, io.BytesIO(wasm))
    return buf.getvalue()


def gzip_bytes(data: bytes) -> bytes:
    buf = io.BytesIO()
    # mtime=0 and filename="" keep the gzip header constant.
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
        gz.write(data)
    return buf.getvalue()


def image(wasm: bytes, version: str) -> tuple[dict[str, bytes], bytes]:
    """The blobs (digest -> bytes) and the manifest bytes of the compat image."""
    tar = layer_tar(wasm)
    layer = gzip_bytes(tar)
    config = canonical_json(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [sha256(tar)]},
        }
    )
    manifest = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": descriptor(CONFIG_TYPE, config),
            "layers": [descriptor(LAYER_TYPE, layer, {"org.opencontainers.image.title": "plugin.wasm"})],
            "annotations": {
                VARIANT_ANNOTATION: "compat",
                "org.opencontainers.image.source": SOURCE,
                "org.opencontainers.image.title": "meshguard",
                "org.opencontainers.image.version": version,
            },
        }
    )
    blobs = {sha256(config): config, sha256(layer): layer, sha256(manifest): manifest}
    return blobs, manifest


def plugin_from_layer(layer: bytes) -> bytes:
    """What Istio extracts: the first tar entry whose base name is plugin.wasm."""
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(layer)), mode="r:") as tar:
        for member in tar:
            if member.isfile() and os.path.basename(member.name) == "plugin.wasm":
                f = tar.extractfile(member)
                if f is not None:
                    return f.read()
    raise ValueError("the layer has no plugin.wasm")


def self_check(manifest: bytes, blob) -> bytes:
    """Istio's fetcher rules (compat variant), applied to a manifest and a blob getter
    (digest -> bytes). Returns the plugin.wasm bytes; raises ValueError on a violation."""
    doc = json.loads(manifest)
    if doc.get("mediaType") == INDEX_TYPE or "manifests" in doc:
        raise ValueError("an index, not a single image manifest")
    if doc.get("mediaType") != MANIFEST_TYPE:
        raise ValueError(f"manifest media type {doc.get('mediaType')!r}")
    layers = doc.get("layers") or []
    if not layers:
        raise ValueError("no layers")
    last = layers[-1]
    if last["mediaType"] not in (LAYER_TYPE, DOCKER_LAYER_TYPE):
        raise ValueError(f"last layer media type {last['mediaType']!r}: Istio needs tar+gzip")
    data = blob(last["digest"])
    if sha256(data) != last["digest"] or len(data) != last["size"]:
        raise ValueError("layer digest or size mismatch")
    wasm = plugin_from_layer(data)
    if not wasm.startswith(WASM_MAGIC):
        raise ValueError("plugin.wasm is not a Wasm module")
    if len(wasm) > MAX_WASM_BYTES:
        raise ValueError(f"plugin.wasm is {len(wasm)} bytes, over Istio's 256 MiB limit")
    config = json.loads(blob(doc["config"]["digest"]))
    if config.get("rootfs", {}).get("diff_ids") != [sha256(gzip.decompress(data))]:
        raise ValueError("config rootfs.diff_ids does not match the layer")
    return wasm


def build(wasm_path: Path, out: Path, tag: str) -> str:
    wasm = wasm_path.read_bytes()
    if not wasm.startswith(WASM_MAGIC):
        raise SystemExit(f"oci: {wasm_path} is not a Wasm module")
    # The version annotation is the crate's, not the tag, so every tag shares one digest.
    blobs, manifest = image(wasm, crate_version())
    digest = sha256(manifest)
    # Start from an empty layout so no stale blob survives.
    if out.exists():
        shutil.rmtree(out)
    blob_dir = out / "blobs" / "sha256"
    blob_dir.mkdir(parents=True)
    for d, data in blobs.items():
        (blob_dir / d.split(":", 1)[1]).write_bytes(data)
    (out / "oci-layout").write_bytes(canonical_json({"imageLayoutVersion": "1.0.0"}))
    index = {
        "schemaVersion": 2,
        "mediaType": INDEX_TYPE,
        "manifests": [
            dict(descriptor(MANIFEST_TYPE, manifest), annotations={"org.opencontainers.image.ref.name": tag})
        ],
    }
    (out / "index.json").write_bytes(canonical_json(index))
    (out / "meshguard.wasm").write_bytes(wasm)
    (out / "meshguard.wasm.sha256").write_text(f"{hashlib.sha256(wasm).hexdigest()}  meshguard.wasm\n")
    (out / "manifest.digest").write_text(digest + "\n")
    if self_check(manifest, lambda d: blobs[d]) != wasm:
        raise SystemExit("oci: self-check: plugin.wasm differs from the module")
    return digest


# --------------------------------------------------------------------------------------------------
# push (registry v2 HTTP API)


def read_layout(layout: Path) -> tuple[bytes, dict[str, bytes]]:
    index = json.loads((layout / "index.json").read_bytes())
    manifests = index.get("manifests") or []
    if len(manifests) != 1:
        raise SystemExit(f"oci: {layout}/index.json must list exactly one manifest")

    def blob(d: str) -> bytes:
        return (layout / "blobs" / "sha256" / d.split(":", 1)[1]).read_bytes()

    manifest = blob(manifests[0]["digest"])
    doc = json.loads(manifest)
    blobs = {desc["digest"]: blob(desc["digest"]) for desc in [doc["config"], *doc["layers"]]}
    return manifest, blobs


def is_loopback(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if not host.startswith("[") else host[1:].split("]", 1)[0]
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class Registry:
    """The few registry v2 calls a push needs, with basic or bearer-token auth."""

    def __init__(self, host: str, repo: str, scheme: str):
        self.base = f"{scheme}://{host}"
        self.repo = repo
        self.user = os.environ.get("REGISTRY_USER")
        self.password = os.environ.get("REGISTRY_PASSWORD", "")
        self.auth: str | None = None
        if self.user:
            self.auth = "Basic " + base64.b64encode(f"{self.user}:{self.password}".encode()).decode()

    def _token(self, challenge: str) -> str | None:
        if not challenge.lower().startswith("bearer "):
            return None
        params = dict(
            (k.strip(), v.strip().strip('"'))
            for k, v in (p.split("=", 1) for p in challenge[7:].split(",") if "=" in p)
        )
        realm = params.pop("realm", None)
        if not realm:
            return None
        params.setdefault("scope", f"repository:{self.repo}:pull,push")
        req = urllib.request.Request(realm + "?" + urllib.parse.urlencode(params))
        if self.user:
            req.add_header(
                "Authorization", "Basic " + base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
            )
        with urllib.request.urlopen(req, timeout=30) as r:
            doc = json.loads(r.read())
        token = doc.get("token") or doc.get("access_token")
        return f"Bearer {token}" if token else None

    def call(self, method: str, url: str, data: bytes | None = None, headers: dict | None = None):
        """One request; retried once after a 401 with the auth the challenge asks for.
        Returns (status, headers); raises on other errors."""
        if url.startswith("/"):
            url = self.base + url
        for attempt in range(2):
            req = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
            if self.auth:
                req.add_header("Authorization", self.auth)
            try:
                with urllib.request.urlopen(req, timeout=120) as r:
                    r.read()
                    return r.status, r.headers
            except urllib.error.HTTPError as e:
                if e.code == 404 and method == "HEAD":
                    return 404, e.headers
                if e.code == 401 and attempt == 0:
                    token = self._token(e.headers.get("WWW-Authenticate", ""))
                    if token:
                        self.auth = token
                        continue
                body = e.read().decode("utf-8", "replace")[:500]
                raise SystemExit(f"oci: {method} {url}: HTTP {e.code}: {body}") from None
        raise SystemExit(f"oci: {method} {url}: unauthorized")

    def push_blob(self, digest: str, data: bytes) -> bool:
        status, _ = self.call("HEAD", f"/v2/{self.repo}/blobs/{digest}")
        if status == 200:
            return False
        status, headers = self.call("POST", f"/v2/{self.repo}/blobs/uploads/", data=b"",
                                    headers={"Content-Length": "0"})
        location = headers.get("Location")
        if status != 202 or not location:
            raise SystemExit(f"oci: blob upload start: HTTP {status}, Location {location!r}")
        location = urllib.parse.urljoin(self.base + "/", location)
        sep = "&" if "?" in location else "?"
        status, _ = self.call(
            "PUT", f"{location}{sep}digest={urllib.parse.quote(digest)}", data=data,
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(len(data))},
        )
        if status != 201:
            raise SystemExit(f"oci: blob upload {digest}: HTTP {status}")
        return True

    def push_manifest(self, tag: str, manifest: bytes) -> str:
        status, headers = self.call("PUT", f"/v2/{self.repo}/manifests/{tag}", data=manifest,
                                    headers={"Content-Type": MANIFEST_TYPE})
        if status != 201:
            raise SystemExit(f"oci: manifest PUT: HTTP {status}")
        return headers.get("Docker-Content-Digest", "")


def push(layout: Path, registry: str, tag: str, scheme: str | None) -> str:
    if "/" not in registry:
        raise SystemExit("oci: --registry must be HOST[:PORT]/REPO")
    host, repo = registry.split("/", 1)
    if scheme is None:
        scheme = "http" if is_loopback(host) else "https"
    manifest, blobs = read_layout(layout)
    self_check(manifest, lambda d: blobs[d])
    reg = Registry(host, repo, scheme)
    for digest, data in blobs.items():
        uploaded = reg.push_blob(digest, data)
        print(f"oci: blob {digest} ({len(data)} bytes) {'uploaded' if uploaded else 'already present'}",
              file=sys.stderr)
    digest = sha256(manifest)
    returned = reg.push_manifest(tag, manifest)
    if returned and returned != digest:
        raise SystemExit(f"oci: registry reports manifest digest {returned}, expected {digest}")
    return digest


# --------------------------------------------------------------------------------------------------


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="write the OCI image layout and print the manifest digest")
    b.add_argument("--wasm", type=Path, default=DEFAULT_WASM)
    b.add_argument("--out", type=Path, default=DEFAULT_OUT)
    b.add_argument("--tag", default=None, help="image tag (default: the crate version)")
    p = sub.add_parser("push", help="push the layout to a registry (v2 HTTP API)")
    p.add_argument("--layout", type=Path, default=DEFAULT_OUT)
    p.add_argument("--registry", required=True, help="HOST[:PORT]/REPO, e.g. 127.0.0.1:5000/meshguard")
    p.add_argument("--tag", default=None, help="tag (default: the crate version)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--plain-http", dest="scheme", action="store_const", const="http")
    g.add_argument("--tls", dest="scheme", action="store_const", const="https")
    a = ap.parse_args(argv)
    tag = a.tag or crate_version()
    if a.command == "build":
        digest = build(a.wasm, a.out, tag)
        hexd = digest.split(":", 1)[1]
        print(f"oci: {a.out} (compat image, tag {tag}); module sha256 "
              f"{(a.out / 'meshguard.wasm.sha256').read_text().split()[0]}", file=sys.stderr)
        print(f"oci: WasmPlugin: url: oci://<registry>/<repo>:{tag}  sha256: {hexd}", file=sys.stderr)
        print(digest)
    else:
        digest = push(a.layout, a.registry, tag, a.scheme)
        print(f"oci: pushed {a.registry}:{tag}@{digest}", file=sys.stderr)
        print(digest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
