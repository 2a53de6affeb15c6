"""edge-registrar as a program: init, token create, serve, nodes, cert, poll."""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import ssl
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.fleet.harness import free_port
from tests.registrar.program import registrar


def csr_b64() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([])).sign(key, hashes.SHA256())
    return base64.encodebytes(csr.public_bytes(serialization.Encoding.DER))


def enroll(port: int, ca: Path, node_id: str, token: str, csr: bytes | None = None) -> int:
    ctx = ssl.create_default_context(cafile=str(ca))
    auth = base64.b64encode(f"{node_id}:{token}".encode()).decode()
    req = urllib.request.Request(
        f"https://127.0.0.1:{port}/.well-known/est/simpleenroll",
        data=csr or csr_b64(),
        headers={"Content-Type": "application/pkcs10", "Authorization": f"Basic {auth}"},
    )
    with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
        return int(resp.status)


@pytest.fixture
def served(tmp_path):
    state = tmp_path / "reg"
    pin = registrar(state, "init").stdout.strip()
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent.registrar", "--state-dir", str(state), "serve", "--listen", f"127.0.0.1:{port}"],
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.05)
    yield state, pin, port
    proc.terminate()
    proc.wait(10)


def test_init_makes_a_private_ca_and_prints_its_pin(tmp_path):
    state = tmp_path / "reg"
    pin = registrar(state, "init").stdout.strip()
    der = x509.load_pem_x509_certificate((state / "ca.pem").read_bytes()).public_bytes(serialization.Encoding.DER)
    assert pin == "sha256:" + hashlib.sha256(der).hexdigest()
    assert stat.S_IMODE((state / "ca.key").stat().st_mode) == 0o600
    key = serialization.load_pem_private_key((state / "ca.key").read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    assert registrar(state, "init").stdout.strip() == pin  # idempotent: never replaces a CA silently


@pytest.mark.slow
def test_serve_token_nodes_cert_cycle(served, tmp_path):
    state, _, port = served
    token = registrar(state, "token", "create", "--ttl", "1h", "--uses", "1", "--site", "berlin",
                      "--label", "rack=r7").stdout.strip()  # fmt: skip
    approval = registrar(state, "token", "create", "--require-approval").stdout.strip()
    listed = registrar(state, "token", "list", "-o", "json").stdout
    assert token.split(".")[1] not in listed and json.loads(listed)["tokens"][0]["site"] == "berlin"

    assert enroll(port, state / "ca.pem", "box-a", token) == 200
    box_b_csr = csr_b64()
    assert enroll(port, state / "ca.pem", "box-b", approval, box_b_csr) == 202
    doc = json.loads(registrar(state, "nodes", "list", "-o", "json").stdout)
    assert doc["schema"] == "edge-registrar.nodes/v1"
    states = {n["node_id"]: (n["state"], n["site"], n["labels"]) for n in doc["nodes"]}
    assert states == {"box-a": ("approved", "berlin", {"rack": "r7"}), "box-b": ("pending", "", {})}
    assert "box-b" in registrar(state, "nodes", "approve", "box-b").stdout
    assert enroll(port, state / "ca.pem", "box-b", approval, box_b_csr) == 200

    out = registrar(state, "nodes", "revoke", "box-a").stdout
    assert "1 certificate" in out
    assert "revoked" in registrar(state, "nodes", "show", "box-a").stdout
    missing = registrar(state, "nodes", "show", "nope", check=False)
    assert missing.returncode == 1 and "no node 'nope'" in missing.stderr

    issued = registrar(state, "cert", "issue", "--role", "fleet:operator", "--name", "alice",
                       "--out", str(tmp_path / "alice")).stdout  # fmt: skip
    cert = x509.load_pem_x509_certificate((tmp_path / "alice/client.pem").read_bytes())
    assert f"{cert.serial_number:x}" in issued and "OU=fleet:operator" in cert.subject.rfc4514_string()
    assert stat.S_IMODE((tmp_path / "alice/client.key").stat().st_mode) == 0o600
    assert registrar(state, "cert", "revoke", f"{cert.serial_number:x}").returncode == 0

    with urllib.request.urlopen(f"https://127.0.0.1:{port}/v1/fleet/crl",
                                context=ssl.create_default_context(cafile=str(state / "ca.pem"))) as r:  # fmt: skip
        crl = x509.load_der_x509_crl(r.read())
    assert crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None

    poll = registrar(state, "poll", "-o", "json", "--timeout", "1")
    assert {n["node_id"] for n in json.loads(poll.stdout)["nodes"]} == {"box-b"}  # box-a is revoked


def test_bad_usage_is_named(tmp_path):
    p = registrar(tmp_path, "token", "create", "--ttl", "soon", check=False)
    assert p.returncode == 2 and "expected a duration" in p.stderr
    p = registrar(tmp_path / "empty", "serve", "--listen", "127.0.0.1:1", check=False)
    assert p.returncode == 1 and "edge-registrar init" in p.stderr
