"""The hardware an identity was made on, so a disk copied whole into another box is a new box.

Which facts count, and why:
- the DMI (SMBIOS) system UUID and serial (``/sys/class/dmi/id/product_uuid``,
  ``product_serial``): set by the board's firmware, they move with the mainboard,
  not the disk. When the firmware gives a real UUID it decides alone (then the
  serial, when only it is real); placeholders vendors leave ("To Be Filled By
  O.E.M.", all-zero UUIDs, ...) count as missing.
- else the permanent MAC addresses of physical NICs (``/sys/class/net/*`` with a
  ``device`` link and ``addr_assign_type`` 0) and the serials of NVMe
  controllers (``/sys/class/nvme/*/serial``): soldered or fitted parts of the box.
  They are compared as sets and the hardware counts as another box only when
  NONE of the recorded devices is still there, so a replaced NIC, a swapped or
  hot-added disk keeps the identity; bridges, bonds, USB and virtual NICs never
  count (their MACs are made up or move between boxes).

Only SHA-256 digests of the values are kept in ``identity.json`` (the box's
serials need not be copied around with its state); a fact the box cannot read
(unreadable, or absent on this hardware) never causes a reset.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.paths import Paths

BOOT_ID = "/proc/sys/kernel/random/boot_id"
DMI_DIR = "/sys/class/dmi/id"
NET_DIR = "/sys/class/net"
NVME_DIR = "/sys/class/nvme"
PLACEHOLDERS = {
    "",
    "0",
    "none",
    "n/a",
    "na",
    "default string",
    "not specified",
    "not applicable",
    "not available",
    "to be filled by o.e.m.",
    "system serial number",
    "system uuid",
    "0123456789",
    "123456789",
    "00000000-0000-0000-0000-000000000000",
    "ffffffff-ffff-ffff-ffff-ffffffffffff",
    "03000200-0400-0500-0006-000700080009",  # a well-known placeholder UUID of some boards
}


def _digest(kind: str, value: str) -> str:
    return hashlib.sha256(f"edge-agent hardware {kind} {value}".encode()).hexdigest()[:32]


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace").strip()
    except OSError:
        return ""


def _real(value: str) -> str:
    return "" if value.lower() in PLACEHOLDERS or set(value) <= {"0", "-", " ", "f", "F"} else value


@dataclass(frozen=True)
class Fingerprint:
    dmi_uuid: str = ""  # digests; "" when the firmware gives none
    dmi_serial: str = ""
    devices: frozenset[str] = frozenset()  # NIC permanent MACs and NVMe serials

    def to_json(self) -> dict[str, Any]:
        return {"dmi_uuid": self.dmi_uuid, "dmi_serial": self.dmi_serial, "devices": sorted(self.devices)}

    @classmethod
    def from_json(cls, raw: object) -> Fingerprint | None:
        if not isinstance(raw, dict):
            return None
        devices = raw.get("devices")
        return cls(
            dmi_uuid=str(raw.get("dmi_uuid") or ""),
            dmi_serial=str(raw.get("dmi_serial") or ""),
            devices=frozenset(str(d) for d in devices) if isinstance(devices, list) else frozenset(),
        )

    @property
    def key(self) -> str:
        """What names this hardware in a new node id: the strongest fact there is."""
        return self.dmi_uuid or self.dmi_serial or min(self.devices, default="")


def read(paths: Paths) -> Fingerprint:
    dmi = paths.under(DMI_DIR)
    uuid = _real(_read(dmi / "product_uuid").lower())
    serial = _real(_read(dmi / "product_serial"))
    devices: set[str] = set()
    net = paths.under(NET_DIR)
    if net.is_dir():
        for nic in net.iterdir():
            if not (nic / "device").exists() or _read(nic / "addr_assign_type") != "0":
                continue
            mac = _read(nic / "address").lower()
            if mac and mac != "00:00:00:00:00:00":
                devices.add(_digest("mac", mac))
    nvme = paths.under(NVME_DIR)
    if nvme.is_dir():
        for ctrl in nvme.iterdir():
            sn = _real(_read(ctrl / "serial"))
            if sn:
                devices.add(_digest("nvme", sn))
    return Fingerprint(
        dmi_uuid=_digest("dmi-uuid", uuid) if uuid else "",
        dmi_serial=_digest("dmi-serial", serial) if serial else "",
        devices=frozenset(devices),
    )


def boot_id(paths: Paths) -> str:
    """New at every boot; heartbeats carry it so the registrar can tell two boxes sharing one identity."""
    return _read(paths.under(BOOT_ID))


def moved(recorded: Fingerprint, current: Fingerprint) -> str:
    """Why ``current`` is other hardware than the identity was made on; '' when it is the same (or unknown)."""
    if recorded.dmi_uuid and current.dmi_uuid:
        return "" if recorded.dmi_uuid == current.dmi_uuid else "the DMI system UUID differs"
    if recorded.dmi_serial and current.dmi_serial:
        return "" if recorded.dmi_serial == current.dmi_serial else "the DMI system serial differs"
    if recorded.devices and current.devices and not recorded.devices & current.devices:
        return "none of its NICs or NVMe drives is here"
    return ""
