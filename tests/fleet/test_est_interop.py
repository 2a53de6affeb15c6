"""An independent EST client — openssl + curl — enrolling exactly as RFC 7030 describes."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
from pathlib import Path

import pytest
from cryptography import x509

pytestmark = pytest.mark.skipif(not (shutil.which("openssl") and shutil.which("curl")), reason="openssl+curl")


async def sh(*argv: str | Path, cwd: Path, ok: bool = True) -> str:
    proc = await asyncio.create_subprocess_exec(
        *map(str, argv), cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()
    if ok:
        assert proc.returncode == 0, (argv, err.decode())
    return out.decode()


def headers(path: Path) -> tuple[int, dict[str, str]]:
    """The last response's status and headers from curl -D."""
    blocks = [b for b in path.read_bytes().decode().split("\r\n\r\n") if b.strip()]
    lines = blocks[-1].split("\r\n")
    return int(lines[0].split()[1]), {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}


async def test_openssl_and_curl_enroll_and_reenroll(registrar, tmp_path: Path):
    w = tmp_path
    base = f"{registrar.url}/.well-known/est"
    trust = registrar.state_dir / "ca.pem"

    # 4.1: /cacerts, base64 certs-only PKCS#7; the pin is the sha256 of the CA's DER
    await sh("curl", "-sS", "--cacert", trust, "-D", "h1", "-o", "cacerts.b64", f"{base}/cacerts", cwd=w)
    status, h = headers(w / "h1")
    assert status == 200 and h["content-type"].startswith("application/pkcs7-mime")
    assert h["content-transfer-encoding"] == "base64"
    await sh("openssl", "base64", "-d", "-in", "cacerts.b64", "-out", "cacerts.der", cwd=w)
    await sh("openssl", "pkcs7", "-inform", "DER", "-in", "cacerts.der", "-print_certs", "-out", "ca.pem", cwd=w)
    await sh("openssl", "x509", "-in", "ca.pem", "-outform", "DER", "-out", "ca.der", cwd=w)
    assert "sha256:" + hashlib.sha256((w / "ca.der").read_bytes()).hexdigest() == registrar.pin

    # 4.2.1: /simpleenroll, HTTP Basic, base64 PKCS#10 in
    await sh("openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", "key.pem", "-subj", "/CN=anything", "-outform", "DER", "-out", "csr.der", cwd=w)  # fmt: skip
    await sh("openssl", "base64", "-in", "csr.der", "-out", "csr.b64", cwd=w)
    token = registrar.token()
    await sh("curl", "-sS", "--cacert", "ca.pem", "--user", f"openssl-box:{token}", "-H",
             "Content-Type: application/pkcs10", "--data-binary", "@csr.b64", "-D", "h2", "-o", "cert.b64",
             f"{base}/simpleenroll", cwd=w)  # fmt: skip
    status, h = headers(w / "h2")
    assert status == 200 and h["content-type"] == "application/pkcs7-mime; smime-type=certs-only"
    await sh("openssl", "base64", "-d", "-in", "cert.b64", "-out", "cert.der", cwd=w)
    await sh("openssl", "pkcs7", "-inform", "DER", "-in", "cert.der", "-print_certs", "-out", "cert.pem", cwd=w)
    assert "cert.pem: OK" in await sh("openssl", "verify", "-CAfile", "ca.pem", "cert.pem", cwd=w)
    cert = x509.load_pem_x509_certificate((w / "cert.pem").read_bytes())
    assert cert.subject.rfc4514_string() == "CN=openssl-box,OU=fleet:node"

    # 4.2.2: /simplereenroll over mTLS with the certificate just issued
    await sh("curl", "-sS", "--cacert", "ca.pem", "--cert", "cert.pem", "--key", "key.pem", "-H",
             "Content-Type: application/pkcs10", "--data-binary", "@csr.b64", "-D", "h3", "-o", "renewed.b64",
             f"{base}/simplereenroll", cwd=w)  # fmt: skip
    assert headers(w / "h3")[0] == 200
    await sh("openssl", "base64", "-d", "-in", "renewed.b64", "-out", "renewed.der", cwd=w)
    out = await sh("openssl", "pkcs7", "-inform", "DER", "-in", "renewed.der", "-print_certs", cwd=w)
    renewed = x509.load_pem_x509_certificate(out.encode())
    assert renewed.serial_number != cert.serial_number and renewed.subject == cert.subject

    # the CRL is published and parses with openssl once the box is revoked
    registrar.reg.registry.revoke_node("openssl-box")
    await sh("curl", "-sS", "--cacert", "ca.pem", "-o", "fleet.crl", f"{registrar.url}/v1/fleet/crl", cwd=w)
    text = await sh("openssl", "crl", "-inform", "DER", "-in", "fleet.crl", "-noout", "-text", cwd=w)
    assert f"{cert.serial_number:X}"[-12:] in text.replace(":", "").upper()
    await sh("curl", "-sS", "--cacert", "ca.pem", "--cert", "cert.pem", "--key", "key.pem", "-H",
             "Content-Type: application/pkcs10", "--data-binary", "@csr.b64", "-D", "h4", "-o", "/dev/null",
             f"{base}/simplereenroll", cwd=w)  # fmt: skip
    assert headers(w / "h4")[0] == 403


async def test_pending_approval_is_202_with_retry_after(registrar, tmp_path: Path):
    w = tmp_path
    trust = registrar.state_dir / "ca.pem"
    await sh("openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", "key.pem", "-subj", "/CN=x",
             "-outform", "DER", "-out", "csr.der", cwd=w)  # fmt: skip
    await sh("openssl", "base64", "-in", "csr.der", "-out", "csr.b64", cwd=w)
    token = registrar.token(require_approval=True)
    args = ["curl", "-sS", "--cacert", trust, "--user", f"rsa-box:{token}", "-H", "Content-Type: application/pkcs10",
            "--data-binary", "@csr.b64", "-o", "out", f"{registrar.url}/.well-known/est/simpleenroll"]  # fmt: skip
    await sh(*args, "-D", "h1", cwd=w)
    status, h = headers(w / "h1")
    assert status == 202 and int(h["retry-after"]) >= 1
    registrar.reg.registry.set_state("rsa-box", "approved")
    await sh(*args, "-D", "h2", cwd=w)
    assert headers(w / "h2")[0] == 200
