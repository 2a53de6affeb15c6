"""Bundle sources that never end or are not files: refused cleanly, nothing left behind.

Real parts only: an HTTP server on 127.0.0.1 that streams past the cap, a real FIFO,
/dev/zero, a directory and a bound unix socket; the API test posts to the real app.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.download import Download
from agent.errors import BundleError, DownloadError
from agent.upgrade.download import fetch
from agent.upgrade.progress import Progress
from tests.upgrade.fixtures import Box, app_for, make_box, wait_state

CAP = 1 << 20
GUARD = 30  # seconds: a source that blocks or never ends must not hang the suite


class Streamer:
    """An HTTP server on 127.0.0.1 that sends far more than the cap (64 MiB)."""

    def __init__(self, announce: bool) -> None:
        self.announce = announce

    async def handler(self, request: web.Request) -> web.StreamResponse:
        headers = {"Content-Length": str(64 * CAP)} if self.announce else {}
        resp = web.StreamResponse(headers=headers)
        await resp.prepare(request)
        try:
            for _ in range(64):
                await resp.write(b"z" * CAP)
        except (ConnectionError, asyncio.CancelledError):
            pass
        return resp


@pytest.fixture
async def streamer_url(aiohttp_server: Any, request: pytest.FixtureRequest) -> AsyncIterator[tuple[str, Streamer]]:
    streamer = Streamer(announce=request.param)
    app = web.Application()
    app.router.add_get("/bundle.tar", streamer.handler)
    server = await aiohttp_server(app)
    yield f"http://127.0.0.1:{server.port}/bundle.tar", streamer


@pytest.mark.parametrize("streamer_url", [False, True], ids=["chunked", "content-length"], indirect=True)
async def test_a_download_past_the_cap_stops_there_and_leaves_no_file(
    tmp_path: Path, streamer_url: tuple[str, Streamer]
) -> None:
    url, _ = streamer_url
    dest_dir = tmp_path / "bundles"
    progress = Progress()
    with pytest.raises(BundleError, match=r"larger than the 1 MiB limit"):
        await asyncio.wait_for(fetch(url, dest_dir / "x.bundle", progress, max_bytes=CAP), GUARD)
    assert list(dest_dir.iterdir()) == []
    assert progress.done <= CAP


@pytest.mark.parametrize("streamer_url", [False], ids=["chunked"], indirect=True)
async def test_the_binary_download_stops_at_its_cap_too(streamer_url: tuple[str, Streamer]) -> None:
    url, _ = streamer_url
    got = 0
    with pytest.raises(DownloadError, match=r"larger than the 1 MiB limit; stopped after"):
        async with Download(url, max_bytes=CAP) as dl:
            async for chunk in dl.chunks():
                got += len(chunk)
    assert got <= CAP


async def test_a_local_file_over_the_cap_is_refused_and_leaves_no_file(tmp_path: Path) -> None:
    src = tmp_path / "big.tar"
    src.write_bytes(b"b" * (CAP + 1))
    dest_dir = tmp_path / "bundles"
    with pytest.raises(BundleError, match=rf"{src}: bundle is larger than the 1 MiB limit"):
        await fetch(str(src), dest_dir / "x.bundle", Progress(), max_bytes=CAP)
    assert list(dest_dir.iterdir()) == []


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "bundle.fifo"
    os.mkfifo(path)
    return path


@pytest.fixture
def unix_socket(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "bundle.sock"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(path))
    s.listen()
    yield path
    s.close()


async def test_sources_that_are_not_regular_files_are_refused(tmp_path: Path, fifo: Path, unix_socket: Path) -> None:
    dest_dir = tmp_path / "bundles"
    cases = [
        (Path("/dev/zero"), "a character device"),
        (fifo, "a FIFO"),
        (tmp_path, "a directory"),
        (unix_socket, "a socket"),
    ]
    for src, what in cases:
        progress = Progress()
        with pytest.raises(BundleError) as info:
            await asyncio.wait_for(fetch(str(src), dest_dir / "x.bundle", progress), GUARD)
        assert str(info.value) == f"{src}: is {what}; a bundle must be a regular file"
        assert progress.done == 0
        assert list(dest_dir.iterdir()) == []


@pytest.fixture
async def box_client(tmp_path: Path, release_key: Ed25519PrivateKey, aiohttp_client: Any) -> tuple[Box, TestClient]:
    box = make_box(tmp_path, release_key)
    client: TestClient = await aiohttp_client(app_for(box.ctx))
    return box, client


async def test_posting_dev_zero_or_a_fifo_fails_the_upgrade_with_the_reason(
    box_client: tuple[Box, TestClient], fifo: Path
) -> None:
    box, client = box_client
    for src, what in ((Path("/dev/zero"), "a character device"), (fifo, "a FIFO")):
        resp = await client.post("/v1/upgrades", json={"source": str(src)})
        assert resp.status == 202
        doc = await wait_state(client, (await resp.json())["id"], {"failed"}, timeout=GUARD)
        assert doc["reason"] == f"{src}: is {what}; a bundle must be a regular file"
        assert doc["progress"]["bytes"] == 0
        assert list(box.paths.bundles_dir.iterdir()) == []
