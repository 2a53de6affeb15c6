"""Offline is normal: the registrar is down for a while, the box keeps retrying with bounded,
growing delays, its local API keeps answering, and enrollment completes once the registrar is back."""

from __future__ import annotations

import aiohttp
from aiohttp import web

from agent.api.app import ApiInfo, build_app
from agent.api.mtls import require_role

from .harness import box_config, cond, free_port, make_box, new_registrar, wait_for


async def test_registrar_down_then_up_enrollment_completes_without_restart(tmp_path, run_controller):
    handle = new_registrar(tmp_path / "reg")
    handle.port = free_port()  # nobody listens there yet
    ctx = make_box(tmp_path / "box", box_config(handle.url, handle.pin, handle.token(), retry_max=0.4), "3" * 32)

    # the local API, as the daemon serves it on the unix socket
    runner = web.AppRunner(build_app(ctx, ApiInfo(), middlewares=[require_role]))
    await runner.setup()
    sock = tmp_path / "agent.sock"
    await web.UnixSite(runner, str(sock)).start()

    delays: list[float] = []
    errors: list[str] = []

    def note_delay() -> bool:
        fleet = ctx.board.sections().get("fleet", {})
        if fleet.get("last_error") and (not errors or fleet["last_error"] != errors[-1]):
            errors.append(fleet["last_error"])
            delays.append(fleet["next_attempt_in"])
        return len(delays) >= 5

    try:
        run_controller(ctx)
        await wait_for(note_delay, timeout=10, what="several retries")
        enrolled = ctx.board.condition("Enrolled")
        assert enrolled.status == "False" and enrolled.reason == "RegistrarUnreachable"
        assert enrolled.severity == "info"  # offline is normal at the edge, not "degraded"
        assert max(delays) <= 0.4 * 1.2 + 0.05  # capped (with jitter, shown rounded)
        assert delays[0] < max(delays)  # and growing from a small start

        async with (
            aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(sock))) as s,
            s.get("http://agent/v1/status") as r,
        ):
            assert r.status == 200
            doc = await r.json()
        assert any(c["type"] == "Enrolled" and c["reason"] == "RegistrarUnreachable" for c in doc["conditions"])

        await handle.start()  # the registrar comes back on the same address
        await wait_for(lambda: cond(ctx, "Assigned") == ("True", "Assigned"), timeout=5, what="enrolled after outage")
        assert cond(ctx, "Enrolled") == ("True", "Enrolled")
    finally:
        await runner.cleanup()
        await handle.stop()


async def test_registrar_restart_reconnects_an_enrolled_box(tmp_path, run_controller):
    handle = new_registrar(tmp_path / "reg")
    await handle.start()
    ctx = make_box(tmp_path / "box", box_config(handle.url, handle.pin, handle.token(), retry_max=0.3), "4" * 32)
    run_controller(ctx)
    await wait_for(lambda: ctx.assignment.value is not None)
    await handle.stop()
    await wait_for(lambda: ctx.board.sections()["fleet"].get("last_error"), what="outage noticed")
    assert cond(ctx, "Enrolled")[0] == "True"  # still enrolled; the assignment stays
    assert ctx.assignment.value is not None
    seen = handle.reg.registry.list_nodes()[0].last_seen
    await handle.start()
    await wait_for(lambda: handle.reg.registry.list_nodes()[0].last_seen > seen, timeout=5, what="heartbeat")
    await handle.stop()


async def test_agent_restart_while_registrar_is_down_keeps_identity_and_assignment(tmp_path, run_controller):
    handle = new_registrar(tmp_path / "reg")
    await handle.start()
    cfg = box_config(handle.url, handle.pin, handle.token(uses=1), retry_max=0.3)
    ctx = make_box(tmp_path / "box", cfg, "5" * 32)
    task = run_controller(ctx)
    await wait_for(lambda: ctx.assignment.value is not None)
    serial = ctx.board.sections()["fleet"]["cert_serial"]
    task.cancel()
    await handle.stop()

    again = make_box(tmp_path / "box", cfg, "5" * 32)  # the daemon starts again (or rolls back)
    run_controller(again)
    await wait_for(lambda: again.board.sections().get("fleet", {}).get("last_error"), what="registrar still down")
    assert cond(again, "Enrolled") == ("True", "RegistrarUnreachable")  # no re-enrollment needed
    assert again.board.sections()["fleet"]["cert_serial"] == serial
    assert cond(again, "Assigned") == ("True", "Restored")
    assert again.assignment.value == ctx.assignment.value
    await handle.start()
    await wait_for(lambda: cond(again, "Enrolled") == ("True", "Enrolled"), timeout=5, what="back in touch")
    assert len(handle.reg.registry.list_nodes()) == 1
    await handle.stop()
