"""The controller's run loop: waits on config/assignment/inventory, keeps polling readiness."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import pytest
from pydantic import SecretStr

from agent.model.fleet import Assignment

from .boxes import Box


async def until(check: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


def status(box: Box, ctype: str) -> str | None:
    c = box.ctx.board.condition(ctype)
    return c.status if c else None


@pytest.mark.slow
async def test_run_loop_follows_config_and_fleet_assignment(make_box: Callable[..., Box]) -> None:
    box = make_box("loop")
    box.bundle("k3s")
    box.bundle("k0s")
    ctl = box.controller()
    task = asyncio.create_task(ctl.run())
    try:
        await until(lambda: box.ctx.board.condition("Installed") is not None)
        assert box.cond("Installed").reason == "NotRequested"  # nothing configured: wait, not error
        assert box.calls() == []

        box.ctx.config.set(box.config(distribution="k3s"))
        await until(lambda: status(box, "NodeReady") == "True")
        assert box.section()["origin"] == "config"

        # the fleet assignment wins over config
        box.ctx.assignment.set(
            Assignment(cluster="c9", distribution="k0s", role="server", cluster_init=True, join_token=SecretStr(""))
        )
        await until(lambda: box.section()["distribution"] == "k0s" and status(box, "NodeReady") == "True")
        assert box.section()["cluster"] == "c9"
        assert box.ctx.join_tokens.value is not None
        assert not (box.root / "etc/systemd/system/k3s.service").exists()
        assert not task.done()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
