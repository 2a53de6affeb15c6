"""Atomic file writes: the only way the agent writes a config, key, unit or state file.

temp file in the same directory -> write -> chmod -> fsync -> rename -> fsync dir.
A crash at any point leaves either the old file or the new one, never a mix.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes | str, mode: int = 0o644, dir_mode: int = 0o755) -> bool:
    """Write ``data`` to ``path`` atomically. Returns False (and writes nothing)
    when the file already holds exactly these bytes with this mode, so
    reconcilers stay idempotent without their own read-compare step."""
    raw = data.encode() if isinstance(data, str) else data
    with contextlib.suppress(FileNotFoundError):
        st = path.stat()
        if st.st_mode & 0o7777 == mode and st.st_size == len(raw) and path.read_bytes() == raw:
            return False
    path.parent.mkdir(parents=True, exist_ok=True, mode=dir_mode)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        os.fchmod(fd, mode)
        view = memoryview(raw)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    os.close(fd)
    os.replace(tmp, path)
    _fsync_dir(path.parent)
    return True


def atomic_write_json(path: Path, obj: Any, mode: int = 0o644) -> bool:
    return atomic_write(path, json.dumps(obj, indent=2, sort_keys=True) + "\n", mode)


def atomic_symlink(target: str | Path, link: Path) -> None:
    """Point ``link`` at ``target`` in one rename (used for version switches)."""
    link.parent.mkdir(parents=True, exist_ok=True)
    tmp = link.with_name(f".{link.name}.tmp-{os.getpid()}")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    os.symlink(target, tmp)
    os.replace(tmp, link)
    _fsync_dir(link.parent)


def remove_stale_temps(directory: Path) -> None:
    """Drop temp files a killed writer left behind (called at start-up)."""
    if not directory.is_dir():
        return
    for p in directory.glob(".*.tmp-*"):
        with contextlib.suppress(OSError):
            p.unlink()
