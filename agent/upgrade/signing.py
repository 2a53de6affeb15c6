"""Ed25519 release keys and the signature over a bundle's manifest bytes.

Public keys are configured as base64 of the raw 32-byte key
([upgrade].release_keys); signatures are stored as base64 of the raw 64 bytes
in ``manifest.sig``. Several keys may be configured (rotation): any one of
them verifying is enough. Private keys live with the release engineer, as
PKCS#8 PEM files written 0600 by ``edge-registrar bundle keygen``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from agent.errors import BundleError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

# cryptography is imported by the functions that use it: agentd imports this module (through the
# upgrade manager) before it is READY, and a bundle is verified much later, if ever.


@dataclass(frozen=True)
class ReleaseKey:
    key: Ed25519PublicKey
    key_id: str  # first 8 base64 chars of the raw key: enough to name it in messages

    @classmethod
    def from_base64(cls, text: str, where: str = "[upgrade].release_keys") -> ReleaseKey:
        try:
            raw = base64.b64decode(text.strip(), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise BundleError(f"{where}: {text[:12]!r}... is not base64") from exc
        if len(raw) != 32:
            raise BundleError(f"{where}: expected a raw 32-byte Ed25519 key, got {len(raw)} bytes")
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        return cls(Ed25519PublicKey.from_public_bytes(raw), base64.b64encode(raw).decode()[:8])


def load_release_keys(texts: Sequence[str]) -> list[ReleaseKey]:
    return [ReleaseKey.from_base64(t, f"[upgrade].release_keys[{i}]") for i, t in enumerate(texts)]


def public_key_base64(private: Ed25519PrivateKey) -> str:
    from cryptography.hazmat.primitives import serialization

    raw = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def sign(private: Ed25519PrivateKey, manifest_bytes: bytes) -> bytes:
    """The content of ``manifest.sig``."""
    return base64.b64encode(private.sign(manifest_bytes)) + b"\n"


def verify_signature(keys: Sequence[ReleaseKey], manifest_bytes: bytes, signature_file: bytes) -> ReleaseKey:
    """Return the key that signed; BundleError when none did."""
    from cryptography.exceptions import InvalidSignature

    if not keys:
        raise BundleError("no release keys configured ([upgrade].release_keys is empty): refusing bundles")
    try:
        sig = base64.b64decode(signature_file.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BundleError("manifest.sig: not base64") from exc
    if len(sig) != 64:
        raise BundleError(f"manifest.sig: expected a 64-byte Ed25519 signature, got {len(sig)} bytes")
    for k in keys:
        try:
            k.key.verify(sig, manifest_bytes)
        except InvalidSignature:
            continue
        return k
    raise BundleError(
        f"manifest.sig: bad signature: no configured release key "
        f"({', '.join(k.key_id for k in keys)}) signed this manifest"
    )


def load_private_key(pem: bytes, where: str) -> Ed25519PrivateKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise BundleError(f"{where}: not an unencrypted PEM private key") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise BundleError(f"{where}: not an Ed25519 private key")
    return key


def private_key_pem(key: Ed25519PrivateKey) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
