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

STANDINS = Path(__file__).resolve().parent / "standins/ok"


def _context(tmp_path: Path, inv: Inventory | None, runner: ProcessRunner, health: HealthSection) -> AgentContext:
    ctx = AgentContext(
        paths=Paths(tmp_path),
        runner=runner,
        board=StatusBoard(),
        store=StateStore(tmp_path / "state.json"),
        config=Watch(AgentConfig(health=health)),
    )
    if inv is not None:
        ctx.inventory.set(inv)
    return ctx


async def test_a_port_below_its_fastest_link_mode_is_degraded_from_the_first_poll(tmp_path: Path) -> None:
    from tests.health.test_readings import CX6_ETHTOOL

    for name, speed in (("ens1f0np0", "10000"), ("eth1", "1000")):
        net = tmp_path / "sys/class/net" / name
        net.mkdir(parents=True)
        for k, v in {"operstate": "up", "carrier": "1", "carrier_changes": "2", "speed": speed}.items():
            (net / k).write_text(v + "\n")
    (tmp_path / "ethtool").mkdir()
    (tmp_path / "ethtool/ens1f0np0.txt").write_text(CX6_ETHTOOL)  # eth1: ethtool knows no such device
    inv = Inventory(
        scanned_at=datetime.now(UTC),
        nics=tuple(Nic(name=n, kind="physical", physical=True) for n in ("ens1f0np0", "eth1")),
    )
    runner = ProcessRunner(
        path=f"{STANDINS}:/usr/bin:/bin",
        base_env={"ETHTOOL_DIR": str(tmp_path / "ethtool"), "ETHTOOL_CALLS": str(tmp_path / "calls")},
    )
    ctx = _context(tmp_path, inv, runner, HealthSection())
    ctrl = HealthController(ctx, sys_root=tmp_path / "sys")
    report = await ctrl.poll(inv)
    assert {n.name: n.expected_mbps for n in report.nics} == {"ens1f0np0": 100000, "eth1": 1000}
    assert [(p.device, p.reason) for p in report.problems] == [("ens1f0np0", "LinkDegraded")]
    cond = ctx.board.condition("NicHealth")
    assert cond is not None and cond.message == "ens1f0np0: running at 10000 Mb/s, expected 100000 Mb/s"
    await ctrl.poll(inv)  # link modes do not change: each port is asked once, answered or not
    assert sorted((tmp_path / "calls").read_text().split()) == ["ens1f0np0", "eth1"]


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
