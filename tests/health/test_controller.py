"""The controller loop in-process, on a sysfs tree in a temp dir: verdicts, and switching it off."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from agent.context import AgentContext
from agent.health.controller import HealthController
from agent.model.config import AgentConfig, HealthSection
from agent.model.inventory import Inventory, Nic
from agent.paths import Paths
from agent.state import StateStore
from agent.status import StatusBoard
from agent.sysexec import ProcessRunner
from agent.upgrade.health import board_problems
from agent.watch import Watch


async def _until(check: object, board: StatusBoard) -> None:
    for _ in range(100):
        if callable(check) and check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"never reached; conditions: {board.conditions()}")


async def test_a_lost_link_degrades_and_disabling_health_clears_it(tmp_path: Path) -> None:
    net = tmp_path / "sys/class/net/eth0"
    net.mkdir(parents=True)
    for k, v in {"operstate": "up", "carrier": "1", "carrier_changes": "2", "speed": "10000"}.items():
        (net / k).write_text(v + "\n")
    inv = Inventory(scanned_at=datetime.now(UTC), nics=(Nic(name="eth0", kind="physical", physical=True),))
    ctx = AgentContext(
        paths=Paths(tmp_path),
        runner=ProcessRunner(path=str(tmp_path / "no-tools")),
        board=StatusBoard(),
        store=StateStore(tmp_path / "state.json"),
        config=Watch(AgentConfig(health=HealthSection(interval=5))),
    )
    ctrl = HealthController(ctx, sys_root=tmp_path / "sys")
    task = asyncio.create_task(ctrl.run())
    try:
        await asyncio.sleep(0.05)
        assert ctrl.polls == 0  # no inventory yet: wait, not error
        ctx.inventory.set(inv)
        await _until(lambda: ctrl.polls == 1, ctx.board)
        assert ctx.board.condition("NicHealth").status == "True"  # type: ignore[union-attr]
        (net / "carrier").write_text("0\n")
        (net / "operstate").write_text("down\n")
        ctx.config.set(AgentConfig(health=HealthSection(interval=5, link_flaps_per_hour_max=2)))  # wakes the loop
        await _until(lambda: ctrl.polls == 2, ctx.board)
        cond = ctx.board.condition("NicHealth")
        assert cond is not None and (cond.status, cond.reason) == ("False", "LinkDown")
        assert [c.type for c in ctx.board.degraded()] == ["NicHealth"]
        assert board_problems(ctx.board) == []  # a lost link must not roll back an agent upgrade
        ctx.config.set(AgentConfig(health=HealthSection(enabled=False)))
        await _until(lambda: ctx.board.condition("NicHealth").reason == "Disabled", ctx.board)  # type: ignore[union-attr]
        assert ctx.board.degraded() == []
        assert not task.done()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
