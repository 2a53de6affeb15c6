"""Agent self-upgrade through the API: stage a real venv from a wheel, switch, restart,
and the next process commits (healthy) or records the launcher's rollback."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.sysexec import ProcessRunner
from agent.upgrade import settle
from agent.upgrade.controller import UpgradeController
from agent.upgrade.installers import default_installers
from agent.upgrade.manager import UpgradeManager
from agent.upgrade.slots import Slots
from tests.upgrade.fixtures import Box, agent_bundle, app_for, make_agent_box, make_ctx, wait_state

Client = TestClient[Any, Any]


@pytest.fixture
def box(tmp_path: Path, release_key: Ed25519PrivateKey) -> Box:
    return make_agent_box(tmp_path, release_key)


async def serve_socket(app: web.Application, socket: Path) -> web.AppRunner:
    runner = web.AppRunner(app)
    await runner.setup()
    socket.parent.mkdir(parents=True, exist_ok=True)
    await web.UnixSite(runner, str(socket)).start()
    return runner


@pytest.mark.slow
async def test_agent_upgrade_stages_a_venv_switches_and_the_new_process_commits(
    box: Box, tmp_path: Path, aiohttp_client: Any
) -> None:
    client: Client = await aiohttp_client(app_for(box.ctx))
    bundle = agent_bundle(box, tmp_path, "0.2.0")
    rec = await (await client.post("/v1/upgrades", json={"source": str(bundle)})).json()
    doc = await wait_state(client, rec["id"], {"checking", "failed"}, timeout=60)
    assert doc["state"] == "checking", doc
    assert [s["state"] for s in doc["history"]] == ["downloading", "verifying", "staged", "switching", "checking"]
    assert doc["previous_version"] == "factory"
    slots = Slots(box.paths.versions_dir, box.root / "opt/edge-agent/venv")
    assert slots.current() == "0.2.0"
    agentd = box.paths.versions_dir / "0.2.0/venv/bin/agentd"
    proc = await asyncio.create_subprocess_exec(str(agentd), stdout=asyncio.subprocess.PIPE)
    assert (await proc.communicate())[0] == b"agentd 0.2.0\n"  # a real, runnable environment
    assert slots.trial() is not None and slots.trial().upgrade_id == rec["id"]  # type: ignore[union-attr]
    assert box.systemctl_calls() == ["restart --no-block edge-agent.service"]
    assert not any(box.paths.bundles_dir.iterdir())
    assert (await client.post("/v1/upgrades", json={"source": str(bundle)})).status == 409

    # systemd restarts us: the launcher runs 0.2.0, whose controller commits once healthy
    ctx2 = make_ctx(box.root, box.key, box.calls, health_deadline=6)  # settles after 1.5 s
    manager2 = UpgradeManager(ctx2, running_slot="0.2.0", installers=default_installers(ctx2))
    api = await serve_socket(app_for(ctx2), box.paths.socket)
    try:
        task = asyncio.create_task(UpgradeController(ctx2, manager2).run())
        for _ in range(200):
            if manager2.active is None:
                break
            await asyncio.sleep(0.05)
        task.cancel()
    finally:
        await api.cleanup()
    final = manager2.get(rec["id"])
    assert final is not None and final.state == "committed", final
    assert slots.trial() is None and slots.read()["committed"] == "0.2.0"
    section = ctx2.board.sections()["upgrade"]
    assert section["running"] == "0.2.0" and section["last"]["state"] == "committed"
    cond = ctx2.board.condition("UpgradeSucceeded")
    assert cond is not None and cond.status == "True"


async def test_old_version_records_the_launchers_rollback_reason(box: Box, tmp_path: Path) -> None:
    # state as left by a switch to 0.3.0 whose process never became healthy
    slots = Slots(box.paths.versions_dir, box.root / "opt/edge-agent/venv")
    for v in ("0.2.0", "0.3.0"):
        agentd = box.paths.versions_dir / v / "venv/bin/agentd"
        agentd.parent.mkdir(parents=True)
        agentd.write_text("#!/bin/sh\n")
        agentd.chmod(0o755)
        (box.paths.versions_dir / v / ".staged").write_text("x\n")
    slots.switch("0.2.0", deadline_s=10)
    slots.commit("0.2.0")
    record = {
        "id": "abc123",
        "source": "/b.tar",
        "state": "checking",
        "kind": "agent",
        "version": "0.3.0",
        "previous_version": "0.2.0",
    }
    box.ctx.store.put("upgrade", {"active": "abc123", "records": [record]})
    slots.switch("0.3.0", deadline_s=10, upgrade_id="abc123")
    slots.rollback("version 0.3.0 did not become healthy within 10s")  # what the launcher's guard does
    ctx = make_ctx(box.root, box.key, box.calls)
    manager = UpgradeManager(ctx, running_slot="0.2.0", installers=default_installers(ctx))
    await settle.cleanup_at_start(manager)
    await asyncio.wait_for(settle.resume(manager), 5)
    rec = manager.get("abc123")
    assert rec is not None and rec.state == "rolled-back"
    assert rec.reason == "version 0.3.0 did not become healthy within 10s"
    stored = ctx.store.get("upgrade")
    assert stored["active"] is None


@pytest.mark.slow
async def test_blocked_version_is_refused_unless_forced_and_failed_restart_rolls_back(
    box: Box, tmp_path: Path, aiohttp_client: Any
) -> None:
    slots = Slots(box.paths.versions_dir, box.root / "opt/edge-agent/venv")
    doc = {"schema": 1, "trial": None, "failures": {"0.2.0": 2}, "last_rollback": None, "committed": None}
    box.paths.versions_dir.mkdir(parents=True)
    (box.paths.versions_dir / "launch.json").write_text(json.dumps(doc))
    assert slots.blocked("0.2.0")
    client: Client = await aiohttp_client(app_for(box.ctx))
    bundle = agent_bundle(box, tmp_path, "0.2.0")
    rec = await (await client.post("/v1/upgrades", json={"source": str(bundle)})).json()
    got = await wait_state(client, rec["id"], {"failed", "checking"})
    assert got["state"] == "failed"
    assert "failed 2 times on this box and is blocked; only a request with force" in got["reason"]
    assert got["code"] == "version-blocked"
    assert slots.installed() == []

    # the stand-in systemctl is told to fail the restart
    runner = box.ctx.runner
    assert isinstance(runner, ProcessRunner)
    box.ctx.runner = ProcessRunner(path=runner.path, base_env={**runner.base_env, "UPGRADE_STANDIN_FAIL": "1"})
    rec = await (await client.post("/v1/upgrades", json={"source": str(bundle), "force": True})).json()
    got = await wait_state(client, rec["id"], {"failed", "rolled-back", "committed"}, timeout=60)
    assert got["state"] == "rolled-back"
    assert "could not restart the agent" in got["reason"]
    assert slots.current() is None and slots.trial() is None
    assert slots.failures("0.2.0") == 3  # forcing did not lift the block; the failure adds to it
