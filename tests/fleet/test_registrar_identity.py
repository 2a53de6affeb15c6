"""The registrar's own certificates against a real box: `edge-registrar serve` and a real agentd
(remote listener on loopback), both as processes; openssl as the independent reader of the EKUs."""

from __future__ import annotations

import http.client
import json
import shutil
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509

from tests.conftest import AgentProcess
from tests.fleet.harness import free_port
from tests.registrar.program import registrar


def until(predicate: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def serial_of(pem: Path) -> int:
    return int(x509.load_pem_x509_certificate(pem.read_bytes()).serial_number)


def call(port: int, cert: Path, key: Path, ca: Path, method: str, path: str, body: bytes = b"") -> int | str:
    """The box's answer to one request with this client certificate, or 'refused' (handshake)."""
    ctx = ssl.create_default_context(cafile=str(ca))
    ctx.check_hostname = False  # reached by address; the box's chain is still verified
    ctx.load_cert_chain(cert, key)
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=5)
    try:
        conn.request(method, path, body=body or None, headers={"Content-Type": "application/json"})
        return conn.getresponse().status
    except (ssl.SSLError, ConnectionError):
        return "refused"
    finally:
        conn.close()


@dataclass
class Fleet:
    state: Path
    box_port: int
    box: AgentProcess

    @property
    def ca(self) -> Path:
        return self.state / "ca.pem"


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    state = tmp_path / "reg"
    pin = registrar(state, "init").stdout.strip()
    token = registrar(state, "token", "create", "--site", "lab").stdout.strip()
    port = free_port()
    serve = subprocess.Popen(
        [sys.executable, "-m", "agent.registrar", "--state-dir", str(state), "serve",
         "--listen", f"127.0.0.1:{port}", "--retry-after", "1"],
        stderr=(tmp_path / "registrar.log").open("wb"),
    )  # fmt: skip
    root = tmp_path / "box"
    (root / "etc/edge-agent").mkdir(parents=True)
    (root / "etc/machine-id").write_text("5e" * 16 + "\n")
    box_port = free_port()
    (root / "etc/edge-agent/agent.toml").write_text(
        f'[api]\nremote_listen = "127.0.0.1:{box_port}"\n\n'
        f'[fleet]\nurl = "https://127.0.0.1:{port}"\nca_pin = "{pin}"\nbootstrap_token = "{token}"\n'
        "retry_max = 0.5\nheartbeat_interval = 0.3\n"
    )
    box = AgentProcess(root)
    try:
        until(lambda: (state / "server.pem").exists(), 20, "the registrar's serving certificate")
        box.start()
        f = Fleet(state, box_port, box)

        def reachable() -> bool:
            rows = json.loads(registrar(state, "poll", "-o", "json", "--timeout", "1").stdout)["nodes"]
            return bool(rows) and all(r["reachable"] for r in rows)

        until(reachable, 30, "the box's remote API reachable by the poller")
        yield f
    finally:
        box.stop()
        serve.terminate()
        serve.wait(10)


@pytest.mark.slow
def test_the_registrars_serving_certificate_opens_no_box(fleet: Fleet) -> None:
    chain, key = fleet.state / "server.pem", fleet.state / "server.key"
    # presented as a client certificate it must not trigger an upgrade, nor even read status
    body = json.dumps({"bundle_url": "https://127.0.0.1:1/x.tar"}).encode()
    assert call(fleet.box_port, chain, key, fleet.ca, "POST", "/v1/upgrades", body) in ("refused", 401, 403)
    assert call(fleet.box_port, chain, key, fleet.ca, "GET", "/v1/status") in ("refused", 401, 403)
    # the registrar's own reader certificate does read status, and only that
    poller = fleet.state / "poller"
    assert call(fleet.box_port, poller / "client.pem", poller / "client.key", fleet.ca, "GET", "/v1/status") == 200
    assert call(fleet.box_port, poller / "client.pem", poller / "client.key", fleet.ca, "POST", "/v1/upgrades",
                body) == 403  # fmt: skip


@pytest.mark.skipif(not shutil.which("openssl"), reason="needs openssl")
@pytest.mark.slow
def test_openssl_reads_server_only_and_client_only_usages(fleet: Fleet) -> None:
    def openssl(pem: Path, *args: str) -> str:
        return subprocess.run(["openssl", "x509", "-in", str(pem), "-noout", *args], capture_output=True,
                              text=True, check=True).stdout  # fmt: skip

    serving = fleet.state / "server.pem"
    purposes = openssl(serving, "-purpose")
    assert "SSL server : Yes" in purposes and "SSL client : No" in purposes
    text = openssl(serving, "-text")
    assert "TLS Web Server Authentication" in text and "TLS Web Client Authentication" not in text
    assert "fleet:" not in openssl(serving, "-subject")  # no role

    poller = fleet.state / "poller/client.pem"
    purposes = openssl(poller, "-purpose")
    assert "SSL client : Yes" in purposes and "SSL server : No" in purposes
    assert "OU=fleet:reader" in openssl(poller, "-subject", "-nameopt", "compat").replace(" = ", "=")


@pytest.mark.slow
def test_every_registrar_certificate_is_recorded_kept_and_revocable(fleet: Fleet, tmp_path: Path) -> None:
    state = fleet.state
    poller = state / "poller"
    first = serial_of(poller / "client.pem")
    registrar(state, "init")
    registrar(state, "poll", "--timeout", "1")
    assert serial_of(poller / "client.pem") == first  # issued once, not one per run

    # the serving certificate is recorded: an operator can revoke it
    serving = serial_of(state / "server.pem")
    out = registrar(state, "cert", "revoke", f"{serving:x}").stdout
    assert f"revoked certificate {serving:x}" in out

    # a revoked poller certificate is refused by the box once it has the new CRL ...
    old = tmp_path / "old-poller"
    shutil.copytree(poller, old)
    assert registrar(state, "cert", "revoke", f"{first:x}").returncode == 0
    until(lambda: call(fleet.box_port, old / "client.pem", old / "client.key", fleet.ca, "GET", "/v1/status")
          in ("refused", 403), 15, "the revoked poller certificate refused")  # fmt: skip
    # ... and the next poll gets the registrar a new, recorded one that the box accepts
    rows = json.loads(registrar(state, "poll", "-o", "json", "--timeout", "2").stdout)["nodes"]
    assert serial_of(poller / "client.pem") != first
    assert [r["reachable"] for r in rows] == [True]
