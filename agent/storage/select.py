"""Which NVMe namespaces ``[storage]`` takes, and into which device class (pure).

Selection-level skips (fabric-attached, holds the root filesystem, not
selected, no device class) are decided here from the inventory; whether a
selected namespace is really blank is the probe's job at preparation time.
"""

from __future__ import annotations

import fnmatch
import re

from agent.errors import ConfigProblem
from agent.model.inventory import Inventory, NvmeController, NvmeNamespace
from agent.model.storage import (
    FABRIC,
    VOLUMES_DIR,
    DeviceClass,
    DeviceSelector,
    NamespaceDecision,
    StoragePlan,
    StorageSection,
)

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def volume_name(serial: str, nsid: int) -> str:
    """``<serial>-<nsid>`` with characters unfit for a path or unit name replaced by '_'."""
    return f"{_UNSAFE.sub('_', serial.strip())}-{nsid}"


def selects(sel: DeviceSelector, ctrl: NvmeController, ns: NvmeNamespace) -> bool:
    if sel.model and not fnmatch.fnmatchcase((ctrl.model or "").strip(), sel.model):
        return False
    if sel.serial and not fnmatch.fnmatchcase((ctrl.serial or "").strip(), sel.serial):
        return False
    size = ns.size_bytes or 0
    if size < sel.min_size_bytes or (sel.max_size_bytes and size > sel.max_size_bytes):
        return False
    if (ctrl.transport or "pcie") not in sel.transport:
        return False
    numa = ctrl.pci.numa_node if ctrl.pci is not None else None
    return sel.numa_node < 0 or numa == sel.numa_node


def _decide(section: StorageSection, ctrl: NvmeController, ns: NvmeNamespace) -> NamespaceDecision:
    serial = (ctrl.serial or "").strip()
    base = {
        "device": f"/dev/{ns.name}",
        "serial": serial,
        "nsid": ns.nsid or 0,
        "model": (ctrl.model or "").strip(),
        "size_bytes": ns.size_bytes or 0,
    }
    transport = ctrl.transport or "pcie"

    def skip(reason: str) -> NamespaceDecision:
        return NamespaceDecision(**base, action="skip", reason=reason)

    if (ns.remote or ctrl.remote or transport in FABRIC) and transport not in section.select.transport:
        return skip(f"fabric-attached ({transport}); add it to storage.select.transport to use it")
    if ns.holds_root:
        return skip("holds the root filesystem")
    if not serial or not ns.nsid:
        return skip("no serial or namespace id: it cannot be named stably")
    if not selects(section.select, ctrl, ns):
        return skip(f"not selected by storage.select ({section.select.describe()})")
    if section.mode == "filesystem":
        mount = f"{VOLUMES_DIR}/{volume_name(serial, ns.nsid)}"
        return NamespaceDecision(**base, action="prepare", mountpoint=mount)
    for cls in section.classes():
        if selects(cls.select, ctrl, ns):
            return NamespaceDecision(**base, action="prepare", device_class=cls.name, volume_group=cls.vg)
    return skip("no storage.device_classes entry selects it")


def plan_storage(section: StorageSection, inventory: Inventory) -> StoragePlan | None:
    """The per-namespace decisions; None when ``[storage]`` is off."""
    if not section.enabled:
        return None
    decisions = tuple(_decide(section, c, ns) for c in inventory.nvme for ns in c.namespaces)
    return StoragePlan(
        mode=section.mode,
        filesystem=section.filesystem,
        namespaces=decisions,
        classes=section.classes() if section.mode == "lvm" else (),
        command_timeout=section.command_timeout,
    )


def storage_problems(section: StorageSection, inventory: Inventory, source: str) -> list[ConfigProblem]:
    """A selector that selects nothing, a device class with no device: named by key, never fatal."""
    if not section.enabled:
        return []
    pairs = [(c, ns) for c in inventory.nvme for ns in c.namespaces]
    seen = ", ".join(f"{ns.name} ({(c.model or '?').strip()}, {c.transport or 'pcie'})" for c, ns in pairs) or "none"
    out: list[ConfigProblem] = []
    if not any(selects(section.select, c, ns) for c, ns in pairs):
        out.append(
            ConfigProblem(
                source,
                "storage.select",
                f"selects no NVMe namespace on this box ({section.select.describe()}; namespaces: {seen})",
            )
        )
    if section.mode == "filesystem":
        if section.device_classes:
            out.append(ConfigProblem(source, "storage.device_classes", "applies to mode = 'lvm' only"))
        return out
    chosen = [(c, ns) for c, ns in pairs if selects(section.select, c, ns)]
    explicit: list[DeviceClass] = list(section.device_classes)
    for i, cls in enumerate(explicit):
        if not any(selects(cls.select, c, ns) for c, ns in chosen):
            out.append(
                ConfigProblem(
                    source,
                    f"storage.device_classes.{i}",
                    f"device class {cls.name!r} ({cls.select.describe()}) has no device (namespaces: {seen})",
                )
            )
    return out
