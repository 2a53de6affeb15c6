"""The remote listener under connections that never finish a TLS handshake: the real listener
with the real aiohttp app runner, real sockets and real TLS (no registrar needed: the box's
identity is written the way enrollment leaves it), and a process out of descriptors."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import logging
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web

from agent.api.metrics import ConnectionCounters
from agent.api.mtls import require_role, server_context
from agent.fleet.listener import GuardedTLSListener

from .storm import Fleet, client_context, closed_by_peer, give_identity, half_open, remote_get


@dataclass
class Served:
    listener: GuardedTLSListener
    counters: ConnectionCounters
    port: int
    fleet: Fleet


@contextlib.asynccontextmanager
async def serving(tmp_path: Path, **limits: float) -> AsyncIterator[Served]:
    async def thing(request: web.Request) -> web.Response:
        return web.json_response({"thing": 1})

    app = web.Application(middlewares=[require_role])
    app.router.add_get("/v1/status", thing)
    runner = web.AppRunner(app)
    await runner.setup()
    ident = tmp_path / "identity"
    fleet = give_identity(ident)
    tls = server_context(ident / "cert.pem", ident / "key.pem", ident / "ca.pem")
    counters = ConnectionCounters()
    assert runner.server is not None
    listener = GuardedTLSListener(runner.server, tls, counters, **limits)  # type: ignore[arg-type]
    await listener.start("127.0.0.1", 0)
    try:
        yield Served(listener, counters, listener.ports[0], fleet)
    finally:
        await listener.stop()
        await runner.cleanup()


async def until(predicate: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


async def test_connections_beyond_the_cap_are_closed_at_once_counted_and_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "agent.fleet.listener")
    async with serving(tmp_path, max_connections=3, handshake_timeout=60) as srv:
        tls = client_context(srv.fleet, tmp_path / "client")
        with half_open(srv.port, 10) as socks:
            c = srv.counters
            await until(lambda: c.accepted + c.over_limit == 10, "every connection taken on or dropped")
            assert (c.active, c.accepted, c.over_limit, c.limit) == (3, 3, 7, 3)
            # the peers see it: seven closed by the agent, three still waiting for their handshake
            await until(lambda: sum(map(closed_by_peer, socks)) == 7, "seven connections closed by the agent")
            await asyncio.sleep(0.3)
            assert sum(map(closed_by_peer, socks)) == 7
            # while the storm holds every slot, a real client is turned away too (and counted)
            with pytest.raises((ConnectionError, OSError, http.client.HTTPException)):
                await asyncio.to_thread(remote_get, srv.port, tls)
            assert c.over_limit == 8
        # the storm ends: its slots come back and a fleet client gets through
        await until(lambda: srv.counters.active == 0, "the storm's slots given back")
        assert await asyncio.to_thread(remote_get, srv.port, tls) == 200
    warnings = [r for r in caplog.records if "connections open" in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in caplog.records]


async def test_a_connection_without_a_handshake_is_closed_after_the_deadline(tmp_path: Path) -> None:
    async with serving(tmp_path, max_connections=8, handshake_timeout=0.5) as srv:
        tls = client_context(srv.fleet, tmp_path / "client")
        with half_open(srv.port, 2) as socks:
            await until(lambda: srv.counters.accepted == 2, "both accepted")
            assert not any(map(closed_by_peer, socks))
            await until(lambda: all(map(closed_by_peer, socks)), "the agent closing both at the deadline")
        assert (srv.counters.handshake_timeouts, srv.counters.active) == (2, 0)
        # the deadline is for the handshake only: an idle keep-alive connection outlives it
        conn = http.client.HTTPSConnection("127.0.0.1", srv.port, context=tls, timeout=10)
        try:

            def two_requests_a_second_apart() -> tuple[int, int]:
                conn.request("GET", "/v1/status")
                first = conn.getresponse()
                first.read()
                sock = conn.sock
                time.sleep(1.0)
                conn.request("GET", "/v1/status")
                second = conn.getresponse()
                second.read()
                assert conn.sock is sock  # the same connection
                return first.status, second.status

            assert await asyncio.to_thread(two_requests_a_second_apart) == (200, 200)
        finally:
            conn.close()
        assert srv.counters.handshake_timeouts == 2


async def test_garbage_and_certificateless_clients_fail_the_handshake_and_give_their_slot_back(
    tmp_path: Path,
) -> None:
    def plain_http(port: int) -> bytes:  # plain HTTP to the TLS port: whatever comes back, then EOF
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            got = b""
            with contextlib.suppress(ConnectionResetError):
                while chunk := s.recv(4096):
                    got += chunk
            return got

    async with serving(tmp_path, max_connections=2, handshake_timeout=5) as srv:
        assert b"HTTP/1.1 200" not in await asyncio.to_thread(plain_http, srv.port)
        no_cert = client_context(srv.fleet, tmp_path / "c")
        bare = type(no_cert)(no_cert.protocol)
        bare.load_verify_locations(cafile=str(srv.fleet.ca_pem))
        bare.check_hostname = False
        with pytest.raises((OSError, http.client.HTTPException)):
            await asyncio.to_thread(remote_get, srv.port, bare)
        await until(lambda: srv.counters.handshake_failures == 2, "two failed handshakes counted")
        await until(lambda: srv.counters.active == 0, "their slots given back")
        assert await asyncio.to_thread(remote_get, srv.port, no_cert) == 200


OUT_OF_FDS = """
import asyncio, dataclasses, json, logging, resource, sys
from aiohttp import web
from agent.api.metrics import ConnectionCounters
from agent.api.mtls import server_context
from agent.fleet.listener import GuardedTLSListener

async def main(ident: str) -> None:
    logging.basicConfig(level=logging.WARNING)
    runner = web.AppRunner(web.Application())
    await runner.setup()
    tls = server_context(f"{ident}/cert.pem", f"{ident}/key.pem", f"{ident}/ca.pem")
    counters = ConnectionCounters()
    # a cap above the descriptor limit (what default_max_connections prevents): accept hits EMFILE
    listener = GuardedTLSListener(runner.server, tls, counters, max_connections=1000, handshake_timeout=2)
    resource.setrlimit(resource.RLIMIT_NOFILE, (48, 48))
    await listener.start("127.0.0.1", 0)
    print(listener.ports[0], flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while await reader.readline():
        print(json.dumps(dataclasses.asdict(counters)), flush=True)

asyncio.run(main(sys.argv[1]))
"""


def test_out_of_descriptors_in_accept_pauses_counts_and_logs_once_then_recovers(tmp_path: Path) -> None:
    give_identity(tmp_path / "identity")
    proc = subprocess.Popen(
        [sys.executable, "-c", OUT_OF_FDS, str(tmp_path / "identity")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None

    def counters() -> dict[str, int]:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write("\n")
        proc.stdin.flush()
        return dict(json.loads(proc.stdout.readline()))

    try:
        port = int(proc.stdout.readline())
        with half_open(port, 80) as socks:
            deadline = time.monotonic() + 30
            while counters()["accept_errors"] == 0:
                assert time.monotonic() < deadline, counters()
                time.sleep(0.05)
            # the connections it could not accept wait in the kernel's queue and are served later
            while not all(map(closed_by_peer, socks)):
                assert time.monotonic() < deadline + 30, counters()
                time.sleep(0.05)
            final = counters()
    finally:
        proc.kill()
        _, stderr = proc.communicate()
    assert final["handshake_timeouts"] == final["accepted"] == 80, final
    assert final["active"] == 0 and final["accept_errors"] >= 1, final
    assert "Traceback" not in stderr, stderr[-3000:]
    assert stderr.count("accept failed") == 1, stderr[-3000:]
