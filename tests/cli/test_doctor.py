"""agentctl doctor against real parts: a registrar on 127.0.0.1, real sockets, real certificates, stand-in units."""

from __future__ import annotations

import socket
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from agent.cli.doctor.findings import JSON_SCHEMA
from agent.registrar.ca import cert_pem, write_key
from tests.fleet.harness import RegistrarHandle

from .conftest import agentctl, write_seed

K3S_TOKEN = "K10" + "ab" * 32 + "::server:s3cr3tjoinpassword42"


def node_cert(handle: RegistrarHandle, root: Path, start: datetime, end: datetime) -> x509.Certificate:
    """A node key + certificate signed by the registrar's CA, valid from ``start`` to ``end``."""
    ca = handle.reg.ca
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "node")])
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(ca.cert.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
        .sign(ca.key, hashes.SHA256())
    )  # fmt: skip
    ident = root / "var/lib/edge-agent/identity"
    ident.mkdir(parents=True, exist_ok=True)
    write_key(ident / "key.pem", key)
    (ident / "key.pem").chmod(0o600)
    (ident / "cert.pem").write_bytes(cert_pem(cert))
    (ident / "ca.pem").write_bytes(cert_pem(ca.cert))
    return cert


async def test_good_seed_and_registrar_pass_and_json_follows_the_schema(box: Path, registrar: RegistrarHandle) -> None:
    token = registrar.token()
    write_seed(box, registrar.url, registrar.pin, token)
    now = datetime.now(UTC)
    node_cert(registrar, box, now - timedelta(hours=1), now + timedelta(days=60))
    r = await agentctl(box, "doctor", "-o", "json")
    jsonschema.validate(r.json(), JSON_SCHEMA)
    for check in ("seed.parse", "registrar.dns", "registrar.tcp", "registrar.tls", "fleet.ca_pin", "clock.skew",
                  "identity.cert", "identity.key_mode", "config.valid"):  # fmt: skip
        assert r.finding(check)["status"] == "ok", r.stdout
    # the daemon is down: said so, files still checked, a warning (exit 1) and not a failure
    assert r.finding("agent.running")["status"] == "warn"
    assert "checking files only" in r.finding("agent.running")["message"]
    assert r.rc == 1, r.stdout
    assert token not in r.stdout + r.stderr
    text = await agentctl(box, "doctor")
    assert text.rc == 1 and "registrar.tls" in text.stdout and token not in text.stdout


async def test_credentials_in_the_seed_url_are_not_printed(box: Path, registrar: RegistrarHandle) -> None:
    write_seed(box, registrar.url.replace("https://", "https://ops:hunter2pw@") + "/?sig=presigned99", registrar.pin,
               registrar.token())  # fmt: skip
    r = await agentctl(box, "doctor")
    assert "seed.parse" in r.stdout
    assert "hunter2pw" not in r.stdout + r.stderr and "presigned99" not in r.stdout + r.stderr


async def test_wrong_pin_fails_naming_both_pins(box: Path, registrar: RegistrarHandle) -> None:
    wrong = "sha256:" + "0" * 64
    write_seed(box, registrar.url, wrong, registrar.token())
    r = await agentctl(box, "doctor", "-o", "json")
    pin = r.finding("fleet.ca_pin")
    assert pin["status"] == "fail" and wrong in pin["message"] and registrar.pin in pin["message"]
    assert "seed" in pin["fix"]
    assert r.rc == 2
    jsonschema.validate(r.json(), JSON_SCHEMA)


async def test_stopped_registrar_is_a_tcp_failure(box: Path, registrar: RegistrarHandle) -> None:
    write_seed(box, registrar.url, registrar.pin, registrar.token())
    port = registrar.port
    await registrar.stop()  # the registrar went away: nothing listens on its port any more
    r = await agentctl(box, "doctor", "-o", "json")
    assert r.finding("registrar.dns")["status"] == "ok"
    tcp = r.finding("registrar.tcp")
    assert tcp["status"] == "fail" and "refused" in tcp["message"].lower() and f":{port}" in tcp["message"]
    assert not [f for f in r.json()["findings"] if f["check"] == "registrar.tls"]
    assert r.rc == 2


async def test_clock_skew_against_the_registrars_date_header(box: Path, registrar: RegistrarHandle) -> None:
    """A TLS server on loopback answering EST cacerts with the registrar's real CA, its clock 10 minutes behind."""
    import base64
    from email.utils import formatdate

    from aiohttp import web
    from cryptography.hazmat.primitives.serialization import Encoding, pkcs7

    from agent.registrar.app import serving_names

    body = base64.encodebytes(pkcs7.serialize_certificates([registrar.reg.ca.cert], Encoding.DER))

    async def cacerts(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/pkcs7-mime",
                            headers={"Date": formatdate(time.time() - 600, usegmt=True)})  # fmt: skip

    app = web.Application()
    app.router.add_get("/.well-known/est/cacerts", cacerts)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=registrar.reg.ssl_context(serving_names("127.0.0.1", [])))
    await site.start()
    port = next(a[1] for a in runner.addresses if isinstance(a, tuple))
    try:
        write_seed(box, f"https://127.0.0.1:{port}", registrar.pin, registrar.token())
        r = await agentctl(box, "doctor", "-o", "json")
    finally:
        await runner.cleanup()
    skew = r.finding("clock.skew")
    assert skew["status"] == "fail" and "ahead of the registrar" in skew["message"], skew
    assert r.finding("fleet.ca_pin")["status"] == "ok"
    assert r.rc == 2


async def test_something_not_tls_on_the_port_is_a_tls_failure(box: Path) -> None:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    port = srv.getsockname()[1]
    write_seed(box, f"https://127.0.0.1:{port}", "sha256:" + "1" * 64, "tok.abcdefgh")
    try:
        import asyncio

        task = asyncio.create_task(agentctl(box, "doctor", "-o", "json"))
        loop = asyncio.get_running_loop()
        srv.setblocking(False)
        conn, _ = await loop.sock_accept(srv)
        await loop.sock_sendall(conn, b"SSH-2.0-OpenSSH_9.2\r\n")
        r = await task
        conn.close()
    finally:
        srv.close()
    assert r.finding("registrar.tcp")["status"] == "ok"
    assert r.finding("registrar.tls")["status"] == "fail"


async def test_expired_and_near_expiry_certificates(box: Path, registrar: RegistrarHandle) -> None:
    write_seed(box, registrar.url, registrar.pin, registrar.token())
    now = datetime.now(UTC)
    node_cert(registrar, box, now - timedelta(days=30), now - timedelta(days=1))
    r = await agentctl(box, "doctor", "-o", "json")
    cert = r.finding("identity.cert")
    assert cert["status"] == "fail" and "expired" in cert["message"] and cert["path"].endswith("cert.pem")
    assert r.rc == 2
    node_cert(registrar, box, now - timedelta(days=30), now + timedelta(hours=20))
    r = await agentctl(box, "doctor", "-o", "json")
    cert = r.finding("identity.cert")
    assert cert["status"] == "warn" and "expires" in cert["message"]


async def test_revoked_certificate_fails(box: Path, registrar: RegistrarHandle) -> None:
    write_seed(box, registrar.url, registrar.pin, registrar.token())
    now = datetime.now(UTC)
    cert = node_cert(registrar, box, now - timedelta(hours=1), now + timedelta(days=60))
    ca = registrar.reg.ca
    revoked = x509.RevokedCertificateBuilder().serial_number(cert.serial_number).revocation_date(now).build()
    crl = (
        x509.CertificateRevocationListBuilder().issuer_name(ca.cert.subject).last_update(now)
        .next_update(now + timedelta(days=1)).add_revoked_certificate(revoked).sign(ca.key, hashes.SHA256())
    )  # fmt: skip
    from cryptography.hazmat.primitives.serialization import Encoding

    (box / "var/lib/edge-agent/identity/crl.pem").write_bytes(crl.public_bytes(Encoding.PEM))
    r = await agentctl(box, "doctor", "-o", "json")
    assert r.finding("identity.revoked")["status"] == "fail"
    assert r.rc == 2


async def test_world_writable_socket_and_readable_key_fail(box: Path) -> None:
    run = box / "run/edge-agent"
    run.mkdir(parents=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(run / "agent.sock"))  # bound, not listening: nothing answers
    try:
        (run / "agent.sock").chmod(0o666)
        ident = box / "var/lib/edge-agent/identity"
        ident.mkdir(parents=True)
        write_key(ident / "key.pem", ec.generate_private_key(ec.SECP256R1()))
        (ident / "key.pem").chmod(0o644)
        r = await agentctl(box, "doctor", "-o", "json")
    finally:
        sock.close()
    s = r.finding("agent.socket")
    assert s["status"] == "fail" and "0666" in s["message"] and "chmod 0660" in s["fix"]
    assert r.finding("identity.key_mode")["status"] == "fail"
    assert r.finding("identity.cert")["status"] == "skip"  # no fleet configured: no certificate is expected
    assert r.finding("agent.running")["status"] == "warn"
    key = (ident / "key.pem").read_text().splitlines()[1]
    assert key not in r.stdout


async def test_invalid_config_names_file_and_key(box: Path) -> None:
    (box / "etc/edge-agent/agent.toml").write_text('[fleet]\nurl = "ftp://x"\n')
    r = await agentctl(box, "doctor", "-o", "json")
    c = r.finding("config.valid")
    assert c["status"] == "fail" and "fleet.url" in c["message"] and c["path"].endswith("agent.toml")
    assert r.rc == 2


async def test_failed_k3s_unit_shows_its_telling_journal_line_without_the_token(box: Path) -> None:
    (box / "etc/systemd/system").mkdir(parents=True)
    (box / "etc/systemd/system/k3s.service").write_text("[Service]\nExecStart=/usr/local/bin/k3s server\n")
    (box / "etc/rancher/k3s").mkdir(parents=True)
    (box / "etc/rancher/k3s/config.yaml").write_text(f'token: "{K3S_TOKEN}"\n')
    (box / "run/standin-systemd").mkdir(parents=True)
    (box / "run/standin-systemd/k3s.service.json").write_text('{"ActiveState": "failed", "SubState": "failed"}')
    (box / "var/log/standin-journal").mkdir(parents=True)
    (box / "var/log/standin-journal/k3s.log").write_text(
        'level=info msg="Starting k3s"\n'
        f'level=fatal msg="token CA hash does not match the Cluster CA certificate hash: {K3S_TOKEN}"\n'
        'level=info msg="shutting down"\n'
    )
    r = await agentctl(box, "doctor", "-o", "json")
    unit = r.finding("runtime.unit")
    assert unit["status"] == "fail" and "k3s.service is failed" in unit["message"]
    journal = r.finding("runtime.journal")
    assert "TokenCAHashMismatch" in journal["message"]
    assert "s3cr3tjoinpassword42" not in r.stdout
    assert r.finding("runtime.node_ready")["status"] == "skip"  # no k3s binary to ask the API with


async def test_agent_down_node_ready_is_asked_from_the_api(box: Path) -> None:
    """The daemon is down: doctor runs the (stand-in) k3s kubectl itself; its API does not answer."""
    from .conftest import STANDINS

    (box / "etc/systemd/system").mkdir(parents=True)
    (box / "etc/systemd/system/k3s.service").write_text("[Service]\nExecStart=/usr/local/bin/k3s server\n")
    (box / "usr/local/bin").mkdir(parents=True)
    (box / "usr/local/bin/k3s").symlink_to(STANDINS.parent / "dist/k3s")
    (box / "etc/edge-agent/agent.toml").write_text('[agent]\nnode_name = "cab-17"\n')
    r = await agentctl(box, "doctor", "-o", "json")
    ready = r.finding("runtime.node_ready")
    assert ready["status"] == "fail" and "node cab-17 is not Ready: Unknown/APIUnreachable" in ready["message"]
    assert "refused" in ready["message"]


async def test_enrolled_box_with_its_agent_running(box: Path, registrar: RegistrarHandle) -> None:
    """A real agentd enrolls with the real registrar: every agent, fleet and identity check passes. The registrar
    assigns k3s, which cannot be installed here (no air-gap bundle): that is the one thing doctor flags."""
    import asyncio
    import json

    from tests.conftest import AgentProcess

    write_seed(box, registrar.url, registrar.pin, registrar.token())
    agent = AgentProcess(box).start()
    try:
        status: dict[str, object] = {}
        for _ in range(150):
            r = await agentctl(box, "status", "-o", "json")
            status = json.loads(r.stdout) if r.stdout else {}
            fleet = status.get("sections", {}).get("fleet", {})  # type: ignore[attr-defined]
            if fleet.get("enrolled") and (box / "var/lib/edge-agent/identity/crl.pem").is_file():
                break
            await asyncio.sleep(0.2)
        else:
            raise AssertionError(f"the agent never enrolled: {status}")
        r = await agentctl(box, "doctor", "-o", "json")
    finally:
        agent.stop()
    jsonschema.validate(r.json(), JSON_SCHEMA)
    for check in ("agent.running", "agent.socket", "config.valid", "seed.parse", "registrar.tls", "fleet.ca_pin",
                  "clock.skew", "identity.cert", "identity.revoked", "identity.key_mode", "disk.free"):  # fmt: skip
        assert r.finding(check)["status"] == "ok", r.finding(check)
    bad = {f["check"] for f in r.json()["findings"] if f["status"] in ("warn", "fail")}
    assert bad and all(c.startswith(("runtime.", "condition.")) for c in bad), bad
    assert not bad & {"condition.enrolled", "condition.assigned", "condition.configvalid"}, bad
    assert "k3s" in r.finding("runtime.unit")["message"] and r.rc == 2


async def test_no_journalctl_still_reports_the_unit(box: Path, tmp_path: Path) -> None:
    """A minimal image without journalctl: the unit state is still checked, doctor does not crash."""
    import sys

    from .conftest import STANDINS

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "systemctl").symlink_to(STANDINS / "systemctl")
    (bin_dir / "python3").symlink_to(sys.executable)  # the stand-in's interpreter, nothing else
    (box / "etc/systemd/system").mkdir(parents=True)
    (box / "etc/systemd/system/k0sworker.service").write_text("[Service]\nExecStart=/usr/local/bin/k0s worker\n")
    r = await agentctl(box, "doctor", "-o", "json", env={"PATH": str(bin_dir)})
    assert r.rc == 2, r.stderr
    assert r.finding("runtime.unit")["status"] == "fail" and "k0sworker.service is inactive" in r.stdout
    assert "journal unreadable" in r.finding("runtime.journal")["message"]
