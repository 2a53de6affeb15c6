"""A light simulated box: the real enrollment HTTP exchange (EST simpleenroll with HTTP Basic, then
``POST /v1/fleet/register`` over mTLS with the certificate it got), against a list of registrar
replicas, failing over on connection errors and 503s and backing off between rounds like the agent.

Used by the replica tests (tests/registrar/test_replicas.py) and bench/fleet_bench.py.
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7

EST = "/.well-known/est"


@dataclass
class SimBox:
    node_id: str
    key: ec.EllipticCurvePrivateKey
    csr_b64: bytes
    cert: x509.Certificate | None = None
    answer: dict[str, Any] = field(default_factory=dict)
    rounds: list[float] = field(default_factory=list)  # loop time each round of replicas started
    errors: list[str] = field(default_factory=list)
    done_at: float = 0.0
    api_port: int = 7443  # where its remote API (a simulated one) listens

    @classmethod
    def make(cls, node_id: str) -> SimBox:
        key = ec.generate_private_key(ec.SECP256R1())
        csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([])).sign(key, hashes.SHA256())
        return cls(node_id, key, base64.encodebytes(csr.public_bytes(serialization.Encoding.DER)))

    def mtls(self, ca_pem: Path, work: Path) -> ssl.SSLContext:
        """A client context with this box's key and certificate (files under ``work``)."""
        assert self.cert is not None
        key, cert = work / f"{self.node_id}.key", work / f"{self.node_id}.pem"
        key.write_bytes(
            self.key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        cert.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        ctx = ssl.create_default_context(cafile=str(ca_pem))
        ctx.load_cert_chain(cert, key)
        return ctx


def serving_context(box: SimBox, ca_pem: Path, work: Path) -> ssl.SSLContext:
    """What the box's remote API serves with: its node certificate, client certificates required."""
    client = box.mtls(ca_pem, work)  # writes the files
    del client
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cafile=str(ca_pem))
    ctx.load_cert_chain(work / f"{box.node_id}.pem", work / f"{box.node_id}.key")
    return ctx


class Retry(Exception):
    """This replica cannot serve now (down, 503, 429): try the next one."""


async def _enroll(session: aiohttp.ClientSession, url: str, box: SimBox, token: str) -> x509.Certificate:
    auth = base64.b64encode(f"{box.node_id}:{token}".encode()).decode()
    headers = {"Authorization": f"Basic {auth}", "Content-Type": "application/pkcs10"}
    async with session.post(f"{url}{EST}/simpleenroll", data=box.csr_b64, headers=headers) as r:
        body = await r.read()
        if r.status in (429, 502, 503, 504):
            raise Retry(f"{url}: {r.status}")
        if r.status != 200:
            raise RuntimeError(f"{box.node_id}: simpleenroll at {url}: {r.status} {body[:200]!r}")
    certs = pkcs7.load_der_pkcs7_certificates(base64.b64decode(body))
    return certs[0]


async def _register(session: aiohttp.ClientSession, url: str, ctx: ssl.SSLContext, box: SimBox) -> dict[str, Any]:
    doc = {"addresses": ["127.0.0.1"], "api_port": box.api_port, "inventory": {}, "site": ""}
    async with session.post(f"{url}/v1/fleet/register", json=doc, ssl=ctx) as r:
        body = await r.read()
        if r.status in (429, 502, 503, 504):
            raise Retry(f"{url}: {r.status}")
        if r.status != 200:
            raise RuntimeError(f"{box.node_id}: register at {url}: {r.status} {body[:200]!r}")
        answer: dict[str, Any] = json.loads(body)
        return answer


async def join(
    box: SimBox,
    urls: list[str],
    token: str,
    ca_pem: Path,
    work: Path,
    *,
    first: int = 0,
    base_delay: float = 0.25,
    cap: float = 4.0,
    timeout: float = 20.0,
) -> SimBox:
    """Enroll and register ``box``: each round tries every replica from the one that worked last;
    between rounds a capped exponential backoff with jitter (the agent's policy)."""
    ca_ctx = ssl.create_default_context(cafile=str(ca_pem))
    current = first % len(urls)
    attempt = 0
    loop = asyncio.get_running_loop()
    connector = aiohttp.TCPConnector(ssl=ca_ctx, force_close=True)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=timeout)) as session:
        while True:
            box.rounds.append(loop.time())
            start = current
            for step in range(len(urls)):
                at = (start + step) % len(urls)
                try:
                    if box.cert is None:
                        box.cert = await _enroll(session, urls[at], box, token)
                    box.answer = await _register(session, urls[at], box.mtls(ca_pem, work), box)
                    box.done_at = loop.time()
                    return box
                except (Retry, aiohttp.ClientError, TimeoutError, OSError) as exc:
                    box.errors.append(f"{urls[at]}: {type(exc).__name__}: {exc}"[:200])
                    current = (at + 1) % len(urls)
            attempt += 1
            delay = min(cap, base_delay * 2 ** (attempt - 1))
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))  # jitter
