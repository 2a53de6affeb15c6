"""Listing the devices of one subsystem as pyudev devices.

libudev's enumerator (``Context.list_devices``) walks and filters every
candidate through its own device cache; listing the subsystem's sysfs
directory and wrapping each entry with ``Devices.from_sys_path`` finds the
same devices several times faster, which keeps a hotplug rescan of a large
box within its 20 ms budget. A device that vanishes between the listing and
the wrapping is simply not there.
"""

from __future__ import annotations

import os

import pyudev


def subsystem_devices(udev: pyudev.Context, subsystem: str) -> list[pyudev.Device]:
    sys_root = udev.sys_path
    found: dict[str, pyudev.Device] = {}
    for base in (f"{sys_root}/bus/{subsystem}/devices", f"{sys_root}/class/{subsystem}"):
        try:
            names = os.listdir(base)
        except OSError:
            continue
        for name in sorted(names):
            entry = os.path.join(base, name)
            try:  # one readlink instead of realpath's lstat of every component
                path = os.path.normpath(os.path.join(base, os.readlink(entry)))
            except OSError:
                path = entry
            if path in found:
                continue
            try:
                found[path] = pyudev.Devices.from_sys_path(udev, path)
            except (pyudev.DeviceNotFoundError, OSError):
                continue
    return list(found.values())
