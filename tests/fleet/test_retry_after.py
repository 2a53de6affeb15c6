"""A registrar's 503/429 + Retry-After is honoured: the box waits what was asked (seconds or an
HTTP-date, capped, spread upwards, never under the backoff's floor), says so, and then enrolls.

On loopback: a tiny aiohttp stand-in holds the registrar's port and answers every request with the
status and Retry-After; once it has been asked, it gives the port to a real registrar."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from aiohttp import web

from agent.context import AgentContext
from agent.errors import FleetUnavailable, RegistrarDown
from agent.fleet import retry_after as hint
from agent.fleet.est_client import raise_for
from agent.fleet.transport import HttpResponse

from .harness import RegistrarHandle, box_config, cond, free_port, make_box, new_registrar, wait_for


def test_retry_after_is_read_as_seconds_or_an_http_date() -> None:
    now = time.time()
    in_90s = format_datetime(datetime.fromtimestamp(now + 90, UTC), usegmt=True)
    assert hint.asked({"Retry-After": "10"}) == 10.0
    assert hint.asked({"retry-after": " 7 "}) == 7.0
    assert hint.asked({"Retry-After": in_90s}, now=now) == pytest.approx(90, abs=1)
    assert hint.asked({"Retry-After": "Sun, 06 Nov 1994 08:49:37 GMT"}) == 0.0  # a date gone by: now
    assert hint.asked({"Retry-After": "soon"}) is None
    assert hint.asked({"Retry-After": "-5"}) is None
    assert hint.asked({}) is None


def test_the_wait_is_what_was_asked_spread_upwards_capped_and_never_under_the_floor() -> None:
    waits = [hint.honoured(10, floor=1, cap=300) for _ in range(200)]
    assert min(waits) >= 10 and max(waits) <= 12 and len(set(waits)) > 100
    assert hint.honoured(900, floor=1, cap=300) == 300
    assert hint.honoured(0, floor=1, cap=300) == 1


def test_a_503_or_429_carries_the_asked_seconds_on_the_error() -> None:
    with pytest.raises(RegistrarDown, match="Retry-After 10s") as down:
        raise_for(HttpResponse(503, b'{"title": "db down"}', {"Retry-After": "10"}), "simpleenroll")
    assert down.value.retry_after == 10 and down.value.reason == "answered 503"
    with pytest.raises(FleetUnavailable) as limited:
        raise_for(HttpResponse(429, b"{}", {"Retry-After": "31"}), "simpleenroll")
    assert limited.value.retry_after == 31 and not isinstance(limited.value, RegistrarDown)
    with pytest.raises(RegistrarDown) as plain:
        raise_for(HttpResponse(503, b"{}", {}), "simpleenroll")
    assert plain.value.retry_after is None


async def _stand_in(good: RegistrarHandle, status: int, retry_after: str, hits: list[float]) -> web.AppRunner:
    """On the registrar's port, with its serving certificate: every request answered ``status``."""

    async def answer(_req: web.Request) -> web.Response:
        hits.append(time.monotonic())
        return web.json_response({"title": "busy"}, status=status, headers={"Retry-After": retry_after})

    tls = good.reg.ssl_context(["localhost"])
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", good.port, ssl_context=tls).start()
    return runner


@pytest.mark.parametrize(
    ("status", "header"),
    [(503, "3"), (429, "3"), (503, "date")],
    ids=["503-seconds", "429-seconds", "503-http-date"],
)
async def test_the_box_waits_as_long_as_the_registrar_asked_and_then_enrolls(tmp_path, run_controller, status, header):
    good = new_registrar(tmp_path / "registrar")
    good.port = free_port()
    value = header
    if header == "date":  # whole seconds: between 3 and 4 s from now
        value = format_datetime(datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=4), usegmt=True)
    hits: list[float] = []
    front = await _stand_in(good, status, value, hits)
    ctx = make_box(tmp_path / "box", box_config(good.url, good.pin, good.token(), retry_max=60), "9" * 32)
    try:
        run_controller(ctx)  # base delay 0.05 s: without Retry-After it would come back at once
        await wait_for(lambda: hits, what="the first request")
        message = await wait_for(lambda: fleet_error(ctx), what="the failure in the status")
        assert "as the registrar asked: Retry-After" in message, message
        await front.cleanup()
        await good.start()
        await wait_for(lambda: cond(ctx, "Enrolled") == ("True", "Enrolled"), timeout=15, what="enrolled")
        enrolled_at = time.monotonic()
        assert len(hits) == 1, "asked again before the Retry-After ran out"
        waited = enrolled_at - hits[0]
        assert 3.0 <= waited <= 4.0 * 1.2 + 1.0, waited
    finally:
        await front.cleanup()
        await good.stop()
        good.reg.registry.close()


def fleet_error(ctx: AgentContext) -> str:
    section = ctx.board.sections().get("fleet")
    return str(section.get("last_error", "")) if isinstance(section, dict) else ""
