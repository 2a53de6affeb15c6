"""`agentctl status` says why a staged upgrade waits and how often it looks again: outside the
maintenance window, then the update lock held by a real workload process (flock)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.api.app import ApiInfo, build_app
from agent.api.upgrades import UpgradeRoutes
from agent.upgrade import bundle_tool
from agent.upgrade.installers import default_installers
from agent.upgrade.manager import UpgradeManager
from tests.upgrade.fixtures import make_box, replan
from tests.upgrade.wheels import agent_wheel

# a workload holding the update lock as balena's would: flock on the file, as long as it runs
HOLD = (
    "import fcntl, sys, time; f = open(sys.argv[1], 'w'); fcntl.flock(f, fcntl.LOCK_EX); "
    "print('held', flush=True); time.sleep(60)"
)


async def agentctl_status(socket: Path) -> str:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent.cli.agentctl", "--socket", str(socket), "status", stdout=subprocess.PIPE
    )
    out, _ = await proc.communicate()
    return out.decode()


def upgrade_line(text: str) -> str:
    return next(line.strip() for line in text.splitlines() if line.strip().startswith("upgrade "))


async def until(predicate: Any, what: str, timeout: float = 60) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate():
        assert loop.time() < end, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


@pytest.mark.slow
async def test_agentctl_status_names_why_the_switch_waits_and_when_it_looks_again(
    tmp_path: Path, release_key: Ed25519PrivateKey
) -> None:
    now = datetime.now(UTC)
    start, end = now + timedelta(hours=2), now + timedelta(hours=3)
    window = f"{start:%H:%M}-{end:%H:%M}"
    box = make_box(tmp_path, release_key, maintenance_window=window)
    manager = UpgradeManager(box.ctx, installers=default_installers(box.ctx))
    runner = web.AppRunner(build_app(box.ctx, ApiInfo(), modules=[UpgradeRoutes(manager)]))
    await runner.setup()
    box.paths.socket.parent.mkdir(parents=True, exist_ok=True)
    await web.UnixSite(runner, str(box.paths.socket)).start()
    holder = None
    try:
        wheel = agent_wheel(tmp_path, "2.0")
        bundle = tmp_path / "agent-2.0.tar"
        bundle_tool.build(bundle, name="edge-agent", kind="agent", version="2.0",
                          files=[f"{wheel}=wheels/{wheel.name}"], key=release_key)  # fmt: skip
        rec = manager.start(str(bundle))
        await until(lambda: rec.deferred != "", "the window deferral")

        line = upgrade_line(await agentctl_status(box.paths.socket))
        assert line.startswith("upgrade    agent version unmanaged; upgrading to 2.0: staged, waiting: ")
        assert f"outside the maintenance window {window} UTC; opens in 1" in line  # 119 or 120 min
        assert line.endswith("min; looks again every 60s")

        # the window opens (config change), but a workload holds the update lock
        lock = box.ctx.paths.under(box.ctx.config.value.upgrade.update_lock)
        lock.parent.mkdir(parents=True, exist_ok=True)
        holder = subprocess.Popen([sys.executable, "-c", HOLD, str(lock)], stdout=subprocess.PIPE)
        assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
        cfg = box.ctx.config.value
        box.ctx.config.set(
            cfg.model_copy(update={"upgrade": cfg.upgrade.model_copy(update={"maintenance_window": ""})})
        )
        replan(box.ctx)
        await until(lambda: "update lock" in rec.deferred, "the lock deferral")

        line = upgrade_line(await agentctl_status(box.paths.socket))
        assert line == (
            f"upgrade    agent version unmanaged; upgrading to 2.0: staged, "
            f"waiting: update lock {lock} is held by a workload; looks again every 1s"
        )
        await manager.cancel(rec.id)
    finally:
        if holder is not None:
            holder.kill()
            holder.wait()
        await manager.close()
        await runner.cleanup()
