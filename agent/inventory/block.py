"""Block devices: one enumeration shared by the NVMe and disk collectors, and the root disk.

``root_disks`` answers "which whole disks hold the root filesystem": the
block device whose major:minor is the root's, its parent disk when it is a
partition, and the disks under it when it is a device-mapper or md device.
"""

from __future__ import annotations

import os
from typing import NamedTuple

import pyudev

from agent.inventory.enumerate import subsystem_devices
from agent.inventory.sysfs import listdir


class Block(NamedTuple):
    device: pyudev.Device
    name: str
    devtype: str
    devnum: str | None  # "major:minor"
    parent_disk: str | None  # for partitions


def scan_blocks(udev: pyudev.Context) -> list[Block]:
    blocks: list[Block] = []
    for dev in subsystem_devices(udev, "block"):
        try:
            props = dev.properties
            major, minor = props.get("MAJOR"), props.get("MINOR")
            devtype = props.get("DEVTYPE") or ""
            parent = os.path.basename(os.path.dirname(dev.sys_path)) if devtype == "partition" else None
        except (OSError, pyudev.DeviceNotFoundError):
            continue
        devnum = f"{major}:{minor}" if major and minor else None
        blocks.append(Block(dev, dev.sys_name, devtype, devnum, parent))
    return blocks


def root_devnum(root: str = "/") -> str | None:
    """major:minor of the filesystem mounted at ``root`` (None for a virtual one, e.g. overlay)."""
    try:
        st = os.stat(root)
    except OSError:
        return None
    if os.major(st.st_dev) == 0:
        return None
    return f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}"


def root_disks(blocks: list[Block], devnum: str | None) -> frozenset[str]:
    """Names of the whole disks the root filesystem lives on."""
    if devnum is None:
        return frozenset()
    by_num = {b.devnum: b for b in blocks if b.devnum}
    by_name = {b.name: b for b in blocks}
    start = by_num.get(devnum)
    if start is None:
        return frozenset()
    found: set[str] = set()
    todo = [start]
    seen: set[str] = set()
    while todo:
        b = todo.pop()
        if b.name in seen:
            continue
        seen.add(b.name)
        if b.parent_disk:
            parent = by_name.get(b.parent_disk)
            if parent is not None:
                todo.append(parent)
            continue
        slaves = [by_name[s] for s in listdir(os.path.join(b.device.sys_path, "slaves")) if s in by_name]
        if slaves:
            todo.extend(slaves)
        else:
            found.add(b.name)
    return frozenset(found)
