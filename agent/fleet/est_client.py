"""EST client (RFC 7030): fetch and pin-check the CA before anything else is sent, then enroll.

Order matters: the bootstrap token only ever travels over a TLS connection
verified against the CA whose sha256 matched the pin from the seed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import ssl

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7

from agent.errors import (
    ConfigError,
    ConfigProblem,
    EnrollmentDenied,
    EnrollmentPending,
    FleetError,
    FleetUnavailable,
    PinMismatch,
    RegistrarDown,
)
from agent.fleet import retry_after as hint
from agent.fleet.transport import HttpResponse, Transport

PIN_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
EST = "/.well-known/est"


def check_pin(pin: str) -> str:
    pin = pin.strip().lower()
    if not PIN_RE.match(pin):
        raise ConfigError([ConfigProblem("fleet", "fleet.ca_pin", "expected 'sha256:' and 64 hex digits")])
    return pin


def parse_certs_only(body: bytes) -> list[x509.Certificate]:
    try:
        der = base64.b64decode(b"".join(body.split()), validate=True)
        return list(pkcs7.load_der_pkcs7_certificates(der))
    except (binascii.Error, ValueError) as exc:
        raise FleetError("registrar answered with something that is not a base64 PKCS#7 certs-only") from exc


def detail_of(resp: HttpResponse) -> str:
    try:
        doc = json.loads(resp.body)
    except ValueError:
        return resp.body.decode(errors="replace")[:200]
    return str(doc.get("detail") or doc.get("title") or "") if isinstance(doc, dict) else ""


def raise_for(resp: HttpResponse, what: str) -> None:
    """Turn a non-success answer into the fleet error it means; a 429's or 5xx's Retry-After rides on it."""
    if resp.status in (401, 403):
        raise EnrollmentDenied(f"{what}: refused ({resp.status}): {detail_of(resp)}")
    wait = hint.asked(resp.headers) if resp.status == 429 or resp.status >= 500 else None
    asked = f", {hint.describe(wait)}" if wait is not None else ""
    if resp.status in (502, 503, 504):  # a proxy or load balancer in front of a replica that is down
        reason = f"answered {resp.status}"
        raise RegistrarDown(f"{what}: registrar {reason}{asked}: {detail_of(resp)}", reason, retry_after=wait)
    if resp.status == 429 or resp.status >= 500:
        raise FleetUnavailable(f"{what}: registrar answered {resp.status}{asked}: {detail_of(resp)}", retry_after=wait)
    if resp.status >= 300:
        raise FleetError(f"{what}: registrar answered {resp.status}: {detail_of(resp)}")


def retry_after(resp: HttpResponse, default: float = 60.0) -> float:
    """A 202's Retry-After (pending approval), at least 1 s; ``default`` without a usable one."""
    wait = hint.asked(resp.headers)
    return default if wait is None else max(1.0, wait)


def pinned_context(ca: x509.Certificate) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cadata=ca.public_bytes(Encoding.PEM).decode())
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


class EstClient:
    def __init__(self, base_url: str, ca_pin: str, transport: Transport, timeout: float = 30.0) -> None:
        self.base = base_url.rstrip("/")
        self.pin = check_pin(ca_pin)
        self.transport = transport
        self.timeout = timeout

    async def fetch_ca(self) -> x509.Certificate:
        """GET /cacerts over an unauthenticated TLS connection, keep the certificate matching the pin."""
        blind = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        blind.check_hostname = False
        blind.verify_mode = ssl.CERT_NONE
        resp = await self.transport.request("GET", f"{self.base}{EST}/cacerts", ssl_context=blind, timeout=self.timeout)
        raise_for(resp, "cacerts")
        certs = parse_certs_only(resp.body)
        for cert in certs:
            if "sha256:" + hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest() == self.pin:
                return cert
        offered = ", ".join(
            "sha256:" + hashlib.sha256(c.public_bytes(Encoding.DER)).hexdigest()[:16] + "…" for c in certs
        )
        raise PinMismatch(
            f"{self.base}: the registrar's CA ({offered or 'none'}) does not match the pinned {self.pin[:23]}…; "
            "the bootstrap token was not sent"
        )

    async def simpleenroll(self, ca: x509.Certificate, node_id: str, token: str, csr_der: bytes) -> x509.Certificate:
        basic = base64.b64encode(f"{node_id}:{token}".encode()).decode()
        resp = await self.transport.request(
            "POST",
            f"{self.base}{EST}/simpleenroll",
            ssl_context=pinned_context(ca),
            headers={"Authorization": f"Basic {basic}", "Content-Type": "application/pkcs10"},
            body=base64.encodebytes(csr_der),
            timeout=self.timeout,
        )
        if resp.status == 202:
            raise EnrollmentPending(retry_after(resp), f"node {node_id} awaits approval on the registrar")
        raise_for(resp, "simpleenroll")
        return self._leaf(resp, ca)

    async def simplereenroll(self, mtls: ssl.SSLContext, ca: x509.Certificate, csr_der: bytes) -> x509.Certificate:
        resp = await self.transport.request(
            "POST",
            f"{self.base}{EST}/simplereenroll",
            ssl_context=mtls,
            headers={"Content-Type": "application/pkcs10"},
            body=base64.encodebytes(csr_der),
            timeout=self.timeout,
        )
        raise_for(resp, "simplereenroll")
        return self._leaf(resp, ca)

    @staticmethod
    def _leaf(resp: HttpResponse, ca: x509.Certificate) -> x509.Certificate:
        for cert in parse_certs_only(resp.body):
            if cert.subject == ca.subject:
                continue
            try:
                cert.verify_directly_issued_by(ca)
            except (ValueError, TypeError, InvalidSignature) as exc:
                raise FleetError("the registrar returned a certificate the fleet CA did not sign") from exc
            return cert
        raise FleetError("the registrar's answer held no certificate")
