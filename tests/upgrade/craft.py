"""Hand-made bundles, including the malformed ones the build tool would never write."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.upgrade.manifest import host_architecture
from agent.upgrade.signing import sign


def entry(path: str, data: bytes, mode: int = 0o644) -> dict[str, Any]:
    return {"path": path, "size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "mode": mode}


def manifest_doc(files: list[dict[str, Any]], **over: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schema": 1,
        "name": "edge-agent",
        "kind": "k3s",
        "version": "v1.33.2+k3s1",
        "architecture": host_architecture(),
        "files": files,
    }
    doc.update(over)
    return doc


def write_tar(out: Path, members: list[tuple[str, bytes]]) -> Path:
    with tarfile.open(out, "w") as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return out


def signed_bundle(
    out: Path,
    key: Ed25519PrivateKey,
    doc: dict[str, Any],
    payload: list[tuple[str, bytes]],
) -> Path:
    raw = json.dumps(doc).encode()
    return write_tar(out, [("manifest.json", raw), ("manifest.sig", sign(key, raw)), *payload])
