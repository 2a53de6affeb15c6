"""The box's identity: a P-256 key made on the box (0600), its node id, its certificate.

Layout under ``/var/lib/edge-agent/identity/`` (0700): ``key.pem`` (0600),
``cert.pem`` (the node certificate), ``ca.pem`` (the pinned fleet CA),
``crl.pem`` (the fleet's revocation list), ``identity.json`` (node id,
machine id, DMI serial, created).

The node id is derived from ``/etc/machine-id`` the way systemd derives
application-specific ids (HMAC-SHA256 keyed by the machine id), because the
machine id itself should not leave the box. An identity made for another
machine id (a cloned image) is never used: it is moved aside and a new one made
(``IdentityReset``, reason ``ClonedImage``). Nor is one made on other hardware
(a disk copied whole into a second box: same machine id, same key): the facts
in agent.fleet.hardware are recorded with the identity, and when they say this
is another box the identity is set aside the same way (reason
``MovedToOtherHardware``) and the new node id also names the hardware, so the
two boxes enroll as two nodes.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from agent.errors import NoMachineId, StateError
from agent.fleet import hardware
from agent.fsio import atomic_write, atomic_write_json
from agent.paths import Paths

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec

# cryptography (~25 ms to import) is imported by the functions that use it: agentd imports this
# module for IdentityFiles before it is READY, and agentctl's doctor for the paths alone.

APP_ID = b"edge-agent/fleet-node-id/v1"
DMI_SERIAL = "/sys/class/dmi/id/product_serial"


@dataclass(frozen=True)
class IdentityFiles:
    directory: Path

    @property
    def key(self) -> Path:
        return self.directory / "key.pem"

    @property
    def cert(self) -> Path:
        return self.directory / "cert.pem"

    @property
    def ca(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def crl(self) -> Path:
        return self.directory / "crl.pem"

    @property
    def meta(self) -> Path:
        return self.directory / "identity.json"

    def complete(self) -> bool:
        return self.key.is_file() and self.cert.is_file() and self.ca.is_file()


@dataclass(frozen=True)
class Identity:
    node_id: str
    machine_id: str
    dmi_serial: str
    key: ec.EllipticCurvePrivateKey
    files: IdentityFiles
    replaced: str = ""  # node id of an identity set aside because it was made for another machine
    reset_reason: str = ""  # why it was set aside: ClonedImage (machine id) or MovedToOtherHardware
    reset_why: str = ""  # what differed, for the IdentityReset condition's message


def node_id_for(machine_id: str, hardware_key: str = "") -> str:
    """``hardware_key`` only for an identity made after a move to other hardware (same machine id)."""
    msg = APP_ID + (b"/" + hardware_key.encode() if hardware_key else b"")
    return hmac.new(machine_id.encode(), msg, hashlib.sha256).hexdigest()[:32]


def read_machine_id(paths: Paths) -> str:
    try:
        mid = paths.machine_id.read_text().strip()
    except FileNotFoundError:
        mid = ""
    except OSError as exc:
        raise NoMachineId(f"{paths.machine_id}: unreadable ({exc.strerror})") from exc
    if not mid or mid == "uninitialized":
        raise NoMachineId(f"{paths.machine_id} is empty; waiting for systemd to set the machine id")
    return mid


def read_dmi_serial(paths: Paths) -> str:
    try:
        return paths.under(DMI_SERIAL).read_text().strip()
    except OSError:
        return ""


def _set_aside(files: IdentityFiles, why: str = "other-machine") -> None:
    aside = files.directory.with_name(f"{files.directory.name}.{why}-{int(time.time())}")
    files.directory.rename(aside)


def load_or_create(paths: Paths) -> Identity:
    """The identity of this machine; made (key on the box, 0600) when there is none."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    files = IdentityFiles(paths.identity_dir)
    machine_id = read_machine_id(paths)
    node_id = node_id_for(machine_id)
    here = hardware.read(paths)
    replaced, reason, why = "", "", ""
    meta: dict[str, object] = {}
    with contextlib.suppress(FileNotFoundError, ValueError):
        loaded = json.loads(files.meta.read_text())
        meta = loaded if isinstance(loaded, dict) else {}
    try:
        if meta and meta.get("machine_id_hash") != _mid_hash(machine_id):
            replaced, reason, why = str(meta.get("node_id", "?")), "ClonedImage", "the machine id differs"
            _set_aside(files)
            meta = {}
        made_on = hardware.Fingerprint.from_json(meta.get("hardware")) if meta else None
        moved = hardware.moved(made_on, here) if made_on is not None else ""
        if moved:
            replaced, reason, why = str(meta.get("node_id", "?")), "MovedToOtherHardware", moved
            _set_aside(files, "other-hardware")
            meta = {}
            node_id = node_id_for(machine_id, here.key)
        elif meta and made_on is None:
            meta = {**meta, "hardware": here.to_json()}  # made before hardware was recorded: this is its box
            atomic_write_json(files.meta, meta, mode=0o600)
        key = _load_key(files.key) if meta else None
        if key is None:
            key = ec.generate_private_key(ec.SECP256R1())
            for stale in (files.cert, files.crl):
                stale.unlink(missing_ok=True)
            pem = key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            atomic_write(files.key, pem, mode=0o600, dir_mode=0o700)
            meta = {
                "node_id": node_id,
                "machine_id_hash": _mid_hash(machine_id),
                "dmi_serial": read_dmi_serial(paths),
                "hardware": here.to_json(),
                "created": datetime.now(UTC).isoformat(),
            }
            atomic_write_json(files.meta, meta, mode=0o600)
    except OSError as exc:
        raise StateError(f"{files.directory}: cannot keep the identity: {exc.strerror}") from exc
    node_id = str(meta.get("node_id") or node_id)  # as made: a moved box's id names its hardware
    return Identity(node_id, machine_id, str(meta.get("dmi_serial", "")), key, files, replaced, reason, why)


def _mid_hash(machine_id: str) -> str:
    return hashlib.sha256(b"edge-agent machine-id " + machine_id.encode()).hexdigest()


def _load_key(path: Path) -> ec.EllipticCurvePrivateKey | None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (FileNotFoundError, ValueError):
        return None
    return key if isinstance(key, ec.EllipticCurvePrivateKey) else None


def make_csr(identity: Identity) -> bytes:
    """DER PKCS#10 naming the node id (the registrar sets the real subject anyway)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, identity.node_id)]))
        .sign(identity.key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.DER)


def load_cert(path: Path) -> x509.Certificate | None:
    from cryptography import x509

    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except (FileNotFoundError, ValueError):
        return None


def cert_matches_key(cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> bool:
    return cert.public_key() == key.public_key()


def renew_at(cert: x509.Certificate) -> datetime:
    """Two thirds into the certificate's life."""
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    return start + (end - start) * 2 / 3


def pin_of(cert: x509.Certificate) -> str:
    from cryptography.hazmat.primitives import serialization

    return "sha256:" + hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def pem(cert: x509.Certificate) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return cert.public_bytes(serialization.Encoding.PEM)
