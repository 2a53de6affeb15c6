"""A pyudev ``Context`` whose libudev is loaded by its soname, without running ldconfig.

``pyudev.Context()`` locates libudev with ``ctypes.util.find_library``, which runs
``/sbin/ldconfig -p`` and parses its output only to learn the soname
``libudev.so.1``: a subprocess at every agent start and every one-shot scan
(~6 ms on a quiet x86 box, far more under emulation). The dynamic loader finds
``libudev.so.1`` itself. The library gets the same function signatures pyudev
gives it, so every pyudev call behaves as with its own context. Should that
fail (another soname, pyudev's internals changed), pyudev's own lookup is used.
"""

from __future__ import annotations

import ctypes
from typing import Any

import pyudev

SONAME = "libudev.so.1"


def _load_libudev() -> Any:
    from pyudev._ctypeslib.libudev import ERROR_CHECKERS, SIGNATURES

    lib = ctypes.CDLL(SONAME, use_errno=True)
    for name, (argtypes, restype) in SIGNATURES.items():
        function = getattr(lib, name, None)
        if function is None:
            continue
        function.argtypes, function.restype = argtypes, restype
        checker = ERROR_CHECKERS.get(name)
        if checker:
            function.errcheck = checker
    return lib


class _SonameContext(pyudev.Context):  # type: ignore[misc]  # pyudev is untyped
    def __init__(self, libudev: Any) -> None:  # what pyudev.Context.__init__ does, minus find_library
        self._libudev = libudev
        self._as_parameter_ = libudev.udev_new()


def udev_context() -> pyudev.Context:
    try:
        return _SonameContext(_load_libudev())
    except (OSError, ImportError, AttributeError, TypeError, ValueError):
        return pyudev.Context()
