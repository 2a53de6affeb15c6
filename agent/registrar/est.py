"""EST (RFC 7030) endpoints: cacerts, simpleenroll (HTTP Basic: node id + bootstrap token), simplereenroll (mTLS).

Wire format per the RFC: requests carry a base64 DER PKCS#10 (``application/pkcs10``),
responses a base64 DER certs-only PKCS#7 (``application/pkcs7-mime``) with
``Content-Transfer-Encoding: base64``. 202 + Retry-After means pending approval
(§4.2.3), unless approval policies exist: then a pending box gets its certificate and stays
pending until a policy approves it on the inventory it registers (agent.registrar.policy).
The registrar decides subject and SANs; the CSR only contributes its key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import re
import time

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, pkcs7

from agent.api.http import problem
from agent.errors import BadCsr, WeakKey
from agent.registrar.ca import NODE_URI_PREFIX, check_public_key
from agent.registrar.registry import Node
from agent.registrar.service import REGISTRAR, Registrar, peer_of, source_of
from agent.registrar.tokens import matches, split

log = logging.getLogger("edge-registrar.est")

PKCS7_CERTS_ONLY = "application/pkcs7-mime; smime-type=certs-only"
NODE_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def certs_only(certs: list[x509.Certificate]) -> web.Response:
    body = base64.encodebytes(pkcs7.serialize_certificates(certs, Encoding.DER))
    return web.Response(
        body=body,
        headers={"Content-Type": PKCS7_CERTS_ONLY, "Content-Transfer-Encoding": "base64"},
    )


def decode_csr(raw: bytes) -> x509.CertificateSigningRequest:
    try:
        der = base64.b64decode(b"".join(raw.split()), validate=True)
        csr = x509.load_der_x509_csr(der)
    except (binascii.Error, ValueError) as exc:
        raise BadCsr("body is not a base64 DER PKCS#10 request (RFC 7030 §4.2.1)") from exc
    if not csr.is_signature_valid:
        raise BadCsr("the request's signature does not verify")
    try:
        check_public_key(csr.public_key())
    except WeakKey as exc:
        raise BadCsr(str(exc)) from exc
    return csr


def key_fingerprint(csr: x509.CertificateSigningRequest) -> str:
    spki = csr.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).hexdigest()


def issue_node_cert(reg: Registrar, node_id: str, csr: x509.CertificateSigningRequest) -> x509.Certificate:
    cert = reg.ca.issue(
        csr.public_key(),
        common_name=node_id,
        role="fleet:node",
        lifetime=reg.settings.cert_lifetime,
        names=[x509.DNSName(node_id), x509.UniformResourceIdentifier(NODE_URI_PREFIX + node_id)],
    )
    reg.registry.record_cert(node_id, cert.serial_number, cert.not_valid_after_utc.timestamp())
    return cert


def _basic(request: web.Request) -> tuple[str, str] | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


def _denied(reg: Registrar, request: web.Request, detail: str) -> web.Response:
    reg.limiter.failed(source_of(request))
    log.warning("enrollment refused from %s: %s", source_of(request), detail)
    resp = problem(401, "Unauthorized", detail)
    resp.headers["WWW-Authenticate"] = 'Basic realm="edge-registrar"'
    return resp


async def _csr(request: web.Request) -> x509.CertificateSigningRequest | web.Response:
    ctype = request.content_type
    if ctype != "application/pkcs10":
        return problem(415, "Unsupported Media Type", f"expected application/pkcs10, got {ctype or 'none'}")
    try:
        return decode_csr(await request.read())
    except BadCsr as exc:
        return problem(400, "Bad certificate request", str(exc))


async def cacerts(request: web.Request) -> web.StreamResponse:
    return certs_only([request.app[REGISTRAR].ca.cert])


async def simpleenroll(request: web.Request) -> web.StreamResponse:
    reg = request.app[REGISTRAR]
    wait = reg.limiter.retry_after(source_of(request))
    if wait > 0:
        resp = problem(429, "Too Many Requests", "too many failed bootstrap attempts from this source")
        resp.headers["Retry-After"] = str(int(wait) + 1)
        return resp
    creds = _basic(request)
    if creds is None:
        return _denied(reg, request, "HTTP Basic credentials required: node id and bootstrap token")
    node_id, secret_token = creds
    if not NODE_ID_RE.match(node_id):
        return _denied(reg, request, "node id must be lowercase letters, digits and '-' (at most 63)")
    parts = split(secret_token)
    record = reg.registry.get_token(parts[0]) if parts else None
    if parts is None or record is None or not matches(record, parts[1]):
        return _denied(reg, request, "unknown bootstrap token")
    if record.expires_at <= time.time():
        return _denied(reg, request, f"bootstrap token {record.token_id} has expired")
    csr = await _csr(request)
    if isinstance(csr, web.Response):
        return csr
    fingerprint = key_fingerprint(csr)
    node = reg.registry.get_node(node_id)
    if node is None:
        fresh = Node(
            node_id=node_id,
            state="pending" if record.require_approval else "approved",
            approved_by="" if record.require_approval else f"token:{record.token_id}",
            token_id=record.token_id,
            key_fingerprint=fingerprint,
            site=record.site,
            labels=dict(record.labels),
            created_at=time.time(),
        )
        # one transaction: the node and its token's use, or the node another request made meanwhile
        node = reg.registry.enroll_node(fresh)
        if node is None:
            return _denied(reg, request, f"bootstrap token {record.token_id} has no uses left")
        if node == fresh:
            log.info("node %s enrolled with token %s (%s)", node_id, record.token_id, node.state)
    if node.state == "revoked":
        return problem(403, "Forbidden", f"node {node_id} is revoked")
    elif node.token_id != record.token_id or node.key_fingerprint != fingerprint:
        # Only the box that first used this token, with the same key, may repeat the
        # request (a lost response); anyone else is guessing.
        return _denied(reg, request, f"node {node_id} is already enrolled; renew with simplereenroll")
    if node.state == "pending" and not reg.registry.rules("policy"):
        # with approval policies a pending box gets its certificate so it can register its inventory
        # for them to judge; it stays pending (no cluster, no join token) until one or an operator approves
        resp = web.json_response({"status": "pending", "detail": f"node {node_id} awaits approval"}, status=202)
        resp.headers["Retry-After"] = str(reg.settings.retry_after)
        return resp
    return certs_only([issue_node_cert(reg, node_id, csr)])


async def simplereenroll(request: web.Request) -> web.StreamResponse:
    reg = request.app[REGISTRAR]
    peer = peer_of(request)
    if peer is None:
        return problem(401, "Unauthorized", "simplereenroll needs the current client certificate (mTLS)")
    node = reg.live_node(peer)
    if node is None:
        return problem(403, "Forbidden", "certificate revoked or not a node certificate")
    csr = await _csr(request)
    if isinstance(csr, web.Response):
        return csr
    log.info("node %s renewed its certificate", node.node_id)
    return certs_only([issue_node_cert(reg, node.node_id, csr)])


def add_routes(app: web.Application) -> None:
    app.router.add_get("/.well-known/est/cacerts", cacerts)
    app.router.add_post("/.well-known/est/simpleenroll", simpleenroll)
    app.router.add_post("/.well-known/est/simplereenroll", simplereenroll)
