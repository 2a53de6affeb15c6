"""A scratch box with a real context, the real API app and a release key."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web
from aiohttp.test_utils import TestClient
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.api.app import ApiInfo, build_app
from agent.api.upgrades import UpgradeRoutes
from agent.context import AgentContext
from agent.hostfacts import gather
from agent.model.config import AgentConfig
from agent.paths import Paths
from agent.planner import plan
from agent.state import StateStore
from agent.status import StatusBoard
from agent.sysexec import DEFAULT_PATH, ProcessRunner
from agent.upgrade import bundle_tool
from agent.upgrade.installers import default_installers
from agent.upgrade.manager import UpgradeManager
from agent.upgrade.record import UpgradeRecord
from agent.upgrade.signing import public_key_base64
from agent.watch import Watch
from tests.upgrade.wheels import agent_wheel

if TYPE_CHECKING:
    from tests.runtime.boxes import Box as KubeBox

STANDINS = Path(__file__).parent / "bin"


@dataclass
class Box:
    root: Path
    ctx: AgentContext
    key: Ed25519PrivateKey
    calls: Path

    @property
    def paths(self) -> Paths:
        return self.ctx.paths

    def systemctl_calls(self) -> list[str]:
        return self.calls.read_text().splitlines() if self.calls.exists() else []


def make_ctx(root: Path, key: Ed25519PrivateKey, calls: Path, **upgrade: Any) -> AgentContext:
    paths = Paths(root)
    store = StateStore(paths.state_file)
    store.load()
    cfg = AgentConfig.model_validate(
        {"upgrade": {"release_keys": [public_key_base64(key)], "health_deadline": 30, **upgrade}}
    )
    runner = ProcessRunner(
        path=f"{STANDINS}:{DEFAULT_PATH}", base_env={"LC_ALL": "C", "UPGRADE_STANDIN_LOG": str(calls)}
    )
    ctx = AgentContext(paths=paths, runner=runner, board=StatusBoard(), store=store, config=Watch(cfg))
    replan(ctx)
    return ctx


def replan(ctx: AgentContext) -> None:
    """What the planner controller does in the daemon when the config moves: ctx.desired follows."""
    desired = plan(ctx.config.value, ctx.inventory.value, ctx.assignment.value, gather(ctx.paths, ctx.runner))
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # not in a loop yet (Watch.set wakes waiters, which needs one)
        ctx.desired = Watch(desired)
    else:
        ctx.desired.set(desired)


def make_box(tmp_path: Path, key: Ed25519PrivateKey, **upgrade: Any) -> Box:
    root = tmp_path / "root"
    root.mkdir()
    calls = tmp_path / "systemctl.log"
    return Box(root, make_ctx(root, key, calls, **upgrade), key, calls)


def make_agent_box(tmp_path: Path, key: Ed25519PrivateKey) -> Box:
    """A box for agent self-upgrades: a 20 s health deadline and a factory agentd to fall back to."""
    b = make_box(tmp_path, key, health_deadline=20)
    factory = b.root / "opt/edge-agent/venv/bin/agentd"
    factory.parent.mkdir(parents=True)
    factory.write_text("#!/bin/sh\n")
    factory.chmod(0o755)
    return b


def agent_bundle(box: Box, tmp_path: Path, version: str, script: str | None = None) -> Path:
    """A signed agent bundle of one wheel whose agentd prints its version (or runs ``script``)."""
    wheel = agent_wheel(tmp_path, version, script=script)
    out = tmp_path / f"agent-{version}.tar"
    bundle_tool.build(
        out, name="edge-agent", kind="agent", version=version, files=[f"{wheel}=wheels/{wheel.name}"], key=box.key
    )
    return out


def app_for(ctx: AgentContext) -> web.Application:
    return build_app(ctx, ApiInfo(), modules=[UpgradeRoutes(UpgradeManager(ctx, installers=default_installers(ctx)))])


def snapshot(root: Path, ignore: Iterable[str] = ("var/lib/edge-agent/state.json",)) -> dict[str, str]:
    """Every path under root with a digest of its content (links by target)."""
    skip = set(ignore)
    out: dict[str, str] = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if rel in skip:
            continue
        if p.is_symlink():
            out[rel] = "-> " + str(p.readlink())
        elif p.is_file():
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
        else:
            out[rel] = "dir"
    return out


async def wait_state(
    client: TestClient[Any, Any], upgrade_id: str, states: set[str], timeout: float = 20
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    doc: dict[str, Any] = {}
    while loop.time() < end:
        resp = await client.get(f"/v1/upgrades/{upgrade_id}")
        doc = await resp.json()
        if doc["state"] in states:
            return doc
        await asyncio.sleep(0.05)
    raise AssertionError(f"upgrade never reached {states}; last: {doc}")


def k3s_bundle(tmp_path: Path, key: Ed25519PrivateKey, version: str, binary: bytes) -> Path:
    """A signed k3s bundle of ``binary``."""
    src = tmp_path / f"k3s-{version}"
    src.write_bytes(binary)
    src.chmod(0o755)
    out = tmp_path / f"k3s-{version}.tar"
    bundle_tool.build(out, name="k3s", kind="k3s", version=version, files=[f"{src}=k3s"], key=key)
    return out


async def upgrade(manager: UpgradeManager, source: Path) -> UpgradeRecord:
    """Start the upgrade from ``source`` and wait (60 s at most) until it is done."""
    rec = manager.start(str(source))
    task = manager._task
    assert task is not None
    await asyncio.wait_for(task, 60)
    return rec


def installed_version(box: KubeBox) -> str:
    return box.run(str(box.root / "usr/local/bin/k3s"), "--version").stdout.split()[2]
