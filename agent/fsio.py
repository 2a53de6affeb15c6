"""Atomic file writes: the only way the agent writes a config, key, unit, binary or state file.

temp file in the same directory -> write -> chmod -> fsync -> rename -> fsync dir.
A crash at any point leaves either the old file or the new one, never a mix.
``StagedFile`` is the same for content that arrives in chunks (downloads), hashed on the way.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path
from types import TracebackType
from typing import Any

CHUNK = 1 << 20


def fsync_dir(directory: Path) -> None:
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
    try:
        os.replace(tmp, path)
    except BaseException:  # e.g. a directory in the way: leave nothing half-written beside it
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)
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
    fsync_dir(link.parent)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


class StagedFile:
    """A file written in chunks beside its destination and hashed as it goes; ``commit`` puts it in
    place with one rename, leaving it (or the exception) drops it. Nothing half-written is ever at
    ``dest``."""

    def __init__(self, dest: Path) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        self.dest = dest
        self.tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
        self._fd: int | None = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        self._hash = hashlib.sha256()
        self._committed = False

    def write(self, chunk: bytes) -> None:
        assert self._fd is not None, "write after finish"
        self._hash.update(chunk)
        view = memoryview(chunk)
        while view:
            view = view[os.write(self._fd, view) :]

    def finish(self) -> str:
        """Flush to disk and close; returns the sha256 of what was written."""
        if self._fd is not None:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = None
        return self._hash.hexdigest()

    def commit(self, mode: int) -> None:
        self.finish()
        os.chmod(self.tmp, mode)
        os.replace(self.tmp, self.dest)
        fsync_dir(self.dest.parent)
        self._committed = True

    def __enter__(self) -> StagedFile:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if not self._committed:
            with contextlib.suppress(FileNotFoundError):
                self.tmp.unlink()


def copy_atomic(src: Path, dest: Path, mode: int | None = None) -> str:
    """Copy ``src`` into place with one rename (a running executable is replaced, never rewritten);
    ``mode`` defaults to the source's. Returns the sha256 of what was copied."""
    with StagedFile(dest) as staged, src.open("rb") as f:
        while chunk := f.read(CHUNK):
            staged.write(chunk)
        digest = staged.finish()
        staged.commit(mode if mode is not None else src.stat().st_mode & 0o777)
    return digest


def remove_stale_temps(directory: Path) -> None:
    """Drop temp files a killed writer left behind (called at start-up)."""
    if not directory.is_dir():
        return
    for p in directory.glob(".*.tmp-*"):
        with contextlib.suppress(OSError):
            p.unlink()
