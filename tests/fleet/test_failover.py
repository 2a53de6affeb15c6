"""fleet.url as a list of registrar replicas: the box fails over on connection errors, sticks with the
one that answers, names it in the status, and never passes over a replica with a foreign CA in silence.

Real registrars on 127.0.0.1; a dead port (connection refused) and a tiny server that accepts TCP and
closes at once stand in for replicas that are down.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from agent.cli.status_view import render_status
from agent.context import AgentContext
from agent.paths import Paths
from agent.registrar.ca import CertificateAuthority
from agent.registrar.service import Registrar
from agent.registrar.sqlite import SqliteRegistry
from tests.conftest import AgentProcess

from .harness import FAST, RegistrarHandle, box_config, cond, free_port, make_box, new_registrar, wait_for


@pytest.fixture
async def closer() -> AsyncIterator[int]:
    """A port that accepts TCP connections and closes them before any TLS."""

    async def hang_up(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    yield int(server.sockets[0].getsockname()[1])
    server.close()
    await server.wait_closed()


def fleet(ctx: AgentContext) -> dict:
    return ctx.board.sections().get("fleet", {})


def status_text(ctx: AgentContext) -> str:
    """What agentctl status prints for this box's status document."""
    doc = {"agent": {}, "health": "healthy", "sections": ctx.board.sections(), "conditions": []}
    return render_status(doc, color=False)


def reopened(handle: RegistrarHandle, port: int) -> RegistrarHandle:
    """The same registrar (CA, registry) served again from its state dir on another port."""
    state = handle.state_dir
    reg = Registrar(state, CertificateAuthority.load(state), SqliteRegistry(state / "registry.sqlite"), FAST)
    return RegistrarHandle(state, reg, port=port)


async def test_box_enrolls_via_the_live_replica_and_fails_over_without_a_restart(tmp_path, run_controller, closer):
    first = new_registrar(tmp_path / "reg")
    await first.start()
    dead = free_port()  # nobody listens there (yet)
    urls = [f"https://127.0.0.1:{dead}", f"https://127.0.0.1:{closer}", first.url]
    ctx = make_box(tmp_path / "box", box_config(urls, first.pin, first.token(), retry_max=0.4), "4" * 32)
    second: RegistrarHandle | None = None
    try:
        run_controller(ctx)
        await wait_for(lambda: cond(ctx, "Assigned") == ("True", "Assigned"), what="enrolled and assigned",
                       explain=lambda: fleet(ctx))  # fmt: skip
        node_id = fleet(ctx)["node_id"]
        # heartbeats reach the live replica, and what the box reports names it
        await wait_for(
            lambda: (first.reg.registry.get_node(node_id).status.get("sections", {}).get("fleet", {})
                     .get("registrar") == first.url),
            what="a heartbeat via the live replica",
        )  # fmt: skip
        section = fleet(ctx)
        assert section["registrar"] == first.url
        assert section["registrar_errors"][urls[0]] == "connection refused"
        assert urls[1] in section["registrar_errors"]
        line = next(x for x in status_text(ctx).splitlines() if x.strip().startswith("fleet"))
        assert f"enrolled via {first.url} (127.0.0.1:{dead}: connection refused, 127.0.0.1:{closer}: " in line

        # the live replica goes away; the same registrar comes up on the port that was dead
        seen = first.reg.registry.get_node(node_id).last_seen
        await first.stop()
        first.reg.registry.close()
        second = reopened(first, dead)
        await second.start()
        await wait_for(lambda: fleet(ctx).get("registrar") == urls[0], what="failing over to the first URL",
                       explain=lambda: fleet(ctx))  # fmt: skip
        await wait_for(lambda: second.reg.registry.get_node(node_id).last_seen > seen, what="a heartbeat via it")
        section = fleet(ctx)
        assert section["registrar_errors"].get(first.url) == "connection refused"
        assert urls[0] not in section["registrar_errors"]
        assert cond(ctx, "Enrolled") == ("True", "Enrolled")
        line = next(x for x in status_text(ctx).splitlines() if x.strip().startswith("fleet"))
        assert f"enrolled via {urls[0]} (" in line
        assert f"{first.url.removeprefix('https://')}: connection refused" in line
    finally:
        await first.stop()
        if second is not None:
            await second.stop()
            second.reg.registry.close()


async def test_a_replica_with_a_foreign_ca_is_reported_not_passed_over_silently(tmp_path, run_controller):
    good = new_registrar(tmp_path / "good")
    foreign = new_registrar(tmp_path / "foreign")  # another CA: what an impostor would show
    await good.start()
    await foreign.start()
    ctx = make_box(tmp_path / "box", box_config([foreign.url, good.url], good.pin, good.token()), "5" * 32)
    try:
        run_controller(ctx)
        await wait_for(lambda: cond(ctx, "ReplicasTrusted") == ("False", "PinMismatch"), what="the mismatch reported",
                       explain=lambda: fleet(ctx))  # fmt: skip
        assert cond(ctx, "Enrolled") == ("True", "Enrolled")
        assert fleet(ctx)["registrar"] == good.url
        assert fleet(ctx)["registrar_errors"] == {foreign.url: "CA pin mismatch"}
        c = ctx.board.condition("ReplicasTrusted")
        assert c is not None and c.severity == "error" and foreign.url in c.message
        assert ctx.board.degraded()  # shows as a problem, not as a note
        assert foreign.reg.registry.list_nodes() == []  # nothing was enrolled with the impostor
    finally:
        await good.stop()
        await foreign.stop()
        good.reg.registry.close()
        foreign.reg.registry.close()


async def test_when_every_replica_has_a_foreign_ca_enrollment_stops_with_pin_mismatch(tmp_path, run_controller):
    one, two = new_registrar(tmp_path / "one"), new_registrar(tmp_path / "two")
    await one.start()
    await two.start()
    pin = new_registrar(tmp_path / "fleet").pin
    ctx = make_box(tmp_path / "box", box_config([one.url, two.url], pin, "tok"), "6" * 32)
    try:
        run_controller(ctx)
        await wait_for(lambda: cond(ctx, "Enrolled") == ("False", "PinMismatch"), what="pin mismatch",
                       explain=lambda: fleet(ctx))  # fmt: skip
        message = ctx.board.condition("Enrolled").message
        assert one.url in message and two.url in message  # each replica named
        assert fleet(ctx)["registrar_errors"] == {one.url: "CA pin mismatch", two.url: "CA pin mismatch"}
    finally:
        for h in (one, two):
            await h.stop()
            h.reg.registry.close()


async def _answering(status: int, headers: dict[str, str], tls: RegistrarHandle) -> tuple[web.AppRunner, str]:
    """An HTTPS front (the fleet's serving certificate, as a load balancer would have) that answers
    every request with ``status``."""

    async def answer(_req: web.Request) -> web.Response:
        return web.json_response({"title": "upstream down"}, status=status, headers=headers)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls.reg.ssl_context(["localhost"]))
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"https://127.0.0.1:{port}"


@pytest.mark.parametrize(("status", "headers"), [(502, {}), (503, {}), (503, {"Retry-After": "120"}), (504, {})])
async def test_a_gateway_answering_502_503_504_is_failed_over(tmp_path, run_controller, status, headers):
    good = new_registrar(tmp_path / "good")
    await good.start()
    front, front_url = await _answering(status, headers, good)
    ctx = make_box(tmp_path / "box", box_config([front_url, good.url], good.pin, good.token()), "7" * 32)
    try:
        run_controller(ctx)
        await wait_for(lambda: cond(ctx, "Assigned") == ("True", "Assigned"), what="enrolled via the second URL",
                       explain=lambda: fleet(ctx))  # fmt: skip
        assert fleet(ctx)["registrar"] == good.url
        assert fleet(ctx)["registrar_errors"] == {front_url: f"answered {status}"}
    finally:
        await front.cleanup()
        await good.stop()
        good.reg.registry.close()


async def test_a_registrar_that_answers_500_is_not_failed_over(tmp_path, run_controller):
    """A 500 is an answer from a live registrar (a bug, a full disk): the box backs off and asks it again."""
    good = new_registrar(tmp_path / "good")
    await good.start()
    front, front_url = await _answering(500, {}, good)
    ctx = make_box(tmp_path / "box", box_config([front_url, good.url], good.pin, good.token()), "8" * 32)
    try:
        run_controller(ctx)
        await wait_for(lambda: "(attempt 3," in fleet(ctx).get("last_error", ""), what="three attempts",
                       explain=lambda: fleet(ctx))  # fmt: skip
        assert "500" in fleet(ctx)["last_error"]
        assert fleet(ctx)["registrar"] == front_url
        assert good.reg.registry.list_nodes() == []
    finally:
        await front.cleanup()
        await good.stop()
        good.reg.registry.close()


async def test_a_replica_that_never_answers_is_failed_over_after_the_request_timeout(tmp_path, run_controller):
    """A replica that takes the connection and then says nothing (a hung process, a black-holed route)."""
    good = new_registrar(tmp_path / "good")
    await good.start()
    hung: list[asyncio.StreamWriter] = []

    async def say_nothing(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        hung.append(w)

    silent = await asyncio.start_server(say_nothing, "127.0.0.1", 0)
    silent_url = f"https://127.0.0.1:{silent.sockets[0].getsockname()[1]}"
    ctx = make_box(tmp_path / "box", box_config([silent_url, good.url], good.pin, good.token()), "9" * 32)
    try:
        run_controller(ctx, request_timeout=0.5)
        await wait_for(lambda: cond(ctx, "Assigned") == ("True", "Assigned"), what="enrolled via the second URL",
                       explain=lambda: fleet(ctx))  # fmt: skip
        assert hung  # the silent replica was asked first
        assert fleet(ctx)["registrar"] == good.url
        assert fleet(ctx)["registrar_errors"] == {silent_url: "no answer within 0.5s"}
    finally:
        for w in hung:
            w.close()
        silent.close()
        await silent.wait_closed()
        await good.stop()
        good.reg.registry.close()


async def test_agentctl_status_names_the_registrar_in_use(tmp_path, registrar):
    """A real agentd seeded with a dead replica first: agentctl status says which one it talks to, and why not
    the other."""
    root = tmp_path / "box"
    dead = free_port()
    (root / "etc/edge-agent").mkdir(parents=True)
    (root / "etc/machine-id").write_text("a" * 32 + "\n")
    Paths(root).etc_config.write_text('[api]\nremote_listen = ""\n')
    Paths(root).boot_seed.parent.mkdir(parents=True)
    Paths(root).boot_seed.write_text(
        f'[fleet]\nurl = ["https://127.0.0.1:{dead}", "{registrar.url}"]\nca_pin = "{registrar.pin}"\n'
        f'bootstrap_token = "{registrar.token()}"\nretry_max = 0.5\nheartbeat_interval = 0.2\n'
    )
    agent = AgentProcess(root)
    await asyncio.to_thread(agent.start)
    try:
        doc = await wait_for(
            lambda: asyncio.to_thread(
                lambda: agent.get_json("/v1/status")["sections"].get("fleet", {}).get("enrolled")
            ),
            what="enrolled",
        )
        assert doc
        r = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "agent.cli.agentctl", "--root", str(root), "status"],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        assert r.returncode in (0, 1), r.stderr  # 1: degraded (no Kubernetes on this test box)
        line = next(x for x in r.stdout.splitlines() if x.strip().startswith("fleet"))
        assert f"enrolled via {registrar.url} (127.0.0.1:{dead}: connection refused)" in line, r.stdout
    finally:
        await asyncio.to_thread(agent.stop)
