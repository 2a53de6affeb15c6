"""Installing the binary: air-gap or URL, always sha256-checked first, old binary kept on failure."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web

from .boxes import Box, standin_binary, write_bundle

K3S = "usr/local/bin/k3s"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def installed(box: Box) -> None:
    """Run one pass and return; conditions tell the rest."""
    await box.controller().reconcile()


async def test_checksum_mismatch_keeps_old_binary_and_says_so(make_box: Callable[..., Box]) -> None:
    box = make_box("b")
    box.bundle("k3s")
    box.set_config(distribution="k3s")
    await box.converge(box.controller())
    old = (box.root / K3S).read_bytes()

    new = standin_binary("v1.33.2+k3s1")
    write_bundle(box.root, "k3s", new, sums={"k3s": sha(b"something else")})
    await installed(box)
    cond = box.cond("Installed")
    assert (cond.status, cond.reason) == ("False", "InstallFailed")
    assert "checksum mismatch" in cond.message and "left in place" in cond.message
    assert (box.root / K3S).read_bytes() == old
    assert not list((box.root / "usr/local/bin").glob(".k3s.tmp-*"))
    # the running k3s is left alone
    assert box.run("systemctl", "is-active", "k3s").stdout.strip() == "active"


@pytest.mark.slow
async def test_upgrade_from_bundle_replaces_binary_and_restarts(make_box: Callable[..., Box]) -> None:
    box = make_box("b")
    box.bundle("k3s")
    box.set_config(distribution="k3s")
    await box.converge(box.controller())
    box.bundle("k3s", "v1.33.2+k3s1")
    box.set_config(distribution="k3s", version="v1.33.2+k3s1")
    n = len(box.calls())
    await box.converge(box.controller(), until=lambda: box.section()["version"] == "v1.33.2+k3s1")
    assert ["restart", "k3s.service"] in [c["argv"] for c in box.calls()[n:] if c["prog"] == "systemctl"]
    assert "v1.33.2+k3s1" in box.run(str(box.root / K3S), "--version").stdout


async def test_wrong_version_in_bundle_is_refused(make_box: Callable[..., Box]) -> None:
    box = make_box("b")
    box.bundle("k3s")
    box.set_config(distribution="k3s", version="v1.34.0+k3s1")
    await installed(box)
    cond = box.cond("Installed")
    assert cond.status == "False" and "v1.33.1+k3s1, but v1.34.0+k3s1 is wanted" in cond.message
    assert not (box.root / K3S).exists()


async def test_missing_binary(make_box: Callable[..., Box]) -> None:
    box = make_box("b")
    box.set_config(distribution="k0s")
    await installed(box)
    cond = box.cond("Installed")
    assert cond.status == "False" and "no k0s binary" in cond.message and "binary_url is not set" in cond.message
    assert (box.cond("Running").reason, box.cond("NodeReady").reason) == ("NotInstalled", "NotInstalled")
    assert box.section()["summary"] == "k0s (not installed) server node b: not running"


async def test_non_executable_payload_is_refused(make_box: Callable[..., Box]) -> None:
    box = make_box("b")
    junk = b"\x7fELF not really a program"
    write_bundle(box.root, "k3s", junk)
    box.set_config(distribution="k3s")
    await installed(box)
    cond = box.cond("Installed")
    assert cond.status == "False" and "airgap/k3s/k3s does not run (Exec format error)" in cond.message
    assert not (box.root / K3S).exists()


async def test_unlisted_binary_is_refused(make_box: Callable[..., Box]) -> None:
    box = make_box("b")
    d = write_bundle(box.root, "k3s", standin_binary())
    (d / "sha256sum.txt").write_text("")
    box.set_config(distribution="k3s")
    await installed(box)
    assert "refusing an unchecked binary" in box.cond("Installed").message


async def serve(aiohttp_server: Any, handler: Callable[[web.Request], Any]) -> str:
    app = web.Application()
    app.router.add_get("/k3s", handler)
    server = await aiohttp_server(app)
    return str(server.make_url("/k3s"))


async def test_download_from_url(make_box: Callable[..., Box], aiohttp_server: Any) -> None:
    payload = standin_binary()

    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=payload)

    url = await serve(aiohttp_server, handler)
    box = make_box("b")
    box.set_config(distribution="k3s", binary_url=url, binary_sha256=sha(payload))
    await box.converge(box.controller(), until=lambda: box.cond("Running").status == "True")
    assert box.cond("Installed").message.endswith(f"from {url}")
    assert (box.root / K3S).read_bytes() == payload
    assert (box.root / K3S).stat().st_mode & 0o777 == 0o755


async def test_truncated_download_is_refused(make_box: Callable[..., Box], aiohttp_server: Any) -> None:
    payload = standin_binary()

    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Length": str(len(payload))})
        await resp.prepare(request)
        await resp.write(payload[: len(payload) // 2])
        request.transport.close()  # type: ignore[union-attr]
        return resp

    url = await serve(aiohttp_server, handler)
    box = make_box("b")
    box.set_config(distribution="k3s", binary_url=url, binary_sha256=sha(payload))
    await installed(box)
    cond = box.cond("Installed")
    assert cond.status == "False" and url in cond.message
    assert not (box.root / K3S).exists()
    assert not list((box.root / "usr/local/bin").glob(".k3s.tmp-*"))


async def test_http_error(make_box: Callable[..., Box], aiohttp_server: Any) -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=404)

    url = await serve(aiohttp_server, handler)
    box = make_box("b")
    box.set_config(distribution="k3s", binary_url=url, binary_sha256="0" * 64)
    await installed(box)
    assert "HTTP 404" in box.cond("Installed").message


def test_parse_version_formats() -> None:
    from agent.runtime.version import parse_version

    assert parse_version("k3s", "k3s version v1.33.1+k3s1 (abcdef12)\ngo version go1.24.2\n") == "v1.33.1+k3s1"
    assert parse_version("k0s", "v1.36.3+k0s.1\n") == "v1.36.3+k0s.1"


@pytest.mark.parametrize(
    ("version", "says"),
    [("v1.35.0+k3s1", "skips a minor version"), ("v1.32.9+k3s1", "downgrades are not supported")],
)
async def test_skew_rules_refuse_minor_skips_and_downgrades(
    make_box: Callable[..., Box], version: str, says: str
) -> None:
    box = make_box("b")
    box.bundle("k3s")
    box.set_config(distribution="k3s")
    await installed(box)
    old = (box.root / K3S).read_bytes()
    box.bundle("k3s", version)
    await installed(box)
    cond = box.cond("Installed")
    assert (cond.status, cond.reason) == ("False", "UpgradeRefused") and says in cond.message
    assert (box.root / K3S).read_bytes() == old


def test_upgrade_problem() -> None:
    from agent.upgrade.skew import upgrade_problem

    assert upgrade_problem("v1.33.1+k3s1", "v1.33.2+k3s1") is None
    assert upgrade_problem("v1.33.1+k3s1", "v1.34.0+k3s1") is None
    assert upgrade_problem("v1.33.1+k3s2", "v1.33.1+k3s1") is not None
    assert upgrade_problem("v1.36.3+k0s.1", "v1.38.0+k0s.0") is not None
    assert upgrade_problem("v1.36.3+k0s.1", "v1.36.3+k0s.1") is None
    assert upgrade_problem("v1.36.3+k0s.1", "v2.0.0+k0s.0") is not None
