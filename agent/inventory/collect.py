"""One pass of every udev/sysfs collector, as plain records (no tool runs, no pydantic, no asyncio).

Collectors record unreadable fields as null with a reason. Should a collector
fail as a whole (libudev gone, a device list that changes under it in a way
it cannot follow), the pass still completes: that section is empty and
``Inventory.problems[<section>]`` says why. The daemon's :class:`~agent.inventory.scan.Scanner`
and the one-shot scan (agent/inventory/oneshot.py) share this.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TypeVar

import pyudev

from agent.inventory.addresses import default_route_interfaces, with_default_routes
from agent.inventory.block import root_devnum, root_disks, scan_blocks
from agent.inventory.disks import collect_disks
from agent.inventory.enumerate import subsystem_devices
from agent.inventory.gpu import collect_gpus
from agent.inventory.hwdb import Hwdb
from agent.inventory.ifaddrs import host_addresses
from agent.inventory.nic import collect_nics
from agent.inventory.nvme import collect_nvme
from agent.inventory.pci import collect_pci
from agent.inventory.records import INVENTORY_SCHEMA, Inventory, Nic, PciDevice, unknown_system
from agent.inventory.system import collect_system
from agent.inventory.tpm import collect_tpms
from agent.inventory.udevctx import udev_context

T = TypeVar("T")


class Collector:
    """Builds inventory records from udev/sysfs (``udev`` injectable: umockdev tests)."""

    def __init__(
        self,
        root: str = "/",
        *,
        udev: pyudev.Context | None = None,
        root_dev: str | None = None,
        addresses: Callable[[], Mapping[str, tuple[str, ...]]] = host_addresses,
        kernel_root: str = "/",
    ) -> None:
        self.root = root  # the OS installed under it: /etc (agentd --root; Paths.root)
        # /proc describes the running kernel, not the tree under --root (tests point it at a fixture)
        self.kernel_root = kernel_root
        self.udev = udev if udev is not None else udev_context()
        self.hwdb = Hwdb(self.udev)
        self.root_dev = root_dev
        self.addresses = addresses

    @staticmethod
    def _guard(section: str, problems: dict[str, str], fn: Callable[[], T]) -> T | None:
        try:
            return fn()
        except Exception as exc:  # a collector must never take the scan down; the reason is published
            problems[section] = f"collector failed: {type(exc).__name__}: {exc}"
            return None

    def collect(self) -> Inventory:
        """Everything udev and sysfs tell."""
        problems: dict[str, str] = {}
        udev = self.udev
        pci_devices = self._guard("pci", problems, lambda: subsystem_devices(udev, "pci")) or []
        pci_list = self._guard("pci", problems, lambda: collect_pci(pci_devices, self.hwdb)) or ()
        pci = {p.address: p for p in pci_list}
        blocks = self._guard("disks", problems, lambda: scan_blocks(udev)) or []
        devnum = self.root_dev if self.root_dev is not None else root_devnum(self.root)
        root = root_disks(blocks, devnum)
        addresses = self._guard("nics", problems, self.addresses) or {}
        return Inventory(
            schema_version=INVENTORY_SCHEMA,
            scanned_at=datetime.now(UTC),
            system=self._guard("system", problems, lambda: collect_system(udev, self.root, self.kernel_root))
            or unknown_system({}),
            pci=pci_list,
            nvme=self._guard("nvme", problems, lambda: collect_nvme(udev, blocks, pci, root)) or (),
            disks=self._guard("disks", problems, lambda: collect_disks(blocks, root)) or (),
            gpus=self._guard("gpus", problems, lambda: collect_gpus(udev, pci, pci_devices)) or (),
            nics=self._guard("nics", problems, lambda: self._nics(udev, pci, addresses)) or (),
            tpms=self._guard("tpms", problems, lambda: collect_tpms(udev)) or (),
            problems=problems,
        )

    def _nics(
        self, udev: pyudev.Context, pci: Mapping[str, PciDevice], addresses: Mapping[str, tuple[str, ...]]
    ) -> tuple[Nic, ...]:
        """The NICs, each marked when it holds a default route (the network policy's not_default_route)."""
        routes = default_route_interfaces(os.path.join(self.kernel_root, "proc"))
        return with_default_routes(collect_nics(udev, pci, addresses), routes)
