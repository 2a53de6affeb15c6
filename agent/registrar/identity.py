"""The registrar's own certificates: its TLS serving certificate and its client certificates.

Every one is issued by the fleet CA, recorded in the registry (so ``cert revoke
<serial>`` works on it) and kept on disk: it is reused while it is still good
and replaced only when it is missing, no longer recorded (revoked), issued by
another CA, no longer matches what is asked for, or has under a third of its
life left.

- ``server.pem`` / ``server.key``: the serving certificate, ``serverAuth`` only,
  no fleet role (``CertificateAuthority.issue_server``).
- ``poller/``: ``fleet:reader``, what ``edge-registrar poll`` presents to boxes.
- ``rollout/``: ``fleet:operator``, what rollouts present when they POST upgrades.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from agent.fsio import atomic_write
from agent.registrar.ca import CertificateAuthority, cert_pem, parse_san, role_of, write_key
from agent.registrar.database import open_registry
from agent.registrar.registry import Registry

SERVING_OWNER = "registrar:serving"
SERVING_LIFETIME = timedelta(days=365)
CLIENT_LIFETIME = timedelta(days=90)
RENEW_WHEN_LEFT = 1 / 3  # of the certificate's whole life


@dataclass(frozen=True)
class ClientIdentity:
    role: str
    name: str
    subdir: str


POLLER = ClientIdentity("fleet:reader", "edge-registrar-poller", "poller")
ROLLOUT = ClientIdentity("fleet:operator", "edge-registrar-rollout", "rollout")


def _spki(key: object) -> bytes:
    assert isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey)
    public = key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey) else key
    return public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _usable(
    ca: CertificateAuthority, registry: Registry, cert_path: Path, key_path: Path, owner: str
) -> x509.Certificate | None:
    """The certificate at ``cert_path`` when it can go on being used, else None."""
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        cert.verify_directly_issued_by(ca.cert)
    except (OSError, ValueError, TypeError, InvalidSignature):
        return None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or _spki(key) != _spki(cert.public_key()):
        return None
    if registry.cert_owner(cert.serial_number) != owner:
        return None  # never recorded, or revoked
    now = datetime.now(UTC)
    life = cert.not_valid_after_utc - cert.not_valid_before_utc
    if cert.not_valid_after_utc - now < life * RENEW_WHEN_LEFT:
        return None
    return cert


@contextlib.contextmanager
def _locked(lock: Path) -> Iterator[None]:
    """One issuer at a time per certificate (a poll and a rollout may start together)."""
    lock.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def issue_client(ca: CertificateAuthority, role: str, name: str, out: Path, lifetime: timedelta) -> int:
    """Key and client certificate for an operator (or the registrar itself) in OUT; returns the serial.
    The caller records it."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = ca.issue(key.public_key(), common_name=name, role=role, lifetime=lifetime)
    write_key(out / "client.key", key)
    atomic_write(out / "client.pem", cert_pem(cert))
    atomic_write(out / "ca.pem", cert_pem(ca.cert))
    return int(cert.serial_number)


def ensure_client(
    ca: CertificateAuthority,
    registry: Registry,
    state_dir: Path,
    who: ClientIdentity,
    lifetime: timedelta = CLIENT_LIFETIME,
) -> Path:
    """The directory holding the registrar's own client certificate ``who`` (client.pem,
    client.key, ca.pem), issued and recorded only when the one there cannot be reused."""
    out = state_dir / who.subdir
    owner = f"operator:{who.name}"
    with _locked(out / ".lock"):
        cert = _usable(ca, registry, out / "client.pem", out / "client.key", owner)
        if cert is not None and role_of(cert) == who.role and (out / "ca.pem").read_bytes() == cert_pem(ca.cert):
            return out
        serial = issue_client(ca, who.role, who.name, out, lifetime)
        registry.add_cert(serial, owner, time.time() + lifetime.total_seconds())
    return out


def _sans(cert: x509.Certificate) -> set[x509.GeneralName]:
    try:
        return set(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound:
        return set()


def ensure_serving(
    ca: CertificateAuthority,
    registry: Registry,
    state_dir: Path,
    names: list[str],
    lifetime: timedelta = SERVING_LIFETIME,
) -> tuple[Path, Path]:
    """(chain, key) of the serving certificate for ``names``; a new one is issued and recorded
    only when the one on disk cannot be reused."""
    cert_path, key_path = state_dir / "server.pem", state_dir / "server.key"
    wanted = {parse_san(n) for n in names}
    with _locked(state_dir / "server.lock"):
        cert = _usable(ca, registry, cert_path, key_path, SERVING_OWNER)
        if cert is not None and _sans(cert) == wanted:
            return cert_path, key_path
        key = ec.generate_private_key(ec.SECP256R1())
        fresh = ca.issue_server(
            key.public_key(),
            common_name=names[0] if names else "edge-registrar",
            names=[parse_san(n) for n in dict.fromkeys(names)],
            lifetime=lifetime,
        )
        write_key(key_path, key)
        atomic_write(cert_path, cert_pem(fresh) + cert_pem(ca.cert))
        registry.add_cert(fresh.serial_number, SERVING_OWNER, fresh.not_valid_after_utc.timestamp())
    return cert_path, key_path


def own_client(state_dir: Path, who: ClientIdentity, database: str | None = None) -> Path:
    """``ensure_client`` for a command that has not opened the registry itself (rollouts)."""
    ca = CertificateAuthority.load(state_dir)
    registry = open_registry(database, state_dir)
    try:
        return ensure_client(ca, registry, state_dir, who)
    finally:
        registry.close()
