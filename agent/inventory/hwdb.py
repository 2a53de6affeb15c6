"""udev's hardware database: vendor and model names for a modalias.

udevd copies these names into each device's properties
(``ID_VENDOR_FROM_DATABASE``, ``ID_MODEL_FROM_DATABASE``); where udevd does
not run (containers, minimal VMs, early boot) the collectors ask the hwdb
directly through the same libudev. pyudev binds ``udev_hwdb_*`` but has no
public wrapper, so this reaches its libudev handle; any failure means "no
name", never an error.
"""

from __future__ import annotations

from typing import Any

import pyudev

try:
    from pyudev._util import udev_list_iterate
except ImportError:  # pragma: no cover - pyudev without its ctypes helpers
    udev_list_iterate = None


class Hwdb:
    def __init__(self, udev: pyudev.Context) -> None:
        self._lib: Any = getattr(udev, "_libudev", None)
        self._hwdb: Any = None
        self._cache: dict[str, tuple[str | None, str | None]] = {}
        if self._lib is not None and udev_list_iterate is not None:
            try:
                self._hwdb = self._lib.udev_hwdb_new(udev) or None
            except (AttributeError, OSError):
                self._hwdb = None

    def names(self, modalias: str | None) -> tuple[str | None, str | None]:
        """(vendor, model) for ``modalias``, each None when the hwdb has none."""
        if not modalias or self._hwdb is None:
            return None, None
        cached = self._cache.get(modalias)
        if cached is not None:
            return cached
        props: dict[bytes, bytes] = {}
        try:
            entry = self._lib.udev_hwdb_get_properties_list_entry(self._hwdb, modalias.encode(), 0)
            props = dict(udev_list_iterate(self._lib, entry))
        except (AttributeError, OSError, UnicodeEncodeError):
            pass

        def get(key: bytes) -> str | None:
            value = props.get(key)
            return value.decode("utf-8", "replace").strip() or None if value else None

        result = (get(b"ID_VENDOR_FROM_DATABASE"), get(b"ID_MODEL_FROM_DATABASE"))
        self._cache[modalias] = result
        return result
