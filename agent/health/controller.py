"""The health controller: polls NVMe, GPU and NIC health on ``[health] interval``.

Reads: ``ctx.inventory`` (which devices exist), ``ctx.config`` (``[health]``).
Writes: the ``health`` status section and the ``NvmeHealth`` / ``GpuHealth`` / ``NicHealth``
conditions. A device that cannot be read is Unknown with the reason; nothing here raises
because a tool is missing, hangs (the seam kills it at ``command_timeout``) or prints garbage.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from agent.context import AgentContext
from agent.health import linkmodes
from agent.health.evaluate import gpu_problems, nic_problems, nvme_problems, verdict
from agent.health.gpu import read_gpus
from agent.health.nic import LinkTracker
from agent.health.nvme import read_nvme
from agent.health.readings import HealthReport, Problem
from agent.inventory.nvidia import NVIDIA
from agent.model.inventory import Inventory

log = logging.getLogger("agent.health")


def targets(inv: Inventory) -> tuple[list[str], list[str], list[str]]:
    """(local NVMe controllers, NVIDIA GPU PCI addresses, physical non-VF NICs) of the inventory."""
    nvme = [c.name for c in inv.nvme if not c.remote and c.transport in ("pcie", None)]
    gpus = [g.pci.address for g in inv.gpus if g.vendor_id == NVIDIA and g.pci and not g.display_only]
    nics = [n.name for n in inv.nics if n.physical and not n.is_vf]
    return nvme, gpus, nics


class HealthController:
    name = "health"

    def __init__(
        self, ctx: AgentContext, *, sys_root: Path = Path("/sys"), clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ctx = ctx
        self.sys_root = sys_root
        self.clock = clock
        self.links = LinkTracker(sys_root)
        self.polls = 0
        self._published: set[str] = set()

    async def run(self) -> None:
        inv_version = 0
        while True:
            cfg = self.ctx.config.value.health
            inv = self.ctx.inventory.value
            if inv is None:  # a missing input means wait
                inv_version, _ = await self.ctx.inventory.wait_newer(inv_version)
                continue
            if cfg.enabled:
                await self.poll(inv)
            else:
                self.disabled()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.ctx.config.wait_newer(self.ctx.config.version), cfg.interval)

    def disabled(self) -> None:
        """``[health] enabled = false``: earlier verdicts must not keep the agent degraded."""
        for ctype in sorted(self._published):
            self.ctx.board.set_condition(ctype, "True", "Disabled", "[health] enabled = false", severity="info")
        self.ctx.board.set_section(HealthReport(summary="off ([health] enabled = false)"))

    async def poll(self, inv: Inventory) -> HealthReport:
        cfg = self.ctx.config.value.health
        started = time.perf_counter()
        nvme_names, gpu_addrs, nic_names = targets(inv)
        ask = self.links.unknown_modes(nic_names)  # ethtool runs alongside, not one port after another
        nvme, gpus, modes = await asyncio.gather(
            asyncio.gather(*(read_nvme(self.ctx.runner, n, self.sys_root, cfg.command_timeout) for n in nvme_names)),
            read_gpus(self.ctx.runner, gpu_addrs, cfg.command_timeout),
            asyncio.gather(*(linkmodes.query(self.ctx.runner, n, cfg.command_timeout) for n in ask)),
        )
        for name, (final, fastest) in zip(ask, modes, strict=True):
            if final:
                self.links.set_modes(name, fastest)
        nics = self.links.read(nic_names, self.clock(), cfg.nic_expected_mbps)
        problems: list[Problem] = []
        for r in nvme:
            problems += nvme_problems(r, cfg)
        for g in gpus:
            problems += gpu_problems(g, cfg)
        for link in nics:
            problems += nic_problems(link, cfg)
        self.polls += 1
        counts = {"nvme": len(nvme), "gpu": len(gpus), "nic": len(nics)}
        bad = [p for p in problems if not p.unknown]
        unknown = [p for p in problems if p.unknown]
        summary = (
            f"{len(nvme)} NVMe, {len(gpus)} GPU(s), {len(nics)} NIC(s): "
            + (f"{len(bad)} problem(s)" if bad else "no problems")
            + (f", {len(unknown)} unreadable" if unknown else "")
        )
        section = HealthReport(
            summary=summary,
            polled_at=datetime.now(UTC).isoformat(timespec="seconds"),
            polls=self.polls,
            last_poll_seconds=round(time.perf_counter() - started, 4),
            nvme=tuple(nvme),
            gpus=gpus,
            nics=nics,
            problems=tuple(problems),
        )
        self.ctx.board.set_section(section)
        for kind, n in counts.items():
            if n:
                v = verdict(kind, n, problems)
                self.ctx.board.set_condition(v.type, v.status, v.reason, v.message)
                self._published.add(v.type)
        if bad:
            log.debug("health: %s", "; ".join(p.message for p in bad))
        return section
