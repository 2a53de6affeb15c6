"""Parts for connection-storm tests and the soak bench: a box identity without a registrar,
an mTLS client of the same fleet CA, and many TCP connections that never send a ClientHello."""

from __future__ import annotations

import contextlib
import http.client
import re
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from agent.registrar.ca import CertificateAuthority, cert_pem, write_key


@dataclass(frozen=True)
class Fleet:
    ca: CertificateAuthority
    ca_pem: Path


def give_identity(identity_dir: Path, node: str = "box-1") -> Fleet:
    """What enrollment leaves in the box's identity directory: key, node certificate, CA."""
    ca = CertificateAuthority.create("storm fleet CA")
    key = ec.generate_private_key(ec.SECP256R1())
    cert = ca.issue(key.public_key(), common_name=node, role="fleet:node", lifetime=timedelta(hours=2))
    identity_dir.mkdir(parents=True, exist_ok=True)
    write_key(identity_dir / "key.pem", key)
    (identity_dir / "cert.pem").write_bytes(cert_pem(cert))
    (identity_dir / "ca.pem").write_bytes(cert_pem(ca.cert))
    return Fleet(ca, identity_dir / "ca.pem")


def client_context(fleet: Fleet, out: Path, role: str = "fleet:reader") -> ssl.SSLContext:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = fleet.ca.issue(key.public_key(), common_name="operator", role=role, lifetime=timedelta(hours=2))
    out.mkdir(parents=True, exist_ok=True)
    write_key(out / "client.key", key)
    (out / "client.pem").write_bytes(cert_pem(cert))
    ctx = ssl.create_default_context(cafile=str(fleet.ca_pem))
    ctx.check_hostname = False  # reached by address; the chain is still verified
    ctx.load_cert_chain(out / "client.pem", out / "client.key")
    return ctx


def remote_get(port: int, tls: ssl.SSLContext, path: str = "/v1/status", timeout: float = 10.0) -> int:
    """HTTP status of one GET over mTLS to 127.0.0.1:port."""
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=tls, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


@contextlib.contextmanager
def half_open(port: int, count: int) -> Iterator[list[socket.socket]]:
    """``count`` TCP connections to 127.0.0.1:port that never send a byte (closed on exit)."""
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(s)
            s.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                s.connect(("127.0.0.1", port))
        yield socks
    finally:
        for s in socks:
            s.close()


def closed_by_peer(s: socket.socket) -> bool:
    """True once the other side closed (or reset) the connection."""
    try:
        return s.recv(1, socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def metric(text: str, name: str, labels: str = "") -> float | None:
    """One sample of a Prometheus text exposition, by name and exact label set."""
    want = f"{name}{{{labels}}}" if labels else name
    for line in text.splitlines():
        m = re.fullmatch(r"(\S+) (\S+)", line)
        if m and m.group(1) == want:
            return float(m.group(2))
    return None
