"""The HTTP seam between the fleet code and the network.

``Transport.request`` is all the fleet client needs; the production
``AiohttpTransport`` translates every network and TLS failure into
``FleetUnavailable`` (or ``PinMismatch`` when the registrar's certificate does
not chain to the pinned CA). Tests inject their own transport instead of patching.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

import aiohttp

from agent.errors import FleetUnavailable, PinMismatch


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
            raise FleetUnavailable(f"{url}: TLS handshake failed ({exc.__class__.__name__})") from exc
        except aiohttp.ClientConnectorError as exc:
            reason = exc.os_error.strerror or str(exc.os_error) or type(exc.os_error).__name__
            raise FleetUnavailable(f"{url}: cannot connect to {exc.host}:{exc.port} ({reason})") from exc
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            detail = str(exc) or type(exc).__name__
            raise FleetUnavailable(f"{url}: {detail}") from exc
