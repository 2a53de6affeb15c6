"""The registrar's own certificates on disk and in the real store: kept while good, replaced when due."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from agent.registrar.ca import CertificateAuthority, cert_pem, write_key
from agent.registrar.identity import POLLER, ensure_client, ensure_serving
from agent.registrar.sqlite import SqliteRegistry


@pytest.fixture
def store(tmp_path: Path):
    db = SqliteRegistry(tmp_path / "registry.sqlite")
    yield db
    db.close()


def serial(pem: Path) -> int:
    return int(x509.load_pem_x509_certificate(pem.read_bytes()).serial_number)


def test_client_certificate_is_kept_then_renewed_when_a_third_of_its_life_is_left(tmp_path, store):
    ca = CertificateAuthority.create()
    out = ensure_client(ca, store, tmp_path, POLLER)
    first = serial(out / "client.pem")
    assert store.cert_owner(first) == "operator:edge-registrar-poller"
    assert serial(ensure_client(ca, store, tmp_path, POLLER) / "client.pem") == first

    # the same certificate, 80 of its 90 days gone: due
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "fleet:reader"),
                      x509.NameAttribute(NameOID.COMMON_NAME, "edge-registrar-poller")])  # fmt: skip
    old = (
        x509.CertificateBuilder().subject_name(name).issuer_name(ca.cert.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=80)).not_valid_after(now + timedelta(days=10))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca.key, hashes.SHA256())
    )  # fmt: skip
    write_key(out / "client.key", key)
    (out / "client.pem").write_bytes(cert_pem(old))
    store.add_cert(old.serial_number, "operator:edge-registrar-poller", old.not_valid_after_utc.timestamp())
    renewed = serial(ensure_client(ca, store, tmp_path, POLLER) / "client.pem")
    assert renewed not in (first, old.serial_number)
    assert store.cert_owner(renewed) == "operator:edge-registrar-poller"

    # another CA (init --force): replaced too
    other = CertificateAuthority.create("new fleet CA")
    assert serial(ensure_client(other, store, tmp_path, POLLER) / "client.pem") != renewed


def test_serving_certificate_is_recorded_kept_and_replaced_on_new_names_or_revocation(tmp_path, store):
    ca = CertificateAuthority.create()
    chain, _ = ensure_serving(ca, store, tmp_path, ["127.0.0.1", "localhost"])
    first = serial(chain)
    assert store.cert_owner(first) == "registrar:serving"
    assert serial(ensure_serving(ca, store, tmp_path, ["127.0.0.1", "localhost"])[0]) == first
    assert serial(ensure_serving(ca, store, tmp_path, ["127.0.0.1", "localhost", "reg.example"])[0]) != first
    current = serial(chain)
    assert store.revoke_cert(current)
    assert serial(ensure_serving(ca, store, tmp_path, ["127.0.0.1", "localhost", "reg.example"])[0]) != current
    cert = x509.load_pem_x509_certificate(chain.read_bytes())
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME) == []
