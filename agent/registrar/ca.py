"""The fleet CA: a P-256 key (0600) and self-signed certificate, issuing and revoking.

Role encoding (read by agent.api.mtls): the subject's organizationalUnitName
holds exactly one of ``ROLES``.

Extended key usage: client certificates (operators, the registrar's own
poller) carry ``clientAuth`` only; node certificates carry ``clientAuth`` and
``serverAuth`` (a box is a client of the registrar and serves its remote API);
the registrar's serving certificate (``issue_server``) carries ``serverAuth``
only and no role, so it opens no box's remote API.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from agent.errors import CaError, WeakKey
from agent.fsio import atomic_write

ROLES = ("fleet:reader", "fleet:operator", "fleet:admin", "fleet:node")
ROLE_OID = NameOID.ORGANIZATIONAL_UNIT_NAME
NODE_URI_PREFIX = "urn:edge-agent:node:"
APPROVED_CURVES = (ec.SECP256R1, ec.SECP384R1)
MIN_RSA_BITS = 2048


def pin_of(cert: x509.Certificate) -> str:
    """The CA pin agents are seeded with: sha256 over the certificate's DER."""
    return "sha256:" + hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def check_public_key(key: object) -> ec.EllipticCurvePublicKey | rsa.RSAPublicKey:
    """Refuse keys the fleet does not accept: RSA under 2048 bits, curves other than P-256/P-384."""
    if isinstance(key, ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, APPROVED_CURVES):
            raise WeakKey(f"elliptic curve {key.curve.name} is not approved (use P-256 or P-384)")
        return key
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise WeakKey(f"RSA key of {key.key_size} bits is too weak (at least {MIN_RSA_BITS})")
        return key
    raise WeakKey(f"key type {type(key).__name__} is not accepted (use EC P-256/P-384 or RSA >= 2048)")


def parse_san(value: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(value))
    except ValueError:
        return x509.DNSName(value)


def role_of(cert: x509.Certificate) -> str | None:
    for attr in cert.subject.get_attributes_for_oid(ROLE_OID):
        if attr.value in ROLES:
            return str(attr.value)
    return None


def write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    atomic_write(path, pem, mode=0o600, dir_mode=0o700)


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@dataclass
class CertificateAuthority:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def pin(self) -> str:
        return pin_of(self.cert)

    @classmethod
    def create(cls, name: str = "edge-agent fleet CA", years: int = 10) -> CertificateAuthority:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.now(UTC)
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=365 * years))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(ski, critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(cert, key)

    @classmethod
    def load(cls, directory: Path) -> CertificateAuthority:
        cert_path, key_path = directory / "ca.pem", directory / "ca.key"
        try:
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        except FileNotFoundError as exc:
            raise CaError(f"{exc.filename}: no fleet CA here; run 'edge-registrar init' first") from exc
        except (ValueError, OSError) as exc:
            raise CaError(f"{directory}: fleet CA files unreadable: {type(exc).__name__}") from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise CaError(f"{key_path}: expected an EC private key")
        return cls(cert, key)

    def save(self, directory: Path) -> None:
        write_key(directory / "ca.key", self.key)
        atomic_write(directory / "ca.pem", cert_pem(self.cert), mode=0o644)

    def issue(
        self,
        public_key: object,
        *,
        common_name: str,
        role: str,
        lifetime: timedelta,
        names: Sequence[x509.GeneralName] = (),
        server: bool = False,
        serial: int | None = None,
    ) -> x509.Certificate:
        """Sign a client (or, with ``server`` / role fleet:node, client and server) certificate for
        ``public_key``: subject and SANs come from here, never from a CSR."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
        usages = [ExtendedKeyUsageOID.CLIENT_AUTH]
        if server or role == "fleet:node":
            usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
        subject = [x509.NameAttribute(ROLE_OID, role), x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
        return self._sign(public_key, x509.Name(subject), usages, lifetime, names, serial)

    def issue_server(
        self, public_key: object, *, common_name: str, names: Sequence[x509.GeneralName], lifetime: timedelta
    ) -> x509.Certificate:
        """A TLS server certificate: ``serverAuth`` only and no fleet role (it authorises nothing)."""
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        return self._sign(public_key, subject, [ExtendedKeyUsageOID.SERVER_AUTH], lifetime, names, None)

    def _sign(
        self,
        public_key: object,
        subject: x509.Name,
        usages: list[x509.ObjectIdentifier],
        lifetime: timedelta,
        names: Sequence[x509.GeneralName],
        serial: int | None,
    ) -> x509.Certificate:
        checked = check_public_key(public_key)
        now = datetime.now(UTC)
        # Edge boxes often boot with a wrong clock: allow a little skew, but
        # never more than a tenth of the lifetime (keeps short test certs honest).
        skew = min(timedelta(minutes=5), lifetime / 10)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.cert.subject)
            .public_key(checked)
            .serial_number(serial or x509.random_serial_number())
            .not_valid_before(now - skew)
            .not_valid_after(now + lifetime)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False)
        )
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(list(names)), critical=False)
        return builder.sign(self.key, hashes.SHA256())

    def crl(self, revoked: Iterable[tuple[int, datetime]], number: int) -> x509.CertificateRevocationList:
        now = datetime.now(UTC)
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.cert.subject)
            .last_update(now - timedelta(seconds=1))
            # Boxes fetch a new CRL whenever its number moves; a long nextUpdate keeps an
            # offline box's remote API usable (OpenSSL refuses every client once a CRL expires).
            .next_update(now + timedelta(days=365))
            .add_extension(x509.CRLNumber(number), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False)
        )
        for serial, when in revoked:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when).build()
            )
        return builder.sign(self.key, hashes.SHA256())
