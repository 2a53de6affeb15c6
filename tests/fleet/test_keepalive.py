"""Heartbeats ride one kept-alive TLS connection: the registrar's CPU per heartbeat is mostly the
handshake (bench/fleet_bench.py), so a box must not open a new connection every minute.

Against a real registrar on loopback; the connection is read from the OS (psutil), not from aiohttp."""

from __future__ import annotations

import os

import psutil

from agent.fleet.est_client import pinned_context
from agent.fleet.transport import AiohttpTransport

from .harness import RegistrarHandle


def client_ports(port: int) -> set[int]:
    """Local ports of this process's established TCP connections to the registrar."""
    conns = psutil.Process(os.getpid()).net_connections(kind="tcp")
    return {c.laddr.port for c in conns if c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED}


async def test_calls_reuse_one_tls_connection_and_close_with_the_transport(registrar: RegistrarHandle) -> None:
    transport = AiohttpTransport()
    tls = pinned_context(registrar.reg.ca.cert)
    seen: list[set[int]] = []
    for _ in range(3):
        resp = await transport.request("GET", f"{registrar.url}/.well-known/est/cacerts", ssl_context=tls)
        assert resp.status == 200
        seen.append(client_ports(registrar.port))
    assert len(seen[0]) == 1 and seen[0] == seen[1] == seen[2]  # one connection, kept between calls
    await transport.close()
    assert client_ports(registrar.port) == set()


async def test_a_connection_the_registrar_closed_is_replaced_without_an_error(registrar: RegistrarHandle) -> None:
    transport = AiohttpTransport()
    tls = pinned_context(registrar.reg.ca.cert)
    url = f"{registrar.url}/.well-known/est/cacerts"
    assert (await transport.request("GET", url, ssl_context=tls)).status == 200
    await registrar.stop()  # the registrar restarts: kept connections are gone
    await registrar.start()
    assert (await transport.request("GET", url, ssl_context=tls)).status == 200
    await transport.close()
