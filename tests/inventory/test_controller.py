"""The inventory controller on the real host: first scan, status, periodic rescans."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.context import AgentContext
from agent.inventory.controller import InventoryController
from agent.model.config import AgentConfig, InventorySection
from agent.model.desired import Desired
from agent.model.network import NetworkPending
from agent.paths import Paths
from agent.state import StateStore
from agent.status import StatusBoard
from agent.sysexec import ProcessRunner
from agent.watch import Watch


def make_ctx(tmp_path: Path, **inventory: object) -> AgentContext:
    return AgentContext(
        paths=Paths(),
        runner=ProcessRunner(),
        board=StatusBoard(),
        store=StateStore(tmp_path / "state.json"),
        config=Watch(AgentConfig(inventory=InventorySection(**inventory))),  # type: ignore[arg-type]
    )


async def test_first_scan_publishes_inventory_status_and_condition(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path, hotplug=False)
    assert ctx.board.condition("InventoryReady") is None
    task = asyncio.create_task(InventoryController(ctx).run())
    try:
        await asyncio.sleep(0)
        scanning = ctx.board.condition("InventoryReady")
        assert scanning is not None and (scanning.status, scanning.reason) in (
            ("False", "Scanning"),
            ("True", "Scanned"),
        )
        _, inv = await asyncio.wait_for(ctx.inventory.wait_newer(0), 10)
        assert inv is not None
        cond = ctx.board.condition("InventoryReady")
        assert cond is not None and cond.status == "True" and cond.reason == "Scanned"
        section = ctx.board.sections()["inventory"]
        assert section["scans"] == 1 and section["hotplug"] == "off"
        assert section["disks"] == len(inv.disks)
        assert section["summary"].startswith(f"{section['gpus']} GPU(s)")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_periodic_rescan_without_change_keeps_the_published_inventory(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path, hotplug=False, rescan_interval=0.05)
    ctrl = InventoryController(ctx)
    task = asyncio.create_task(ctrl.run())
    try:
        version, first = await asyncio.wait_for(ctx.inventory.wait_newer(0), 10)
        for _ in range(200):
            if ctrl.scans >= 3:
                break
            await asyncio.sleep(0.05)
        assert ctrl.scans >= 3
        assert ctx.board.sections()["inventory"]["scans"] >= 3
        assert ctx.inventory.version == version and ctx.inventory.value is first
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_hotplug_monitor_opens_or_says_why(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path, hotplug=True)
    ctrl = InventoryController(ctx)
    task = asyncio.create_task(ctrl.run())
    try:
        await asyncio.wait_for(ctx.inventory.wait_newer(0), 10)
        assert ctx.board.sections()["inventory"]["hotplug"] in ("udev", "kernel", "unavailable")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_real_kernel_uevent_triggers_a_rescan(tmp_path: Path) -> None:
    """A synthetic 'change' uevent from the real kernel (written to lo's uevent file) is received
    through the netlink monitor on the event loop, counted, and followed by a rescan."""
    trigger = Path("/sys/class/net/lo/uevent")
    if os.geteuid() != 0 or not os.access(trigger, os.W_OK):
        pytest.skip("needs root to make the kernel emit a uevent")
    ctx = make_ctx(tmp_path, hotplug=True)
    ctrl = InventoryController(ctx, debounce=0.01)
    task = asyncio.create_task(ctrl.run())
    try:
        await asyncio.wait_for(ctx.inventory.wait_newer(0), 10)
        if ctrl.hotplug_state not in ("udev", "kernel"):
            pytest.skip(f"no uevent monitor here ({ctrl.hotplug_state})")
        if ctrl.hotplug_state == "udev":
            pytest.skip("udevd runs here: its re-broadcast depends on its rules, not on us")
        trigger.write_text("change")
        for _ in range(100):
            if ctrl.hotplug_events >= 1 and ctrl.scans >= 2:
                break
            await asyncio.sleep(0.05)
        assert ctrl.hotplug_events >= 1
        assert ctrl.scans >= 2
        assert ctx.board.sections()["inventory"]["hotplug_events"] >= 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_node_address_waiting_for_dhcp_rescans_soon_not_at_the_interval(tmp_path: Path) -> None:
    """A DHCP lease is no uevent: while the planner waits for a NIC's address the inventory looks again
    every few seconds, not after rescan_interval (300 s), so the node starts soon after the lease."""
    ctx = make_ctx(tmp_path, hotplug=False, rescan_interval=300)
    deadline = datetime.now(UTC) + timedelta(minutes=5)
    ctx.desired = Watch(Desired(network=NetworkPending(reason="NoAddressYet", message="ens1f0", deadline=deadline)))
    ctrl = InventoryController(ctx)
    task = asyncio.create_task(ctrl.run())
    try:
        for _ in range(200):
            if ctrl.scans >= 2:
                break
            await asyncio.sleep(0.1)
        assert ctrl.scans >= 2  # the second scan within ~PENDING_RESCAN, not 300 s
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
