"""The hotplug monitor: a pyudev netlink monitor read from the asyncio loop (no thread, no polling).

``loop.add_reader`` watches the monitor's socket; when it is readable every
queued event is drained without blocking and handed to ``on_event``.
``source`` is "udev" (events after udevd processed them: the normal case)
or "kernel" (raw kernel uevents, for boxes without udevd).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Literal

import pyudev

from agent.errors import HotplugError
from agent.paths import Paths

log = logging.getLogger("agent.inventory.hotplug")

SUBSYSTEMS = ("pci", "nvme", "nvme-subsystem", "block", "net", "drm", "infiniband", "platform")
Source = Literal["udev", "kernel"]


def default_source(paths: Paths) -> Source:
    """udev when udevd runs (it re-broadcasts processed events), else the kernel's own."""
    return "udev" if paths.under("/run/udev/control").exists() else "kernel"


class HotplugMonitor:
    def __init__(
        self,
        udev: pyudev.Context,
        on_event: Callable[[str, str, str], None],
        source: Source,
    ) -> None:
        self.udev = udev
        self.on_event = on_event
        self.source = source
        self._monitor: pyudev.Monitor | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            monitor = pyudev.Monitor.from_netlink(self.udev, source=self.source)
            for subsystem in SUBSYSTEMS:
                monitor.filter_by(subsystem)
            monitor.start()
        except (OSError, ValueError) as exc:
            raise HotplugError(f"cannot open the {self.source} uevent monitor: {exc}") from exc
        self._monitor = monitor
        self._loop = loop
        loop.add_reader(monitor.fileno(), self._drain)

    def stop(self) -> None:
        if self._monitor is not None and self._loop is not None:
            self._loop.remove_reader(self._monitor.fileno())
        self._monitor = None

    def _drain(self) -> None:
        monitor = self._monitor
        if monitor is None:
            return
        while True:
            try:
                dev = monitor.poll(timeout=0)
            except (OSError, pyudev.DeviceNotFoundError) as exc:
                # lost or unreadable event (ENOBUFS after a burst): rescan to be safe
                log.warning("hotplug: unreadable uevent (%s); rescanning", exc)
                self.on_event("lost", "", "")
                return
            if dev is None:
                return
            self.on_event(dev.action or "change", dev.subsystem or "", dev.sys_path)
