"""The remote agent API over mTLS: roles from the client certificate, CRL, reload on renewal."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from cryptography import x509

from agent.api.mtls import require_role
from agent.context import AgentContext
from agent.fleet.remote import RemoteApiController
from agent.registrar.ca import CertificateAuthority

from .harness import (
    FAST,
    ClientCert,
    RegistrarHandle,
    box_config,
    client_cert,
    cond,
    free_port,
    make_box,
    new_registrar,
    wait_for,
)


@dataclass
class Box:
    ctx: AgentContext
    port: int
    node_id: str


def make_app() -> web.Application:
    async def get_thing(request: web.Request) -> web.Response:
        return web.json_response({"thing": 1})

    async def post_action(request: web.Request) -> web.Response:
        return web.json_response({"done": True})

    app = web.Application(middlewares=[require_role])
    app.router.add_get("/v1/thing", get_thing)
    app.router.add_post("/v1/action", post_action)
    return app


@contextlib.asynccontextmanager
async def start_box(
    handle: RegistrarHandle,
    root: Path,
    run_controller,
    machine_id: str,
    app: Callable[[AgentContext], web.Application] = lambda ctx: make_app(),
) -> AsyncIterator[Box]:
    port = free_port()
    cfg = box_config(handle.url, handle.pin, handle.token(), remote_listen=f"127.0.0.1:{port}", heartbeat=0.1)
    ctx = make_box(root, cfg, machine_id)
    runner = web.AppRunner(app(ctx))
    await runner.setup()
    run_controller(ctx)
    remote = asyncio.create_task(RemoteApiController(ctx, runner, poll_interval=0.05).run())
    try:
        await wait_for(
            lambda: cond(ctx, "RemoteApiListening") == ("True", "Listening"),
            what="remote API",
            explain=lambda: ctx.board.conditions(),
        )
        # the registrar knows where to reach the box once a heartbeat carried its API port and address
        await wait_for(
            lambda: any(n.api_port == port and n.addresses for n in handle.reg.registry.list_nodes()),
            what="the registrar to record the box's remote API",
            explain=lambda: handle.reg.registry.list_nodes(),
        )
        node = next(n for n in handle.reg.registry.list_nodes() if n.api_port == port)
        yield Box(ctx, port, node.node_id)
    finally:
        remote.cancel()
        await asyncio.gather(remote, return_exceptions=True)
        await runner.cleanup()


@pytest.fixture
async def box(registrar, run_controller, tmp_path) -> AsyncIterator[Box]:
    async with start_box(registrar, tmp_path / "box", run_controller, "e" * 32) as b:
        yield b


def tls(cc: ClientCert | None, ca: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(ca))
    ctx.check_hostname = False  # the box is reached by address; its chain is still verified
    if cc is not None:
        ctx.load_cert_chain(cc.cert, cc.key)
    return ctx


async def call(box: Box, cc: ClientCert | None, ca: Path, method: str = "GET", path: str = "/v1/thing") -> int | str:
    """The HTTP status, or 'refused' when the TLS handshake did not let us in."""
    try:
        async with (
            aiohttp.ClientSession() as s,
            s.request(method, f"https://127.0.0.1:{box.port}{path}", ssl=tls(cc, ca)) as r,
        ):
            await r.read()
            return r.status
    except (aiohttp.ClientError, ssl.SSLError, ConnectionError):
        return "refused"


async def served_serial(port: int, cc: ClientCert, ca: Path) -> int:
    """Serial of the certificate the box presents in a fresh handshake."""
    _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=tls(cc, ca))
    der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    writer.close()
    return x509.load_der_x509_certificate(der).serial_number


async def test_roles_are_enforced_by_method(box, registrar, tmp_path):
    ca = registrar.state_dir / "ca.pem"
    reader = client_cert(registrar, tmp_path / "r", "fleet:reader")
    operator = client_cert(registrar, tmp_path / "o", "fleet:operator")
    admin = client_cert(registrar, tmp_path / "a", "fleet:admin")
    node = client_cert(registrar, tmp_path / "n", "fleet:node")
    assert await call(box, reader, ca) == 200
    assert await call(box, reader, ca, "POST", "/v1/action") == 403  # a reader calling an operator route
    assert await call(box, operator, ca, "POST", "/v1/action") == 200
    assert await call(box, admin, ca, "POST", "/v1/action") == 200
    assert await call(box, node, ca) == 403


async def test_strangers_do_not_get_in(box, registrar, tmp_path):
    ca = registrar.state_dir / "ca.pem"
    other_ca = CertificateAuthority.create("another fleet")
    foreign = client_cert(registrar, tmp_path / "f", "fleet:admin", ca=other_ca)
    expired = client_cert(registrar, tmp_path / "x", "fleet:admin", expired=True)
    assert await call(box, None, ca) == "refused"  # no client certificate
    assert await call(box, foreign, ca) == "refused"  # a certificate of another CA
    assert await call(box, expired, ca) == "refused"  # an expired certificate


async def test_revocation_cuts_off_the_remote_api(box, registrar, tmp_path):
    ca = registrar.state_dir / "ca.pem"
    admin = client_cert(registrar, tmp_path / "a", "fleet:admin")
    keep = client_cert(registrar, tmp_path / "k", "fleet:reader", name="bob")
    assert await call(box, admin, ca) == 200
    assert registrar.reg.registry.revoke_cert(admin.serial)

    # the box learns the new CRL number at its next heartbeat, fetches the CRL, reloads it
    async def refused() -> bool:
        return await call(box, admin, ca) in ("refused", 403)

    await wait_for(refused, timeout=5, what="revoked certificate refused")
    assert await call(box, keep, ca) == 200
    assert cond(box.ctx, "RemoteApiListening") == ("True", "Listening")


async def test_renewed_certificate_is_served_without_dropping_the_listener(tmp_path, run_controller):
    handle = new_registrar(tmp_path / "reg", replace(FAST, cert_lifetime=timedelta(seconds=3)))
    await handle.start()
    try:
        async with start_box(handle, tmp_path / "box", run_controller, "f" * 32) as b:
            reader = client_cert(handle, tmp_path / "r", "fleet:reader")
            ca = handle.state_dir / "ca.pem"
            first = await served_serial(b.port, reader, ca)
            # keep one connection open across the renewal: the listener must not drop it
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=tls(reader, ca))) as s:
                async with s.get(f"https://127.0.0.1:{b.port}/v1/thing") as r:
                    assert r.status == 200

                async def renewed() -> bool:
                    return await served_serial(b.port, reader, ca) != first

                await wait_for(renewed, timeout=8, what="renewed certificate served")
                async with s.get(f"https://127.0.0.1:{b.port}/v1/thing") as r:
                    assert r.status == 200
            node = handle.reg.registry.get_node(b.node_id)
            assert node is not None and int(node.serial, 16) == await served_serial(b.port, reader, ca)
    finally:
        await handle.stop()


async def test_unix_socket_requests_pass_without_certificates(tmp_path):
    runner = web.AppRunner(make_app())
    await runner.setup()
    sock = tmp_path / "agent.sock"
    site = web.UnixSite(runner, str(sock))
    await site.start()
    try:
        async with (
            aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(sock))) as s,
            s.post("http://localhost/v1/action") as r,
        ):
            assert r.status == 200
    finally:
        await runner.cleanup()


async def test_plain_tcp_without_tls_is_refused(tmp_path):
    runner = web.AppRunner(make_app())
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{port}/v1/thing") as r:
            assert r.status == 403
            assert r.content_type == "application/problem+json"
    finally:
        await runner.cleanup()


@pytest.mark.skipif(not shutil.which("curl"), reason="needs curl")
async def test_roles_through_curl(box, registrar, tmp_path):
    ca = registrar.state_dir / "ca.pem"
    reader = client_cert(registrar, tmp_path / "r", "fleet:reader")
    operator = client_cert(registrar, tmp_path / "o", "fleet:operator")
    url = f"https://{box.node_id}:{box.port}"
    base = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", str(ca),
            "--resolve", f"{box.node_id}:{box.port}:127.0.0.1"]  # fmt: skip

    async def curl(*args: str) -> str:
        proc = await asyncio.create_subprocess_exec(*base, *args, stdout=asyncio.subprocess.PIPE)
        out, _ = await proc.communicate()
        return out.decode()

    as_reader = ["--cert", str(reader.cert), "--key", str(reader.key)]
    as_operator = ["--cert", str(operator.cert), "--key", str(operator.key)]
    # the box's certificate names its node id: curl verifies it against the fleet CA without -k
    assert await curl(*as_reader, f"{url}/v1/thing") == "200"
    assert await curl(*as_reader, "-X", "POST", f"{url}/v1/action") == "403"
    assert await curl(*as_operator, "-X", "POST", f"{url}/v1/action") == "200"
    assert await curl(f"{url}/v1/thing") == "000"  # no client certificate: no connection


def fleet_cert_without_client_auth(handle: RegistrarHandle, out: Path, usages: list[x509.ObjectIdentifier] | None):
    """A fleet:admin certificate of the fleet CA whose EKU lacks clientAuth (None: no EKU at all)."""
    from datetime import UTC, datetime

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    from agent.registrar.ca import cert_pem, write_key

    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "fleet:admin"),
                      x509.NameAttribute(NameOID.COMMON_NAME, "mallory")])  # fmt: skip
    builder = (
        x509.CertificateBuilder().subject_name(name).issuer_name(handle.reg.ca.cert.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1)).not_valid_after(now + timedelta(hours=1))
    )  # fmt: skip
    if usages is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    cert = builder.sign(handle.reg.ca.key, hashes.SHA256())
    out.mkdir(parents=True)
    write_key(out / "client.key", key)
    (out / "client.pem").write_bytes(cert_pem(cert))
    return ClientCert(out / "client.pem", out / "client.key", handle.state_dir / "ca.pem", cert.serial_number)


async def test_certificates_not_made_for_client_auth_are_refused(box, registrar, tmp_path):
    from cryptography.x509.oid import ExtendedKeyUsageOID

    ca = registrar.state_dir / "ca.pem"
    no_eku = fleet_cert_without_client_auth(registrar, tmp_path / "none", None)
    server_only = fleet_cert_without_client_auth(registrar, tmp_path / "srv", [ExtendedKeyUsageOID.SERVER_AUTH])
    for cc in (no_eku, server_only):
        assert await call(box, cc, ca, "POST", "/v1/action") in ("refused", 403)
        assert await call(box, cc, ca) in ("refused", 403)
    assert await call(box, client_cert(registrar, tmp_path / "ok", "fleet:admin"), ca, "POST", "/v1/action") == 200
