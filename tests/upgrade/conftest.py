from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.upgrade.signing import ReleaseKey, public_key_base64


@pytest.fixture
def release_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def release_keys(release_key: Ed25519PrivateKey) -> list[ReleaseKey]:
    return [ReleaseKey.from_base64(public_key_base64(release_key))]


@pytest.fixture
def payload(tmp_path: Path) -> Path:
    d = tmp_path / "payload"
    d.mkdir()
    (d / "k3s").write_bytes(b"\x7fELF" + b"x" * 5000)
    (d / "k3s").chmod(0o755)
    (d / "notes.txt").write_text("release notes\n")
    return d
