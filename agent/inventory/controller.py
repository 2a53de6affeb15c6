"""The inventory controller: scan at start, then on hotplug events (debounced) and periodically.

Publishes the inventory on ``ctx.inventory`` (only when the hardware facts
changed, so consumers are not woken by a mere rescan), a summary as the
``inventory`` status section, and ``InventoryReady`` once the first scan is in.

Reads: sysfs/udev (through the scanner), ctx.config (``[inventory]``), ctx.desired (while the
planner waits for a NIC's address, rescans every PENDING_RESCAN seconds). Writes: ctx.inventory,
the ``inventory`` status section, condition ``InventoryReady``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Literal

import pyudev

from agent.context import AgentContext
from agent.errors import HotplugError
from agent.inventory.collect import Collector
from agent.inventory.hotplug import HotplugMonitor, Source, default_source
from agent.inventory.scan import Scanner
from agent.model.inventory import Inventory, InventorySummary, Observed

log = logging.getLogger("agent.inventory")

PENDING_RESCAN = 5.0  # seconds between rescans while the node address waits for a NIC's address


HotplugState = Literal["udev", "kernel", "off", "unavailable"]


def summarize(
    inv: Inventory, *, scans: int, hotplug_events: int, last_scan_seconds: float, hotplug: HotplugState
) -> InventorySummary:
    local = [ns for c in inv.nvme if not c.remote for ns in c.namespaces]
    speeds = [n.speed_mbps for n in inv.nics if n.physical and n.speed_mbps]
    records: list[Observed] = [inv.system, *inv.pci, *inv.nvme, *inv.disks, *inv.gpus, *inv.nics]
    records += [ns for c in inv.nvme for ns in c.namespaces]
    gpus = sum(1 for g in inv.gpus if not g.display_only)
    local_bytes = sum(ns.size_bytes or 0 for ns in local)
    physical = sum(1 for n in inv.nics if n.physical)
    fastest = max(speeds) if speeds else None
    text = (
        f"{gpus} GPU(s), {len(inv.nvme)} NVMe ({local_bytes / 1e12:.1f} TB local), "
        f"{len(inv.disks)} other disk(s), {physical} NIC(s)" + (f" (fastest {fastest} Mb/s)" if fastest else "")
    )
    return InventorySummary(
        summary=text,
        scanned_at=inv.scanned_at,
        gpus=gpus,
        nvme_controllers=len(inv.nvme),
        nvme_local_namespaces=len(local),
        nvme_local_bytes=local_bytes,
        disks=len(inv.disks),
        nics_physical=physical,
        fastest_nic_mbps=fastest,
        unreadable_fields=sum(len(r.problems) for r in records),
        scans=scans,
        hotplug_events=hotplug_events,
        last_scan_seconds=round(last_scan_seconds, 4),
        hotplug=hotplug,
    )


class InventoryController:
    name = "inventory"

    def __init__(
        self,
        ctx: AgentContext,
        *,
        udev: pyudev.Context | None = None,
        scanner: Scanner | None = None,
        monitor_source: Source | None = None,
        debounce: float = 0.2,
    ) -> None:
        self.ctx = ctx
        if scanner is None:
            scanner = Scanner(Collector(str(ctx.paths.root), udev=udev), ctx.runner)
        self.scanner = scanner
        self.monitor_source = monitor_source
        self.debounce = debounce
        self.scans = 0
        self.hotplug_events = 0
        self.hotplug_state: HotplugState = "off"
        self.last_scan_seconds = 0.0
        self._dirty = asyncio.Event()

    def _on_uevent(self, action: str, subsystem: str, sys_path: str) -> None:
        self.hotplug_events += 1
        log.info("hotplug: %s %s %s", action, subsystem or "-", sys_path or "-")
        self._dirty.set()

    async def run(self) -> None:
        if self.ctx.inventory.value is None:
            self.ctx.board.set_condition("InventoryReady", "False", "Scanning", "first hardware scan in progress")
        monitor: HotplugMonitor | None = None
        if self.ctx.config.value.inventory.hotplug:
            source = self.monitor_source or default_source(self.ctx.paths)
            monitor = HotplugMonitor(self.scanner.udev, self._on_uevent, source)
            try:
                monitor.start(asyncio.get_running_loop())
                self.hotplug_state = source
            except HotplugError as exc:
                log.warning("inventory: %s; periodic rescans only", exc)
                monitor, self.hotplug_state = None, "unavailable"
        try:
            await self._scan(refresh_tools=True)
            while True:
                interval = self.ctx.config.value.inventory.rescan_interval
                if self.ctx.desired.value.network_pending:  # a DHCP address is no uevent: look again soon
                    interval = min(interval, PENDING_RESCAN)
                woken = False
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._dirty.wait(), interval)
                    woken = True
                if woken:
                    await asyncio.sleep(self.debounce)  # let a burst of uevents settle
                self._dirty.clear()
                await self._scan(refresh_tools=not woken)
        finally:
            if monitor is not None:
                monitor.stop()

    async def _scan(self, *, refresh_tools: bool) -> None:
        cfg = self.ctx.config.value.inventory
        started = time.perf_counter()
        inv = await self.scanner.scan(nvidia_timeout=cfg.nvidia_smi_timeout, refresh_tools=refresh_tools)
        self.last_scan_seconds = time.perf_counter() - started
        self.scans += 1
        prev = self.ctx.inventory.value
        if prev is None or prev.model_copy(update={"scanned_at": inv.scanned_at}) != inv:
            self.ctx.inventory.set(inv)
            if prev is not None:
                log.info("inventory changed: %d GPUs, %d NVMe, %d NICs", len(inv.gpus), len(inv.nvme), len(inv.nics))
        else:
            inv = prev
        summary = summarize(
            inv,
            scans=self.scans,
            hotplug_events=self.hotplug_events,
            last_scan_seconds=self.last_scan_seconds,
            hotplug=self.hotplug_state,
        )
        self.ctx.board.set_section(summary)
        failed = ", ".join(f"{k}: {v}" for k, v in sorted(inv.problems.items()))
        message = summary.summary
        self.ctx.board.set_condition(
            "InventoryReady",
            "True",
            "PartialScan" if failed else "Scanned",
            f"{message}; collectors failed: {failed}" if failed else message,
        )
