"""Fetch a bundle into bundles/ from an https URL or a local path, with byte progress.

Network reads run on the event loop (aiohttp); file writes and local copies run
in a worker thread in 1 MiB chunks, so status requests keep being answered.
A body shorter than its Content-Length is a truncated download and refused.
A local source must be a regular file: a device (/dev/zero), FIFO, socket or
directory is refused before a byte is read. Copies and downloads stop at the
same size cap (``MAX_BUNDLE``); on any failure the partial file is removed.
"""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path
from typing import IO

from agent.download import MAX_DOWNLOAD, Download, size_text
from agent.errors import BundleError, DownloadError
from agent.upgrade.progress import Progress
from agent.urls import is_url

CHUNK = 1 << 20
MAX_BUNDLE = MAX_DOWNLOAD

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
)


def _check_size(size: int | None, where: str, limit: int) -> None:
    if size is not None and size > limit:
        raise BundleError(f"{where}: bundle is larger than the {size_text(limit)} limit")


async def fetch(
    source: str, dest: Path, progress: Progress, *, timeout: float = 60.0, max_bytes: int = MAX_BUNDLE
) -> Path:
    """Download or copy ``source`` to ``dest``; BundleError on any failure, with ``dest`` removed."""
    dest.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        if is_url(source):
            await _download(source, dest, progress, timeout, max_bytes)
        else:
            await _copy(Path(source), dest, progress, max_bytes)
    except BaseException:
        await asyncio.to_thread(dest.unlink, missing_ok=True)
        raise
    return dest


def _not_regular(mode: int) -> str:
    return next((what for test, what in _KINDS if test(mode)), "not a regular file")


def open_regular(src: Path) -> IO[bytes]:
    """``src`` opened for reading, if it is a regular file; BundleError naming what it is otherwise.

    The type is checked before opening (so a device is never opened) and again on the
    open descriptor (so a path swapped in between is caught); O_NONBLOCK keeps a FIFO
    from blocking the open."""
    try:
        st = src.stat()
        if not stat.S_ISREG(st.st_mode):
            raise BundleError(f"{src}: is {_not_regular(st.st_mode)}; a bundle must be a regular file")
        fd = os.open(src, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        raise BundleError(f"{src}: cannot read bundle: {exc.strerror}") from exc
    except ValueError as exc:  # an embedded NUL byte
        raise BundleError(f"{src!r}: not a usable path: {exc}") from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise BundleError(f"{src}: is {_not_regular(st.st_mode)}; a bundle must be a regular file")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


async def _copy(src: Path, dest: Path, progress: Progress, limit: int) -> None:
    if not src.is_absolute():
        raise BundleError(f"{src}: a local bundle must be given by absolute path")
    r = await asyncio.to_thread(open_regular, src)

    def copy() -> None:
        with r, dest.open("wb") as w:
            size = os.fstat(r.fileno()).st_size
            _check_size(size, str(src), limit)
            progress.reset(size)
            done = 0
            while chunk := r.read(CHUNK):
                done += len(chunk)
                _check_size(done, str(src), limit)  # a file that grows while being copied
                w.write(chunk)
                progress.advance(len(chunk))

    try:
        await asyncio.to_thread(copy)
    except OSError as exc:
        if isinstance(exc, InterruptedError):
            raise
        raise BundleError(f"{src}: cannot copy bundle: {exc.strerror or exc}") from exc


async def _download(url: str, dest: Path, progress: Progress, timeout: float, limit: int) -> None:
    try:
        async with Download(url, connect_timeout=timeout, read_timeout=timeout, max_bytes=limit) as dl:
            progress.reset(dl.total)
            out: IO[bytes] = await asyncio.to_thread(dest.open, "wb")
            try:
                buf = bytearray()
                async for chunk in dl.chunks():
                    buf += chunk
                    progress.advance(len(chunk))
                    if len(buf) >= CHUNK:
                        await asyncio.to_thread(out.write, bytes(buf))
                        buf.clear()
                await asyncio.to_thread(out.write, bytes(buf))
            finally:
                await asyncio.to_thread(out.close)
    except DownloadError as exc:
        raise BundleError(str(exc)) from exc
