"""The poll's HTTP/1.1 client against a real aiohttp server over mTLS on loopback: chunked answers,
``Connection: close``, a box that hangs up while kept, and a certificate for another name."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from agent.registrar.ca import CertificateAuthority, cert_pem, write_key
from agent.registrar.identity import issue_client
from agent.registrar.poll import client_context
from agent.registrar.tls_client import SessionClient

BIG = b"x" * 300_000  # more than one TLS record and one read
KEEP_ALIVE = 0.5  # the box closes a connection idle this long


@pytest.fixture
async def box(tmp_path: Path) -> AsyncIterator[tuple[int, Path, list[str]]]:
    ca = CertificateAuthority.create()
    issue_client(ca, "fleet:reader", "poller", tmp_path / "poller", timedelta(hours=1))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = ca.issue(key.public_key(), common_name="box-1", role="fleet:node", lifetime=timedelta(hours=1),
                    names=[x509.DNSName("box-1")], server=True)  # fmt: skip
    write_key(tmp_path / "key.pem", key)
    (tmp_path / "cert.pem").write_bytes(cert_pem(cert))
    (tmp_path / "ca.pem").write_bytes(cert_pem(ca.cert))
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(tmp_path / "ca.pem"))
    server.verify_mode = ssl.CERT_REQUIRED
    server.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    seen: list[str] = []

    async def chunked(request: web.Request) -> web.StreamResponse:
        seen.append("chunked")
        resp = web.StreamResponse()
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for part in (b'{"big": "', BIG, b'"}'):
            await resp.write(part)
        await resp.write_eof()
        return resp

    async def once(_request: web.Request) -> web.Response:
        seen.append("once")
        return web.json_response({"ok": True}, headers={"Connection": "close"})

    app = web.Application()
    app.add_routes([web.get("/chunked", chunked), web.get("/once", once)])
    runner = web.AppRunner(app, keepalive_timeout=KEEP_ALIVE)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server)
    await site.start()
    yield int(runner.addresses[0][1]), tmp_path / "poller", seen
    await runner.cleanup()


async def test_chunked_answers_are_read_whole_and_the_connection_is_kept(box: tuple[int, Path, list[str]]) -> None:
    port, client_dir, _ = box
    client = SessionClient(client_context(client_dir))
    first = await client.get("box-1", "127.0.0.1", port, "/chunked", 10)
    again = await client.get("box-1", "127.0.0.1", port, "/chunked", 10)
    assert first.status == again.status == 200 and first.body == b'{"big": "' + BIG + b'"}' == again.body
    assert (first.reused, again.reused) == (False, True)
    client.close()


async def test_connection_close_is_honoured_and_the_next_call_resumes(box: tuple[int, Path, list[str]]) -> None:
    port, client_dir, seen = box
    client = SessionClient(client_context(client_dir))
    first = await client.get("box-1", "127.0.0.1", port, "/once", 10)
    assert first.status == 200 and first.body == b'{"ok": true}' and "box-1" not in client.conns
    second = await client.get("box-1", "127.0.0.1", port, "/once", 10)
    assert (second.reused, second.resumed) == (False, True) and seen == ["once", "once"]


async def test_a_kept_connection_the_box_closed_is_replaced(box: tuple[int, Path, list[str]]) -> None:
    port, client_dir, _ = box
    client = SessionClient(client_context(client_dir))
    await client.get("box-1", "127.0.0.1", port, "/chunked", 10)
    assert "box-1" in client.conns
    await asyncio.sleep(KEEP_ALIVE * 3)  # the box's keep-alive runs out: it closes the idle connection
    answer = await client.get("box-1", "127.0.0.1", port, "/chunked", 10)
    assert answer.status == 200 and not answer.reused and answer.resumed


async def test_a_box_with_another_name_is_refused(box: tuple[int, Path, list[str]]) -> None:
    port, client_dir, seen = box
    client = SessionClient(client_context(client_dir))
    with pytest.raises(ssl.SSLCertVerificationError, match="box-2"):
        await client.get("box-2", "127.0.0.1", port, "/once", 10)
    assert seen == [] and client.sessions == {}
