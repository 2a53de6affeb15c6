"""Whole local disks other than NVMe namespaces: virtio, SATA/SAS, USB, MMC.

Virtual block devices (loop, zram, ram, device-mapper, md) live under
/sys/devices/virtual and are not disks of the box.
"""

from __future__ import annotations

from collections.abc import Iterable

import pyudev

from agent.inventory.block import Block
from agent.inventory.pci import pci_parent, udev_property
from agent.inventory.records import Disk
from agent.inventory.sysfs import Fields

# ancestor subsystem -> bus name, most specific first
_BUSES = (("usb", "usb"), ("ata_port", "ata"), ("mmc", "mmc"), ("virtio", "virtio"), ("scsi", "scsi"))


def _bus(dev: pyudev.Device) -> str | None:
    seen = {a.subsystem for a in dev.ancestors}
    for subsystem, bus in _BUSES:
        if subsystem in seen:
            return bus
    return None


def _disk(b: Block, root: frozenset[str]) -> Disk:
    dev = b.device
    f = Fields(dev.sys_path)
    sectors = f.integer("size", "size_bytes")
    rotational = f.integer("queue/rotational", "rotational")
    removable = f.integer("removable", "removable")
    serial = udev_property(dev, "ID_SERIAL_SHORT") or f.text("serial", "serial", required=False)
    if serial is None:
        serial = f.text("device/serial", "serial", required=False)
    parent = pci_parent(dev)
    bus = udev_property(dev, "ID_BUS") or _bus(dev)
    # device/vendor is a SCSI INQUIRY vendor on scsi/ata/usb; elsewhere (virtio) it is a bus id
    vendor = f.text("device/vendor", "vendor", required=False) if bus in ("scsi", "ata", "usb") else None
    return Disk(
        name=b.name,
        model=udev_property(dev, "ID_MODEL") or f.text("device/model", "model", required=False),
        vendor=vendor,
        serial=serial,
        bus=bus,
        size_bytes=None if sectors is None else sectors * 512,
        rotational=None if rotational is None else rotational != 0,
        removable=None if removable is None else removable != 0,
        holds_root=b.name in root,
        pci_address=parent.sys_name if parent is not None else None,
        problems=f.problems,
    )


def collect_disks(blocks: Iterable[Block], root: frozenset[str]) -> tuple[Disk, ...]:
    disks = [
        _disk(b, root)
        for b in blocks
        if b.devtype == "disk"
        and not b.device.sys_path.startswith("/sys/devices/virtual/")
        and not b.name.startswith("nvme")
    ]
    return tuple(sorted(disks, key=lambda d: d.name))
