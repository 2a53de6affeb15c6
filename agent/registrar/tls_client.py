"""A small HTTPS client for the fleet poll that keeps each box's TLS session and connection.

aiohttp cannot hand a saved TLS session to a new connection; ``SSLContext.wrap_bio(..., session=)``
can. Each :class:`BoxConnection` is one asyncio protocol driving an ``ssl.SSLObject`` over two
``MemoryBIO``s and speaking HTTP/1.1 GET with keep-alive. :class:`SessionClient` keeps, per node id,
the open connection (the next sweep asks over it: no handshake at all) and the newest
``ssl.SSLSession`` (TLS 1.3 tickets arrive after the handshake, so it is read after each answer):
when the box has closed the connection, the next one resumes that session, an abbreviated handshake
without certificates or signatures, instead of a full one.

A session is only ever offered to the node id it was made with (``server_hostname`` is checked on
the full handshake that made it); a box that does not accept it (restarted, its ticket key gone)
gets a full handshake with every check. The box still knows the client certificate on a resumed
session (the session carries it), so its role and revocation checks hold (tests/fleet/test_poll_sessions.py).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass

from agent.errors import BoxAnswerError

READ_CHUNK = 256 * 1024
MAX_HEADER = 64 * 1024
MAX_BODY = 4 << 20


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    resumed: bool  # this connection's handshake resumed a saved session
    reused: bool  # asked over a connection kept from before (no handshake)


class BoxConnection(asyncio.Protocol):
    def __init__(self, ctx: ssl.SSLContext, server_hostname: str, session: ssl.SSLSession | None) -> None:
        self._in, self._out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = ctx.wrap_bio(self._in, self._out, server_hostname=server_hostname, session=session)
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.answers = 0
        self._buf = bytearray()
        self._ready = asyncio.get_running_loop().create_future()
        self._wake: asyncio.Future[None] | None = None
        self._error: Exception | None = None

    # -- asyncio.Protocol -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self._step()

    def data_received(self, data: bytes) -> None:
        self._in.write(data)
        self._step()

    def eof_received(self) -> bool | None:
        self._in.write_eof()
        self._fail(BoxAnswerError("the box closed the connection"))
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(BoxAnswerError(f"connection lost: {exc}" if exc else "connection closed"))

    # -- TLS --------------------------------------------------------------------------------
    def _step(self) -> None:
        try:
            if not self._ready.done():
                try:
                    self.tls.do_handshake()
                except ssl.SSLWantReadError:
                    self._flush()
                    return
                self._ready.set_result(None)
            while True:
                try:
                    chunk = self.tls.read(READ_CHUNK)
                except ssl.SSLWantReadError:
                    break
                if not chunk:  # close_notify
                    self._fail(BoxAnswerError("the box closed the connection"))
                    break
                self._buf += chunk
        except (ssl.SSLError, ssl.CertificateError) as exc:
            self._fail(exc)
        self._flush()
        self._notify()

    def _flush(self) -> None:
        data = self._out.read()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def _notify(self) -> None:
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    def _fail(self, exc: Exception) -> None:
        if self._error is None:
            self._error = exc
        self.closed = True
        if not self._ready.done():
            self._ready.set_exception(exc)
        self._notify()
        if self.transport is not None:
            self.transport.close()

    async def _more(self) -> None:
        if self._error is not None:
            raise self._error
        self._wake = asyncio.get_running_loop().create_future()
        await self._wake

    # -- HTTP/1.1 ---------------------------------------------------------------------------
    async def handshake(self) -> None:
        await self._ready

    async def get(self, path: str, host: str) -> tuple[int, bytes]:
        """GET ``path``; the status and the body (Content-Length or chunked). The connection stays
        open unless the box says ``Connection: close``."""
        name = f"[{host}]" if ":" in host else host  # an IPv6 address
        request = f"GET {path} HTTP/1.1\r\nHost: {name}\r\nAccept: application/json\r\n\r\n"
        try:
            self.tls.write(request.encode())
        except ssl.SSLError as exc:
            self._fail(exc)
            raise
        self._flush()
        while (end := self._buf.find(b"\r\n\r\n")) < 0:
            if len(self._buf) > MAX_HEADER:
                raise BoxAnswerError("answer headers too long")
            await self._more()
        head = bytes(self._buf[:end]).decode("latin-1").split("\r\n")
        del self._buf[: end + 4]
        parts = head[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise BoxAnswerError(f"not an HTTP/1.1 answer: {head[0][:80]!r}")
        headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in head[1:])}
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = await self._chunked()
        else:
            length = int(headers.get("content-length", "0"))
            if length > MAX_BODY:
                raise BoxAnswerError(f"answer of {length} bytes is too big")
            while len(self._buf) < length:
                await self._more()
            body = bytes(self._buf[:length])
            del self._buf[:length]
        self.answers += 1
        if headers.get("connection", "").lower() == "close":
            self.close()
        return int(parts[1]), body

    async def _chunked(self) -> bytes:
        body = bytearray()
        while True:
            while (eol := self._buf.find(b"\r\n")) < 0:
                await self._more()
            size = int(bytes(self._buf[:eol]).split(b";")[0], 16)
            while len(self._buf) < eol + 2 + size + 2:
                await self._more()
            body += self._buf[eol + 2 : eol + 2 + size]
            del self._buf[: eol + 2 + size + 2]
            if len(body) > MAX_BODY:
                raise BoxAnswerError("answer too big")
            if size == 0:
                return bytes(body)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class SessionClient:
    """One open connection and one TLS session per node id; ``keep`` False closes the connection after
    each answer (resumption only), ``resume`` False never offers a saved session (full handshakes)."""

    def __init__(self, ctx: ssl.SSLContext, *, keep: bool = True, resume: bool = True) -> None:
        self.ctx = ctx
        self.keep = keep
        self.resume = resume
        self.sessions: dict[str, ssl.SSLSession] = {}
        self.conns: dict[str, BoxConnection] = {}

    async def get(self, node_id: str, host: str, port: int, path: str, timeout: float) -> Answer:
        async with asyncio.timeout(timeout):
            conn = self.conns.pop(node_id, None)
            if conn is not None and not conn.closed:
                try:
                    status, body = await conn.get(path, host)
                    return self._keep(node_id, conn, Answer(status, body, conn.tls.session_reused, reused=True))
                except (BoxAnswerError, OSError):  # ssl.SSLError included
                    conn.close()  # the box closed it meanwhile (its keep-alive ran out): a new one
            conn = await self._connect(node_id, host, port)
            try:
                status, body = await conn.get(path, host)
            except BaseException:
                conn.close()
                raise
            return self._keep(node_id, conn, Answer(status, body, conn.tls.session_reused, reused=False))

    async def _connect(self, node_id: str, host: str, port: int) -> BoxConnection:
        loop = asyncio.get_running_loop()
        session = self.sessions.get(node_id) if self.resume else None
        _, conn = await loop.create_connection(lambda: BoxConnection(self.ctx, node_id, session), host, port)
        try:
            await conn.handshake()
        except BaseException:
            conn.close()
            raise
        return conn

    def _keep(self, node_id: str, conn: BoxConnection, answer: Answer) -> Answer:
        if self.resume and not answer.reused and self._stale(node_id):
            # read once per handshake, and only when needed: CPython copies the session (with the
            # box's certificate) on every read of SSLObject.session, about a third of a millisecond
            session = conn.tls.session  # its ticket arrived with the answer
            if session is not None:
                self.sessions[node_id] = session
        if self.keep and not conn.closed:
            self.conns[node_id] = conn
        else:
            conn.close()
        return answer

    def _stale(self, node_id: str) -> bool:
        """No session for the node yet, or one past half its lifetime (a ticket is good for many resumptions)."""
        held = self.sessions.get(node_id)
        return held is None or time.time() > held.time + held.timeout / 2

    def close(self) -> None:
        for conn in self.conns.values():
            conn.close()
        self.conns.clear()

    def forget(self, keep: set[str]) -> None:
        """Drop the sessions and connections of nodes no longer polled here (another replica's now)."""
        for node_id in [n for n in self.conns if n not in keep]:
            self.conns.pop(node_id).close()
        for node_id in [n for n in self.sessions if n not in keep]:
            del self.sessions[node_id]
