"""The remote API's TCP listener: TLS with a handshake deadline and a cap on open connections.

The remote port is reachable by anyone on the box's network, before any certificate is
checked. Served the plain way (``loop.create_server(ssl=...)``), a connection that never
sends a ClientHello holds a descriptor and asyncio's SSL state (a 256 KiB buffer) forever;
about a thousand of them exhaust agentd's descriptors, and then the *local* socket's accept
fails too. So this listener accepts TCP itself and:

- keeps at most ``max_connections`` open (handshaking or served); one beyond that is closed
  at once, counted, and logged at most once per ``log_interval``;
- gives each connection ``handshake_timeout`` seconds from accept to a finished handshake,
  and waits for its first byte before allocating any TLS state;
- when accept itself fails (out of descriptors: EMFILE), counts it, logs once per interval
  and pauses accepting briefly, instead of a traceback per attempt;
- returns freed memory to the OS once a burst of connections has drained (glibc keeps it).

``default_max_connections`` keeps the cap well below the process's descriptor limit, so
the local socket, subprocess pipes and netlink always have descriptors left.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import errno
import logging
import resource
import socket
import ssl
import time
from collections.abc import Callable, Coroutine
from typing import Any

from agent.api.metrics import ConnectionCounters

log = logging.getLogger("agent.fleet.listener")

HANDSHAKE_TIMEOUT = 5.0
MAX_CONNECTIONS = 256
LOG_INTERVAL = 60.0
ACCEPT_PAUSE = 0.5
PEER_GONE = frozenset({errno.ECONNABORTED, errno.ECONNRESET, errno.EPROTO})
# A burst bigger than the kernel's accept queue is partly dropped in the kernel (with syncookies,
# silently): the peer believes it is connected, agentd never sees or counts it. A queued
# connection costs agentd nothing, so let the queue hold a burst (the kernel caps it at somaxconn).
BACKLOG = 1024
TRIM_AFTER = 64  # connections since the last trim that make a drained burst worth trimming

ProtocolFactory = Callable[[], asyncio.Protocol]


def max_connections_for(nofile_soft_limit: int) -> int:
    """MAX_CONNECTIONS, or a quarter of the descriptor limit when that is lower."""
    if nofile_soft_limit == resource.RLIM_INFINITY:
        return MAX_CONNECTIONS
    return max(4, min(MAX_CONNECTIONS, nofile_soft_limit // 4))


def default_max_connections() -> int:
    return max_connections_for(resource.getrlimit(resource.RLIMIT_NOFILE)[0])


def _malloc_trim() -> Callable[[], None]:
    """glibc's malloc_trim(0): give free heap pages back to the OS (a no-op elsewhere)."""
    try:
        fn = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        return lambda: None
    fn.argtypes, fn.restype = [ctypes.c_size_t], ctypes.c_int

    def trim() -> None:
        fn(0)

    return trim


class _Throttled:
    """log.warning at most once per interval per kind, saying how many were not logged."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._last: dict[str, float] = {}
        self._quiet: dict[str, int] = {}

    def warn(self, kind: str, message: str) -> None:
        now = time.monotonic()
        last = self._last.get(kind)
        if last is not None and now - last < self.interval:
            self._quiet[kind] = self._quiet.get(kind, 0) + 1
            return
        quiet = self._quiet.pop(kind, 0)
        self._last[kind] = now
        more = f" ({quiet} more like it in the last {now - last:.0f}s)" if quiet and last is not None else ""
        log.warning("remote API: %s%s", message, more)


class _Tracked(asyncio.Protocol):
    """The served protocol (aiohttp's), plus giving the connection's slot back when it ends."""

    def __init__(self, inner: asyncio.Protocol, release: Callable[[], None]) -> None:
        self.inner = inner
        self.release = release

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self.release()
        self.inner.connection_lost(exc)


class GuardedTLSListener:
    def __init__(
        self,
        factory: ProtocolFactory,
        tls: ssl.SSLContext,
        counters: ConnectionCounters,
        *,
        max_connections: int | None = None,
        handshake_timeout: float = HANDSHAKE_TIMEOUT,
        log_interval: float = LOG_INTERVAL,
        backlog: int = BACKLOG,
    ) -> None:
        self.factory = factory
        self.tls = tls
        self.counters = counters
        self.max_connections = max_connections or default_max_connections()
        self.handshake_timeout = handshake_timeout
        self.backlog = backlog
        self._log = _Throttled(log_interval)
        self._trim = _malloc_trim()
        self._since_trim = 0
        self._socks: list[socket.socket] = []
        self._tasks: set[asyncio.Task[None]] = set()
        counters.limit = self.max_connections

    @property
    def ports(self) -> list[int]:
        return [int(s.getsockname()[1]) for s in self._socks]

    async def start(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        try:
            for family, kind, proto, _, addr in dict.fromkeys(infos):
                sock = socket.socket(family, kind, proto)
                self._socks.append(sock)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                sock.bind(addr)
                sock.listen(self.backlog)
                sock.setblocking(False)
        except OSError:
            await self.stop()
            raise
        for sock in self._socks:
            self._spawn(self._accept_loop(sock))

    async def stop(self) -> None:
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for sock in self._socks:
            sock.close()
        self._socks.clear()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _accept_loop(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, _ = await loop.sock_accept(sock)
            except OSError as exc:
                if exc.errno in PEER_GONE:
                    continue  # the peer gave up before we accepted it
                self.counters.accept_errors += 1  # EMFILE and the like: pause, do not spin
                self._log.warn("accept", f"accept failed ({exc.strerror}); pausing {ACCEPT_PAUSE:g}s")
                await asyncio.sleep(ACCEPT_PAUSE)
                continue
            if self.counters.active >= self.max_connections:
                conn.close()
                self.counters.over_limit += 1
                self._log.warn("limit", f"{self.max_connections} connections open: closed a new one")
                continue
            self.counters.active += 1
            self.counters.accepted += 1
            self._since_trim += 1
            self._spawn(self._handshake(conn))

    async def _handshake(self, conn: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self._released()

        try:
            async with asyncio.timeout(self.handshake_timeout):
                await _readable(loop, conn)  # no TLS state for a peer that sends nothing
                await loop.connect_accepted_socket(
                    lambda: _Tracked(self.factory(), release),
                    conn,
                    ssl=self.tls,
                    ssl_handshake_timeout=self.handshake_timeout + 1,  # ours fires first
                )
        except TimeoutError:
            self.counters.handshake_timeouts += 1
        except OSError:  # ssl.SSLError included: no certificate, a stranger's, a reset
            self.counters.handshake_failures += 1
        except asyncio.CancelledError:  # the listener stops
            conn.close()
            release()
            raise
        else:
            return  # served: _Tracked gives the slot back when the connection ends
        conn.close()
        release()

    def _released(self) -> None:
        self.counters.active -= 1
        if self.counters.active == 0 and self._since_trim >= TRIM_AFTER:
            self._since_trim = 0
            self._trim()


async def _readable(loop: asyncio.AbstractEventLoop, conn: socket.socket) -> None:
    ready: asyncio.Future[None] = loop.create_future()
    fd = conn.fileno()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(fd, wake)
    try:
        await ready
    finally:
        loop.remove_reader(fd)
