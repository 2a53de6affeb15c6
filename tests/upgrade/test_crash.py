"""SIGKILL an agent upgrade at every step; the box comes back on the old or the new version.

A real process runs the upgrade pipeline (local bundle with a real wheel, real
venv staging) and is killed at one step. Then the launcher starts the box
under a stand-in ``Restart=always``, and a fresh manager settles the records.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.upgrade import bundle_tool, settle
from agent.upgrade.installers import default_installers
from agent.upgrade.manager import UpgradeManager
from agent.upgrade.signing import private_key_pem
from tests.upgrade.boxes import FAKE_AGENTD, REPO, FakeSystemd, fake_version, slots, wait_api
from tests.upgrade.fixtures import make_ctx
from tests.upgrade.wheels import agent_wheel

KILLER = """
import asyncio, os, signal, sys
from pathlib import Path
sys.path.insert(0, {repo!r})
from agent.upgrade import bundle_tool
from agent.upgrade.installers import default_installers
from agent.upgrade.manager import UpgradeManager
from agent.upgrade.slots import Slots
from tests.upgrade.fixtures import make_ctx

root, key, bundle, point = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4]
calls = root.parent / "systemctl.log"
ctx = make_ctx(root, bundle_tool.read_private_key(key), calls, health_deadline=30)

def die(step=None):
    if step is None or step == point:
        os.kill(os.getpid(), signal.SIGKILL)

async def main():
    m = UpgradeManager(ctx, running_slot="1.0", installers=default_installers(ctx))
    m.slots = Slots(m.slots.dir, m.slots.factory_venv, step_hook=die)
    rec = m.start(bundle)
    venv = root / "var/lib/edge-agent/versions/2.0/venv"
    while not rec.final:
        if point == "downloading" and m.progress.done > 0:
            die()
        if point == "verifying" and rec.state == "verifying" and m.progress.done > 0:
            die()
        if point == "installing" and venv.exists():
            await asyncio.sleep(0.1)
            die()
        if point == "checking" and calls.exists():
            die()
        await asyncio.sleep(0.001)
    print("finished without being killed:", rec.state, rec.reason)

asyncio.run(main())
"""

POINTS = [
    ("downloading", "1.0", "failed"),
    ("verifying", "1.0", "failed"),
    ("installing", "1.0", "failed"),
    ("switch:1", "1.0", "failed"),
    ("switch:2", "2.0", "committed"),
    ("checking", "2.0", "committed"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("point", "comes_back_on", "record"), POINTS)
async def test_sigkill_during_an_agent_upgrade_leaves_old_or_new(
    tmp_path: Path, release_key: Ed25519PrivateKey, point: str, comes_back_on: str, record: str
) -> None:
    root = tmp_path / "root"
    fake_version(root, "factory", "good")
    fake_version(root, "1.0", "good")
    s = slots(root)
    s.switch("1.0", deadline_s=30)
    s.commit("1.0")
    script = FAKE_AGENTD.format(python=sys.executable, version="2.0", mode="good", root=str(root), repo=str(REPO))
    wheel = agent_wheel(tmp_path, "2.0", script=script.split("\n", 1)[1])
    filler = tmp_path / "filler.bin"
    filler.write_bytes(os.urandom(1 << 20) * 48)
    bundle = tmp_path / "agent-2.0.tar"
    bundle_tool.build(
        bundle,
        name="edge-agent",
        kind="agent",
        version="2.0",
        files=[f"{wheel}=wheels/{wheel.name}", f"{filler}=extra/filler.bin"],
        key=release_key,
    )
    filler.unlink()
    key = tmp_path / "release.key"
    key.write_bytes(private_key_pem(release_key))

    proc = subprocess.run(
        [sys.executable, "-c", KILLER.format(repo=str(REPO)), str(root), str(key), str(bundle), point],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert proc.returncode == -9, proc.stdout + proc.stderr

    with FakeSystemd(root):
        wait_api(root, comes_back_on, 15)
    assert s.current() == comes_back_on
    assert s.trial() is None  # the launcher settled any half-done switch; 2.0 committed itself

    ctx = make_ctx(root, release_key, tmp_path / "systemctl.log")
    manager = UpgradeManager(ctx, running_slot=comes_back_on, installers=default_installers(ctx))
    await settle.cleanup_at_start(manager)
    await settle.resume(manager)
    (rec,) = manager.list()
    assert rec.state == record, rec
    if record == "failed":
        assert "interrupted" in rec.reason
    if point == "installing":
        assert s.installed() == ["1.0"]  # the half-installed 2.0 is cleaned away
    assert not any(ctx.paths.bundles_dir.iterdir())
