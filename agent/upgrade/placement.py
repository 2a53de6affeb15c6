"""Put a file in place: copy beside the target, fsync, rename over it, fsync the directory.

A running executable (k3s, k0s) is replaced, never rewritten; a crash leaves
the old file or the new one.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def copy_file(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src, dest)


def place_file(src: Path, dest: Path) -> None:
    """Copy ``src`` beside ``dest``, fsync, rename over ``dest`` (an executable is replaced, never rewritten)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
    try:
        shutil.copyfile(src, tmp)
        os.chmod(tmp, src.stat().st_mode & 0o777)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, dest)
        dfd = os.open(dest.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    finally:
        tmp.unlink(missing_ok=True)
