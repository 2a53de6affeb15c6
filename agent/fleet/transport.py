"""The HTTP seam between the fleet code and the network.

``Transport.request`` is all the fleet client needs; the production
``AiohttpTransport`` translates every network and TLS failure into
``RegistrarDown`` (a ``FleetUnavailable`` the agent fails over on: refused,
timed out, closed, a TLS handshake that failed) or ``PinMismatch`` when the
registrar's certificate does not chain to the pinned CA. Tests inject their own
transport instead of patching.
"""

from __future__ import annotations

import errno
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

import aiohttp

from agent.errors import PinMismatch, RegistrarDown


def _os_reason(exc: OSError) -> str:
    if exc.errno is not None and exc.errno in errno.errorcode:
        return os.strerror(exc.errno).lower()
    return exc.strerror or str(exc) or type(exc).__name__


@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)


class Transport(Protocol):
    async def request(
        self,
        method: str,
        url: str,
        *,
        ssl_context: ssl.SSLContext,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        timeout: float = 30.0,
    ) -> HttpResponse: ...


class AiohttpTransport:
    """One short-lived session per request: fleet calls are rare, and nothing leaks across contexts."""

    async def request(
        self,
        method: str,
        url: str,
        *,
        ssl_context: ssl.SSLContext,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        timeout: float = 30.0,
    ) -> HttpResponse:
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
                session.request(method, url, data=body, headers=headers, ssl=ssl_context) as resp,
            ):
                return HttpResponse(resp.status, await resp.read(), dict(resp.headers))
        except aiohttp.ClientConnectorCertificateError as exc:
            raise PinMismatch(
                f"{url}: the registrar's certificate is not from the pinned fleet CA "
                f"({exc.certificate_error.__class__.__name__}: {getattr(exc.certificate_error, 'verify_message', '')})"
            ) from exc
        except aiohttp.ClientSSLError as exc:
            reason = f"TLS handshake failed ({exc.__class__.__name__})"
            raise RegistrarDown(f"{url}: {reason}", reason) from exc
        except aiohttp.ClientConnectorError as exc:
            reason = _os_reason(exc.os_error)
            raise RegistrarDown(f"{url}: cannot connect to {exc.host}:{exc.port} ({reason})", reason) from exc
        except TimeoutError as exc:
            reason = f"no answer within {timeout:g}s"
            raise RegistrarDown(f"{url}: {reason}", reason) from exc
        except aiohttp.ServerDisconnectedError as exc:
            raise RegistrarDown(f"{url}: the registrar closed the connection", "connection closed") from exc
        except (aiohttp.ClientError, OSError) as exc:
            detail = str(exc) or type(exc).__name__
            raise RegistrarDown(f"{url}: {detail}", detail) from exc
