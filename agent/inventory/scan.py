"""The daemon's scanner: the collectors' records (agent/inventory/collect.py), nvidia-smi
enrichment through the asyncio runner, and the pydantic :class:`Inventory` the daemon publishes.

A collector that failed as a whole is logged here, once per scan; its reason is in
``Inventory.problems[<section>]``.
"""

from __future__ import annotations

import logging

from agent.inventory import nvidia, records
from agent.inventory.collect import Collector
from agent.model.inventory import Inventory
from agent.sysexec import Runner

log = logging.getLogger("agent.inventory")


def modelled(inv: records.Inventory) -> Inventory:
    """The pydantic model of a scan (validated: its JSON schema is the API's)."""
    return Inventory.model_validate(inv, from_attributes=True)


class Scanner:
    """Scans with ``collector`` (its udev is injectable: umockdev tests) and runs nvidia-smi with ``runner``."""

    def __init__(self, collector: Collector, runner: Runner) -> None:
        self.collector = collector
        self.runner = runner
        self.udev = collector.udev
        self._smi: tuple[tuple[str, ...], nvidia.SmiResult] | None = None

    def _collect(self) -> records.Inventory:
        inv = self.collector.collect()
        for section, why in inv.problems.items():
            log.warning("inventory: %s %s", section, why)
        return inv

    def scan_hardware(self) -> Inventory:
        """Everything udev and sysfs tell, without running any tool."""
        return modelled(self._collect())

    async def scan(self, *, nvidia_timeout: float, refresh_tools: bool = True) -> Inventory:
        """A full scan. nvidia-smi runs when NVIDIA GPUs are present and either
        ``refresh_tools`` is set or the set of NVIDIA GPUs changed since its last run."""
        inv = self._collect()
        nv = nvidia.gpu_addresses(inv.gpus)
        if not nv:
            return modelled(inv)
        if refresh_tools or self._smi is None or self._smi[0] != nv:
            self._smi = (nv, await nvidia.query(self.runner, nvidia_timeout))
            if self._smi[1].problem:
                log.warning("inventory: %s", self._smi[1].problem)
        return modelled(inv._replace(gpus=nvidia.enrich(inv.gpus, self._smi[1])))
