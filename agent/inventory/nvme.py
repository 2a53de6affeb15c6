"""NVMe controllers and their namespaces, local (PCIe) or fabric-attached (tcp, rdma, fc).

A namespace's block device sits under its controller, or, with native NVMe
multipath, under the ``nvme-subsystem`` device that lists the controllers
reaching it; then it is attached to the lowest-numbered of those.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping

import pyudev

from agent.inventory.block import Block
from agent.inventory.enumerate import subsystem_devices
from agent.inventory.pci import pci_parent
from agent.inventory.records import NvmeController, NvmeNamespace, NvmeTransport, PciDevice
from agent.inventory.sysfs import Fields, listdir

_NAMESPACE = re.compile(r"^nvme\d+n\d+$")
_CONTROLLER = re.compile(r"^nvme(\d+)$")
_TRANSPORTS: dict[str, NvmeTransport] = {
    "pcie": "pcie",
    "tcp": "tcp",
    "rdma": "rdma",
    "fc": "fc",
    "loop": "loop",
}
REMOTE_TRANSPORTS = frozenset({"tcp", "rdma", "fc"})


def _owner(ns: Block) -> str | None:
    parent = ns.device.parent
    if parent is None:
        return None
    if _CONTROLLER.match(parent.sys_name) and parent.subsystem == "nvme":
        return str(parent.sys_name)
    ctrls = [n for n in listdir(parent.sys_path) if _CONTROLLER.match(n)]
    return min(ctrls, key=lambda n: int(n[4:])) if ctrls else None


def _namespace(ns: Block, remote: bool, root: frozenset[str]) -> NvmeNamespace:
    f = Fields(ns.device.sys_path)
    sectors = f.integer("size", "size_bytes")
    return NvmeNamespace(
        name=ns.name,
        nsid=f.integer("nsid", "nsid"),
        size_bytes=None if sectors is None else sectors * 512,
        logical_block_size=f.integer("queue/logical_block_size", "logical_block_size"),
        physical_block_size=f.integer("queue/physical_block_size", "physical_block_size"),
        wwid=f.text("wwid", "wwid", required=False),
        remote=remote,
        holds_root=ns.name in root,
        problems=f.problems,
    )


def _controller(
    dev: pyudev.Device,
    namespaces: list[Block],
    pci: Mapping[str, PciDevice],
    root: frozenset[str],
) -> NvmeController:
    f = Fields(dev.sys_path)
    raw_transport = f.text("transport", "transport")
    transport = _TRANSPORTS.get(raw_transport) if raw_transport else None
    if raw_transport and transport is None:
        f.note("transport", f"transport: unknown {raw_transport[:40]!r}")
    remote = transport in REMOTE_TRANSPORTS
    pci_dev: PciDevice | None = None
    if transport == "pcie":
        parent = pci_parent(dev)
        pci_dev = pci.get(parent.sys_name) if parent is not None else None
        if pci_dev is None:
            f.note("pci", "no PCI function above this PCIe controller")
    nss = tuple(_namespace(ns, remote, root) for ns in sorted(namespaces, key=lambda b: _ns_key(b.name)))
    return NvmeController(
        name=dev.sys_name,
        model=f.text("model", "model"),
        serial=f.text("serial", "serial"),
        firmware_rev=f.text("firmware_rev", "firmware_rev"),
        transport=transport,
        remote=remote,
        fabric_address=f.text("address", "fabric_address") if remote else None,
        subsystem_nqn=f.text("subsysnqn", "subsystem_nqn", required=False),
        pci=pci_dev,
        namespaces=nss,
        problems=f.problems,
    )


def _ns_key(name: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", name))


def collect_nvme(
    udev: pyudev.Context,
    blocks: Iterable[Block],
    pci: Mapping[str, PciDevice],
    root: frozenset[str],
) -> tuple[NvmeController, ...]:
    by_ctrl: dict[str, list[Block]] = {}
    for b in blocks:
        if b.devtype == "disk" and _NAMESPACE.match(b.name):
            owner = _owner(b)
            if owner is not None:
                by_ctrl.setdefault(owner, []).append(b)
    found: list[NvmeController] = []
    for dev in subsystem_devices(udev, "nvme"):
        if not _CONTROLLER.match(dev.sys_name) or not os.path.isdir(dev.sys_path):
            continue
        found.append(_controller(dev, by_ctrl.get(dev.sys_name, []), pci, root))
    return tuple(sorted(found, key=lambda c: int(c.name[4:])))
