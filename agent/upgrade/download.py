"""Fetch a bundle into bundles/ from an https URL or a local path, with byte progress.

Network reads run on the event loop (aiohttp); file writes and local copies run
in a worker thread in 1 MiB chunks, so status requests keep being answered.
A body shorter than its Content-Length is a truncated download and refused.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import IO

from agent.download import Download
from agent.errors import BundleError, DownloadError
from agent.upgrade.progress import Progress

CHUNK = 1 << 20
MAX_BUNDLE = 8 << 30  # no edge box has room for more; a source streaming forever is cut off here


def _check_size(size: int | None, where: str) -> None:
    if size is not None and size > MAX_BUNDLE:
        raise BundleError(f"{where}: bundle is larger than the {MAX_BUNDLE >> 30} GiB limit")


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


async def fetch(source: str, dest: Path, progress: Progress, *, timeout: float = 60.0) -> Path:
    """Download or copy ``source`` to ``dest``; BundleError on any failure."""
    dest.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        if is_url(source):
            await _download(source, dest, progress, timeout)
        else:
            await _copy(Path(source), dest, progress)
    except BaseException:
        await asyncio.to_thread(dest.unlink, missing_ok=True)
        raise
    return dest


async def _copy(src: Path, dest: Path, progress: Progress) -> None:
    if not src.is_absolute():
        raise BundleError(f"{src}: a local bundle must be given by absolute path")
    try:
        size = (await asyncio.to_thread(src.stat)).st_size
    except OSError as exc:
        raise BundleError(f"{src}: cannot read bundle: {exc.strerror}") from exc
    _check_size(size, str(src))
    progress.reset(size)

    def copy() -> None:
        with src.open("rb") as r, dest.open("wb") as w:
            while chunk := r.read(CHUNK):
                w.write(chunk)
                progress.advance(len(chunk))

    try:
        await asyncio.to_thread(copy)
    except OSError as exc:
        if isinstance(exc, InterruptedError):
            raise
        raise BundleError(f"{src}: cannot copy bundle: {exc.strerror or exc}") from exc


async def _download(url: str, dest: Path, progress: Progress, timeout: float) -> None:
    try:
        async with Download(url, connect_timeout=timeout, read_timeout=timeout) as dl:
            _check_size(dl.total, dl.shown)
            progress.reset(dl.total)
            out: IO[bytes] = await asyncio.to_thread(dest.open, "wb")
            try:
                buf = bytearray()
                async for chunk in dl.chunks():
                    buf += chunk
                    progress.advance(len(chunk))
                    _check_size(progress.done, dl.shown)
                    if len(buf) >= CHUNK:
                        await asyncio.to_thread(out.write, bytes(buf))
                        buf.clear()
                await asyncio.to_thread(out.write, bytes(buf))
            finally:
                await asyncio.to_thread(out.close)
    except DownloadError as exc:
        raise BundleError(str(exc)) from exc
