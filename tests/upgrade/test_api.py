"""POST/GET /v1/upgrades against the real app: refusals change nothing, 409, progress, deferral."""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import os
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.upgrade.manifest import host_architecture
from tests.upgrade.craft import entry, manifest_doc, signed_bundle
from tests.upgrade.fixtures import Box, app_for, make_box, replan, snapshot, wait_state

Client = TestClient[Any, Any]
PAYLOAD = hashlib.sha256(b"k3s").digest() * 4096


@pytest.fixture
def box(tmp_path: Path, release_key: Ed25519PrivateKey) -> Box:
    b = make_box(tmp_path, release_key)
    # a box that already runs something: the factory venv and a committed version
    for rel in ("opt/edge-agent/venv/bin/agentd", "var/lib/edge-agent/versions/0.1.0/venv/bin/agentd"):
        p = b.root / rel
        p.parent.mkdir(parents=True)
        p.write_text("#!/bin/sh\n")
        p.chmod(0o755)
    (b.root / "var/lib/edge-agent/versions/0.1.0/.staged").write_text("x\n")
    os.symlink("0.1.0", b.root / "var/lib/edge-agent/versions/current")
    return b


@pytest.fixture
async def client(box: Box, aiohttp_client: Any) -> Client:
    c: Client = await aiohttp_client(app_for(box.ctx))
    return c


def bad_bundle(case: str, out: Path, key: Ed25519PrivateKey) -> Path:
    doc = manifest_doc([entry("k3s", PAYLOAD)], kind="agent", version="0.2.0")
    good = [("k3s", PAYLOAD)]
    if case == "bad-signature":
        return signed_bundle(out, Ed25519PrivateKey.generate(), doc, good)
    if case == "wrong-hash":
        return signed_bundle(out, key, doc, [("k3s", PAYLOAD[:-1] + b"!")])
    if case == "truncated":
        signed_bundle(out, key, doc, good)
        out.write_bytes(out.read_bytes()[:20000])
        return out
    if case == "path-escape":
        return signed_bundle(out, key, manifest_doc([entry("../../../usr/bin/agentd", PAYLOAD)]), [])
    if case == "absolute-member":
        return signed_bundle(out, key, doc, [("/usr/local/bin/k3s", PAYLOAD)])
    if case == "wrong-architecture":
        other = "riscv64" if host_architecture() != "riscv64" else "amd64"
        return signed_bundle(out, key, {**doc, "architecture": other}, good)
    if case == "not-a-tar":
        out.write_bytes(b"<html>404</html>")
        return out
    raise AssertionError(case)


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("bad-signature", "bad signature"),
        ("wrong-hash", "sha256"),
        ("truncated", "truncated"),
        ("path-escape", "leaves the bundle"),
        ("absolute-member", "absolute"),
        ("wrong-architecture", "built for architecture"),
        ("not-a-tar", "corrupt"),
    ],
)
async def test_bad_bundles_fail_with_a_reason_and_change_nothing(
    box: Box, client: Client, tmp_path: Path, case: str, reason: str
) -> None:
    bundle = bad_bundle(case, tmp_path / f"{case}.tar", box.key)
    before = snapshot(box.root)
    resp = await client.post("/v1/upgrades", json={"source": str(bundle)})
    assert resp.status == 202
    assert resp.headers["Location"].startswith("/v1/upgrades/")
    doc = await wait_state(client, (await resp.json())["id"], {"failed", "committed", "checking"})
    assert doc["state"] == "failed"
    assert reason in doc["reason"]
    assert [s["state"] for s in doc["history"]][-1] == "failed"
    after = snapshot(box.root)
    assert after == {**before, "var/lib/edge-agent/bundles": "dir"} or after == before
    assert box.systemctl_calls() == []
    status = await (await client.get("/v1/status")).json()
    assert status["sections"]["upgrade"]["last"]["state"] == "failed"
    assert status["sections"]["upgrade"]["current"] == "0.1.0"


async def test_request_validation_names_the_field(client: Client) -> None:
    for body, field in [
        ({}, "source"),
        ({"source": "relative/path.tar"}, "source"),
        ({"source": "/x.tar", "force": "yes"}, "force"),
        ({"source": "/x.tar", "sorce": 1}, "sorce"),
    ]:
        resp = await client.post("/v1/upgrades", json=body)
        assert resp.status == 400
        assert resp.content_type == "application/problem+json"
        assert (await resp.json())["detail"].startswith(field)
    resp = await client.get("/v1/upgrades/nope")
    assert resp.status == 404


async def test_progress_is_visible_while_downloading_and_a_second_request_gets_409(
    box: Box, client: Client, aiohttp_server: Any, tmp_path: Path
) -> None:
    big = os.urandom(3 << 20)
    bundle = signed_bundle(
        tmp_path / "big.tar",
        box.key,
        manifest_doc([entry("images.tar", big)], kind="agent", version="0.2.0", architecture="sparc"),
        [("images.tar", big)],
    ).read_bytes()

    async def slow(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Length": str(len(bundle))})
        await resp.prepare(request)
        for i in range(0, len(bundle), 128 << 10):
            await resp.write(bundle[i : i + (128 << 10)])
            await asyncio.sleep(0.02)
        return resp

    app = web.Application()
    app.router.add_get("/bundle.tar", slow)
    server = await aiohttp_server(app)
    url = f"http://user:secret@127.0.0.1:{server.port}/bundle.tar?token=hunter2"
    first = await (await client.post("/v1/upgrades", json={"source": url})).json()
    assert "secret" not in first["source"] and "hunter2" not in first["source"]
    seen: list[tuple[int, int | None]] = []
    conflict_checked = False
    while True:
        doc = await (await client.get(f"/v1/upgrades/{first['id']}")).json()
        if doc["state"] != "downloading":
            break
        seen.append((doc["progress"]["bytes"], doc["progress"]["total"]))
        if not conflict_checked and doc["progress"]["bytes"] > 0:
            resp = await client.post("/v1/upgrades", json={"source": url})
            assert resp.status == 409
            problem = await resp.json()
            assert problem["active"] == first["id"] and "one upgrade at a time" in problem["detail"]
            conflict_checked = True
        await asyncio.sleep(0.05)
    assert conflict_checked
    partial = [b for b, t in seen if 0 < b < len(bundle)]
    assert len(partial) >= 2 and partial == sorted(partial)
    assert {t for _, t in seen if t is not None} == {len(bundle)}
    doc = await wait_state(client, first["id"], {"failed"})
    assert "built for architecture 'sparc'" in doc["reason"]
    listing = await (await client.get("/v1/upgrades")).json()
    assert listing["active"] is None and listing["items"][0]["id"] == first["id"]
    # the next request is accepted once the first one is final
    assert (await client.post("/v1/upgrades", json={"source": url})).status == 202


async def test_truncated_download_is_refused(box: Box, client: Client, tmp_path: Path) -> None:
    async def short_server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 30000)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(short_server, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    before = snapshot(box.root)
    async with server:
        rec = await (await client.post("/v1/upgrades", json={"source": f"http://127.0.0.1:{port}/b.tar"})).json()
        doc = await wait_state(client, rec["id"], {"failed"})
    assert "truncated download" in doc["reason"]
    assert not any(box.paths.bundles_dir.iterdir())
    assert {k: v for k, v in snapshot(box.root).items() if "bundles" not in k} == before


def _k3s_bundle(box: Box, tmp_path: Path) -> Path:
    doc = manifest_doc([entry("k3s", PAYLOAD)], kind="k3s", version="v1.33.2+k3s1")
    return signed_bundle(tmp_path / "k3s.tar", box.key, doc, [("k3s", PAYLOAD)])


async def test_k3s_bundle_on_a_box_without_kubernetes_is_refused_before_staging(
    box: Box, client: Client, tmp_path: Path
) -> None:
    before = snapshot(box.root)
    rec = await (await client.post("/v1/upgrades", json={"source": str(_k3s_bundle(box, tmp_path))})).json()
    doc = await wait_state(client, rec["id"], {"failed"})
    assert "this box runs no Kubernetes, not k3s" in doc["reason"]
    assert {k: v for k, v in snapshot(box.root).items() if "bundles" not in k} == before


async def test_maintenance_window_and_update_lock_defer_the_switch_and_say_why(
    tmp_path: Path, release_key: Ed25519PrivateKey, aiohttp_client: Any
) -> None:
    from datetime import UTC, datetime, timedelta

    from agent.upgrade import gate

    now = datetime.now(UTC)
    start, end = now + timedelta(hours=2), now + timedelta(hours=3)
    window = f"{start:%H:%M}-{end:%H:%M}"
    box = make_box(tmp_path, release_key, maintenance_window=window)
    (box.root / "var/lib/rancher/k3s/agent/images").mkdir(parents=True)
    client: Client = await aiohttp_client(app_for(box.ctx))
    from agent.model.config import AgentConfig

    box.ctx.config.set(
        AgentConfig.model_validate(
            {
                **box.ctx.config.value.model_dump(),
                "kubernetes": {"distribution": "k3s"},
            }
        )
    )
    replan(box.ctx)
    images = b"image-tarball" * 100
    doc = manifest_doc([entry("k3s-airgap-images-amd64.tar", images)], kind="airgap-images", version="v1.33.2")
    bundle = signed_bundle(tmp_path / "img.tar", release_key, doc, [("k3s-airgap-images-amd64.tar", images)])
    rec = await (await client.post("/v1/upgrades", json={"source": str(bundle)})).json()
    for _ in range(100):
        got = await (await client.get(f"/v1/upgrades/{rec['id']}")).json()
        if got["deferred"]:
            break
        await asyncio.sleep(0.05)
    assert got["state"] == "staged"
    assert f"outside the maintenance window {window} UTC" in got["deferred"]
    assert (await client.post("/v1/upgrades", json={"source": str(bundle)})).status == 409

    # the window opens, but a workload holds the update lock
    lock_path = box.paths.under(box.ctx.config.value.upgrade.update_lock)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    held = lock_path.open("w")
    fcntl.flock(held, fcntl.LOCK_EX)
    assert gate.Window.parse(window) is not None
    box.ctx.config.set(
        AgentConfig.model_validate(
            {
                **box.ctx.config.value.model_dump(),
                "upgrade": {**box.ctx.config.value.upgrade.model_dump(), "maintenance_window": ""},
            }
        )
    )
    replan(box.ctx)
    for _ in range(200):
        got = await (await client.get(f"/v1/upgrades/{rec['id']}")).json()
        if "update lock" in got["deferred"]:
            break
        await asyncio.sleep(0.1)
    assert f"update lock {lock_path} is held by a workload" in got["deferred"]
    held.close()
    got = await wait_state(client, rec["id"], {"committed", "failed", "rolled-back"}, timeout=15)
    assert got["state"] == "committed", got
    assert (box.root / "var/lib/rancher/k3s/agent/images/k3s-airgap-images-amd64.tar").read_bytes() == images


async def test_metrics_describe_the_upgrade_state(box: Box, client: Client, tmp_path: Path) -> None:
    from agent.api.upgrades import UPGRADES
    from agent.upgrade.metrics import metrics

    bundle = bad_bundle("wrong-hash", tmp_path / "b.tar", box.key)
    rec = await (await client.post("/v1/upgrades", json={"source": str(bundle)})).json()
    await wait_state(client, rec["id"], {"failed"})
    lines = list(metrics(client.app[UPGRADES]))
    assert 'edge_agent_upgrade_version_info{running="unmanaged",current="0.1.0"} 1' in lines
    assert "edge_agent_upgrade_in_progress 0" in lines
    assert 'edge_agent_upgrade_recent{state="failed"} 1' in lines
    names = {line.split("{")[0].split(" ")[0] for line in lines if not line.startswith("#")}
    helps = {line.split()[2] for line in lines if line.startswith("# HELP")}
    assert names <= helps and all(n.startswith("edge_agent_upgrade_") for n in names)


async def test_a_deferred_upgrade_can_be_cancelled_and_then_another_one_starts(
    tmp_path: Path, release_key: Ed25519PrivateKey, aiohttp_client: Any
) -> None:
    from datetime import UTC, datetime, timedelta

    from agent.model.config import AgentConfig

    opens = datetime.now(UTC) + timedelta(hours=5)
    window = f"{opens:%H:%M}-{opens + timedelta(hours=1):%H:%M}"
    box = make_box(tmp_path, release_key, maintenance_window=window)
    box.ctx.config = type(box.ctx.config)(
        AgentConfig.model_validate({**box.ctx.config.value.model_dump(), "kubernetes": {"distribution": "k3s"}})
    )
    replan(box.ctx)
    client: Client = await aiohttp_client(app_for(box.ctx))
    images = b"tarball" * 10
    doc = manifest_doc([entry("k3s-airgap-images-amd64.tar", images)], kind="airgap-images", version="v1.33.2")
    bundle = signed_bundle(tmp_path / "img.tar", release_key, doc, [("k3s-airgap-images-amd64.tar", images)])
    rec = await (await client.post("/v1/upgrades", json={"source": str(bundle)})).json()
    for _ in range(100):
        got = await (await client.get(f"/v1/upgrades/{rec['id']}")).json()
        if got["deferred"]:
            break
        await asyncio.sleep(0.05)
    assert got["state"] == "staged" and "outside the maintenance window" in got["deferred"]

    resp = await client.delete(f"/v1/upgrades/{rec['id']}")
    assert resp.status == 200
    cancelled = await resp.json()
    assert cancelled["state"] == "failed" and cancelled["reason"] == "cancelled by the operator"
    again = await client.delete(f"/v1/upgrades/{rec['id']}")
    assert again.status == 409 and "only an upgrade before its switch" in (await again.json())["detail"]
    assert (await client.delete("/v1/upgrades/nope")).status == 404
    assert not (box.root / "var/lib/rancher/k3s/agent/images").exists()  # the switch never happened
    assert (await client.post("/v1/upgrades", json={"source": str(bundle)})).status == 202
