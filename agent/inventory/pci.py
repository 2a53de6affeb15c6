"""PCI functions: ids, class, hwdb names, driver, NUMA node and PCIe link."""

from __future__ import annotations

import re
from collections.abc import Iterable

import pyudev

from agent.inventory.hwdb import Hwdb
from agent.inventory.records import PciDevice
from agent.inventory.sysfs import Fields

_SPEED = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*GT/s")


def udev_property(device: pyudev.Device, key: str) -> str | None:
    """A udev property (from the udev database: hwdb names, ID_*), or None."""
    try:
        value = device.properties.get(key)
    except (OSError, pyudev.DeviceNotFoundError, UnicodeDecodeError):
        return None
    return value.strip() or None if isinstance(value, str) else None


def numa_node(f: Fields) -> int | None:
    node = f.integer("numa_node", "numa_node", required=False)
    return node if node is not None and node >= 0 else None


def pci_device(device: pyudev.Device, hwdb: Hwdb | None = None) -> PciDevice:
    f = Fields(device.sys_path)
    vendor_name = udev_property(device, "ID_VENDOR_FROM_DATABASE")
    device_name = udev_property(device, "ID_MODEL_FROM_DATABASE")
    if hwdb is not None and (vendor_name is None or device_name is None):
        db_vendor, db_model = hwdb.names(udev_property(device, "MODALIAS"))
        vendor_name, device_name = vendor_name or db_vendor, device_name or db_model
    speed: float | None = None
    speed_text = f.text("current_link_speed", "link_speed_gts", required=False)
    if speed_text is not None:
        m = _SPEED.match(speed_text)
        if m:
            speed = float(m.group(1))
        elif not speed_text.lower().startswith("unknown"):
            f.note("link_speed_gts", f"current_link_speed: unexpected {speed_text[:40]!r}")
    width = f.integer("current_link_width", "link_width", required=False)
    return PciDevice(
        address=device.sys_name,
        class_code=f.hex_id("class", "class_code", digits=6),
        vendor_id=f.hex_id("vendor", "vendor_id"),
        device_id=f.hex_id("device", "device_id"),
        subsystem_vendor_id=f.hex_id("subsystem_vendor", "subsystem_vendor_id"),
        subsystem_device_id=f.hex_id("subsystem_device", "subsystem_device_id"),
        vendor_name=vendor_name,
        device_name=device_name,
        driver=f.link("driver"),
        numa_node=numa_node(f),
        link_speed_gts=speed,
        link_width=width if width else None,
        problems=f.problems,
    )


def pci_parent(device: pyudev.Device) -> pyudev.Device | None:
    """The nearest PCI function above ``device`` (or the device itself)."""
    if device.subsystem == "pci":
        return device
    try:
        parent = device.find_parent("pci")
    except (OSError, pyudev.DeviceNotFoundError):
        return None
    return parent if isinstance(parent, pyudev.Device) else None


def collect_pci(pci_devices: Iterable[pyudev.Device], hwdb: Hwdb | None = None) -> tuple[PciDevice, ...]:
    found = [pci_device(d, hwdb) for d in pci_devices]
    return tuple(sorted(found, key=lambda p: p.address))
