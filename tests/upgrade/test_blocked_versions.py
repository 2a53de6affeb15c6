"""What failed stays failed: one failed trial of an agent version blocks it on the box for every
unforced request; a forced retry keeps the block and, failing again, grows the count.

The trial is real: a signed bundle through the API, a venv staged from a wheel whose agentd
crashes, the switch, and the launcher's own decision (``Slots.choose``, once per restart that
systemd would make) that rolls it back."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.api.app import ApiInfo, build_app
from agent.api.upgrades import UpgradeRoutes
from agent.upgrade import settle
from agent.upgrade.installers import default_installers
from agent.upgrade.manager import UpgradeManager
from agent.upgrade.slots import Slots
from tests.upgrade.fixtures import Box, agent_bundle, make_agent_box, wait_state

Client = TestClient[Any, Any]
CRASH = "import sys; print('candidate crashing', file=sys.stderr); sys.exit(3)"


@pytest.fixture
def box(tmp_path: Path, release_key: Ed25519PrivateKey) -> Box:
    return make_agent_box(tmp_path, release_key)


async def crash_trial(client: Client, manager: UpgradeManager, slots: Slots, bundle: Path, force: bool) -> str:
    """Request the upgrade, let the candidate crash until the launcher rolls back; the record's state."""
    rec = await (await client.post("/v1/upgrades", json={"source": str(bundle), "force": force})).json()
    doc = await wait_state(client, rec["id"], {"checking", "failed"}, timeout=60)
    assert doc["state"] == "checking", doc
    for _ in range(10):  # each systemd restart asks the launcher; the crashing candidate never commits
        launch = slots.choose()
        if launch.version != "2.0":
            break
        proc = await asyncio.create_subprocess_exec(str(launch.agentd), stderr=asyncio.subprocess.PIPE)
        _, err = await proc.communicate()
        assert proc.returncode == 3 and b"candidate crashing" in err
    await asyncio.wait_for(settle.resume(manager), 10)
    final = await (await client.get(f"/v1/upgrades/{rec['id']}")).json()
    return str(final["state"])


async def request(client: Client, bundle: Path, force: bool = False) -> dict[str, Any]:
    rec = await (await client.post("/v1/upgrades", json={"source": str(bundle), "force": force})).json()
    return await wait_state(client, rec["id"], {"checking", "failed", "committed", "rolled-back"}, timeout=60)


@pytest.mark.slow
async def test_one_failed_trial_blocks_the_version_and_a_forced_retry_keeps_the_block(
    box: Box, tmp_path: Path, aiohttp_client: Any
) -> None:
    manager = UpgradeManager(box.ctx, installers=default_installers(box.ctx))
    client: Client = await aiohttp_client(build_app(box.ctx, ApiInfo(), modules=[UpgradeRoutes(manager)]))
    slots = Slots(box.paths.versions_dir, box.root / "opt/edge-agent/venv")
    bundle = agent_bundle(box, tmp_path, "2.0", script=CRASH)

    assert await crash_trial(client, manager, slots, bundle, force=False) == "rolled-back"
    assert slots.read()["failures"] == {"2.0": 1}
    section = (await (await client.get("/v1/status")).json())["sections"]["upgrade"]
    assert section["blocked"] == ["2.0"]
    assert section["blocked_versions"] == {"agent": {"2.0": 1}}
    assert "blocked: agent 2.0 (failed 1x)" in section["summary"]

    # the second, unforced request is refused before anything switches
    restarts = len(box.systemctl_calls())
    again = await request(client, bundle)
    assert again["state"] == "failed" and again["code"] == "version-blocked", again
    assert "agent version 2.0 failed once on this box and is blocked" in again["reason"]
    assert len(box.systemctl_calls()) == restarts and slots.current() is None and slots.trial() is None

    # forced: tried (the operator's decision); it fails too, and the block stays with a higher count
    assert await crash_trial(client, manager, slots, bundle, force=True) == "rolled-back"
    assert slots.read()["failures"] == {"2.0": 2}
    after_force = await request(client, bundle)
    assert after_force["state"] == "failed" and after_force["code"] == "version-blocked", after_force
    assert "failed 2 times" in after_force["reason"]
    assert slots.current() is None
