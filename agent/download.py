"""Streaming HTTP(S) downloads, for upgrade bundles and k3s/k0s binaries alike.

Chunks arrive as the network delivers them (the caller hashes and writes them);
a body shorter than its Content-Length is a truncated download; a body larger
than ``max_bytes`` (announced, or streamed without end) is stopped there; every
error is a DownloadError whose message shows the URL without credentials or query.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import TracebackType

import aiohttp

from agent.errors import DownloadError
from agent.urls import redact_url

MAX_DOWNLOAD = 8 << 30  # no edge box has room for more; a source streaming forever is cut off here


def size_text(n: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift} {unit}"
    return f"{n} bytes"


class Download:
    """``async with Download(url) as dl:`` then ``dl.total`` (Content-Length or None) and
    ``async for chunk in dl.chunks(): ...``."""

    def __init__(
        self, url: str, *, connect_timeout: float = 30.0, read_timeout: float = 60.0, max_bytes: int = MAX_DOWNLOAD
    ) -> None:
        self.url = url
        self.max_bytes = max_bytes
        self.shown = redact_url(url)
        self.timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout, sock_read=read_timeout)
        self.total: int | None = None
        self.done = 0
        self._session: aiohttp.ClientSession | None = None
        self._resp: aiohttp.ClientResponse | None = None

    async def __aenter__(self) -> Download:
        self._session = aiohttp.ClientSession(timeout=self.timeout)
        try:
            self._resp = await self._session.get(self.url)
        except (aiohttp.ClientError, TimeoutError) as exc:
            await self._session.close()
            raise DownloadError(f"{self.shown}: download failed: {type(exc).__name__}: {exc}") from exc
        if self._resp.status != 200:
            status, reason = self._resp.status, self._resp.reason
            await self.__aexit__(None, None, None)
            raise DownloadError(f"{self.shown}: download failed: HTTP {status} {reason}")
        self.total = self._resp.content_length
        if self.total is not None and self.total > self.max_bytes:
            await self.__aexit__(None, None, None)
            limit = size_text(self.max_bytes)
            raise DownloadError(f"{self.shown}: {self.total} bytes is larger than the {limit} limit")
        return self

    async def chunks(self, size: int = 1 << 16) -> AsyncIterator[bytes]:
        assert self._resp is not None, "use Download in async with"
        try:
            async for chunk in self._resp.content.iter_chunked(size):
                if self.done + len(chunk) > self.max_bytes:
                    limit = size_text(self.max_bytes)
                    raise DownloadError(f"{self.shown}: larger than the {limit} limit; stopped after {self.done} bytes")
                self.done += len(chunk)
                yield chunk
        except aiohttp.ClientPayloadError as exc:
            raise DownloadError(f"{self.shown}: truncated download ({self.done} bytes received)") from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise DownloadError(f"{self.shown}: download failed: {type(exc).__name__}: {exc}") from exc
        if self.total is not None and self.done != self.total:
            raise DownloadError(f"{self.shown}: truncated download: got {self.done} of {self.total} bytes")

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._resp is not None:
            self._resp.release()
        if self._session is not None:
            await self._session.close()
