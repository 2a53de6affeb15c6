"""mTLS for the remote agent API: the server TLS context and the role check.

Only certificates of the fleet CA get through the handshake; revoked serials
are refused by the CRL the registrar publishes (checked in the handshake, and
again per request so a revocation also ends keep-alive connections).

Roles travel in the client certificate, in the subject's organizationalUnitName
(``OU=fleet:reader`` etc., set by edge-registrar; see agent.registrar.ca):

    fleet:reader    GET, HEAD, OPTIONS
    fleet:operator  every method (triggering upgrades, say)
    fleet:admin     everything
    fleet:node      nothing on another box's API

Only certificates made for client authentication get a role: one without the
``clientAuth`` extended key usage (the registrar's serving certificate, say) is
refused whatever its subject claims.

Requests over the unix socket are not touched: the socket is root/group only.
"""

from __future__ import annotations

import functools
import socket
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from agent.api.http import problem

# cryptography (~20 ms to import) is imported where a CRL or certificate is parsed: the socket API
# serves before the remote listener, which needs it, exists.

ROLE_FIELD = "organizationalUnitName"
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
ALLOWED: dict[str, Callable[[str], bool]] = {
    "fleet:reader": lambda method: method in READ_METHODS,
    "fleet:operator": lambda method: True,
    "fleet:admin": lambda method: True,
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class FleetTLSContext(ssl.SSLContext):
    """An SSLContext that also remembers the revoked serials of the CRL it loaded."""

    revoked_serials: frozenset[int] = frozenset()


def server_context(cert: Path, key: Path, ca: Path, crl: Path | None = None) -> FleetTLSContext:
    ctx = FleetTLSContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cafile=str(ca))
    ctx.load_cert_chain(cert, key)
    if crl is not None and crl.is_file():
        load_crl(ctx, crl)
    return ctx


def reload_identity(ctx: ssl.SSLContext, cert: Path, key: Path) -> None:
    """Swap in a renewed certificate: new handshakes use it, the listener stays up."""
    ctx.load_cert_chain(cert, key)


def load_crl(ctx: FleetTLSContext, crl: Path) -> None:
    """Add the fleet CRL; OpenSSL uses the newest loaded one. Raises ValueError when unreadable."""
    from cryptography import x509

    data = crl.read_bytes()
    parsed = x509.load_pem_x509_crl(data)
    ctx.load_verify_locations(cafile=str(crl))  # a file may hold CRLs alone; cadata may not
    ctx.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
    ctx.revoked_serials = frozenset(r.serial_number for r in parsed)


def peer_role(cert: dict[str, object]) -> str:
    subject = cert.get("subject", ())
    assert isinstance(subject, tuple)
    for rdn in subject:
        for k, v in rdn:
            if k == ROLE_FIELD and v in (*ALLOWED, "fleet:node"):
                return str(v)
    return ""


@functools.lru_cache(maxsize=256)
def client_auth(der: bytes) -> bool:
    """The certificate's extended key usage includes clientAuth (no EKU at all does not count)."""
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID

    try:
        usage = x509.load_der_x509_certificate(der).extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except (ValueError, x509.ExtensionNotFound):
        return False
    return ExtendedKeyUsageOID.CLIENT_AUTH in usage.value


def may(role: str, method: str) -> bool:
    check = ALLOWED.get(role)
    return bool(check and check(method.upper()))


@web.middleware
async def require_role(request: web.Request, handler: Handler) -> web.StreamResponse:
    transport = request.transport
    if transport is None:
        return problem(403, "Forbidden", "connection closed")
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family == socket.AF_UNIX:
        return await handler(request)
    ssl_obj = transport.get_extra_info("ssl_object")
    if ssl_obj is None:
        return problem(403, "Forbidden", "the remote API is served over mTLS only")
    cert = ssl_obj.getpeercert()
    if not cert:
        return problem(401, "Unauthorized", "a client certificate of the fleet CA is required")
    try:
        serial = int(str(cert["serialNumber"]), 16)
    except (KeyError, ValueError):
        return problem(401, "Unauthorized", "client certificate has no serial number")
    if serial in getattr(ssl_obj.context, "revoked_serials", frozenset()):
        return problem(403, "Forbidden", "client certificate is revoked")
    if not client_auth(ssl_obj.getpeercert(binary_form=True) or b""):
        return problem(
            403, "Forbidden", "certificate is not for client authentication (no clientAuth extended key usage)"
        )
    role = peer_role(cert)
    if not may(role, request.method):
        return problem(
            403,
            "Forbidden",
            f"role {role or '(none)'} may not {request.method} here",
            required="fleet:reader" if request.method in READ_METHODS else "fleet:operator",
        )
    return await handler(request)
