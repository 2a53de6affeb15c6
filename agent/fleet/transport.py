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


KEEPALIVE = 90.0  # seconds an idle connection is kept: beyond the 60 s heartbeat, within aiohttp servers' 75 s


class AiohttpTransport:
    """One session whose connections are kept alive between calls: a heartbeat every minute then costs
    the registrar no TLS handshake (most of a heartbeat's CPU there). aiohttp pools connections per
    (host, port, SSL context), so a renewed certificate (a new context) never rides an old connection.
    A kept connection the registrar closed meanwhile (ServerDisconnected) is retried once on a new one."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(keepalive_timeout=KEEPALIVE, limit_per_host=4)
            self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

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
        for attempt in (1, 2):
            try:
                async with self._open().request(
                    method,
                    url,
                    data=body,
                    headers=headers,
                    ssl=ssl_context,
                    timeout=aiohttp.ClientTimeout(total=timeout),
                ) as resp:
                    return HttpResponse(resp.status, await resp.read(), dict(resp.headers))
            except aiohttp.ServerDisconnectedError as exc:
                if attempt == 2:
                    raise fleet_error(url, timeout, exc) from exc
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                raise fleet_error(url, timeout, exc) from exc
        raise AssertionError("unreachable: the second attempt returns or raises")


def fleet_error(url: str, timeout: float, exc: BaseException) -> PinMismatch | RegistrarDown:
    """The fleet error a network or TLS failure stands for."""
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return PinMismatch(
            f"{url}: the registrar's certificate is not from the pinned fleet CA "
            f"({exc.certificate_error.__class__.__name__}: {getattr(exc.certificate_error, 'verify_message', '')})"
        )
    if isinstance(exc, aiohttp.ClientSSLError):
        reason = f"TLS handshake failed ({exc.__class__.__name__})"
        return RegistrarDown(f"{url}: {reason}", reason)
    if isinstance(exc, aiohttp.ClientConnectorError):
        reason = _os_reason(exc.os_error)
        return RegistrarDown(f"{url}: cannot connect to {exc.host}:{exc.port} ({reason})", reason)
    if isinstance(exc, TimeoutError):
        reason = f"no answer within {timeout:g}s"
        return RegistrarDown(f"{url}: {reason}", reason)
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return RegistrarDown(f"{url}: the registrar closed the connection", "connection closed")
    detail = str(exc) or type(exc).__name__
    return RegistrarDown(f"{url}: {detail}", detail)
