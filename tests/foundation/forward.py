"""A TCP listener on 127.0.0.1 that forwards every connection to a unix socket.

Tools that speak HTTP only over TCP (schemathesis, say) reach the agent's
unix-socket API through it; each side is a real socket, bytes pass unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


@contextlib.contextmanager
def tcp_to_unix(sock: Path) -> Iterator[int]:
    """``with tcp_to_unix(path) as port:`` serves 127.0.0.1:port until the block ends."""
    loop = asyncio.new_event_loop()
    started = threading.Event()
    port = 0
    stop: asyncio.Event | None = None

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            agent_r, agent_w = await asyncio.open_unix_connection(str(sock))
        except OSError:
            client_w.close()
            return
        await asyncio.gather(_pipe(client_r, agent_w), _pipe(agent_r, client_w))

    async def main() -> None:
        nonlocal port, stop
        stop = asyncio.Event()
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        started.set()
        async with server:
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    started.wait(10)
    try:
        yield port
    finally:
        assert stop is not None
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
