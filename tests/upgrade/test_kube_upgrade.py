"""k3s upgrade end to end on a scratch box running the stand-in k3s under the stand-in systemctl:
skew refusal changes nothing, a good release commits with the node Ready on it, a broken release
is rolled back to the previous binary and the node is Ready again."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.model.config import UpgradeSection
from agent.upgrade import bundle_tool, settle
from agent.upgrade.installers import default_installers
from agent.upgrade.kube import committed_binary
from agent.upgrade.manager import UpgradeManager
from agent.upgrade.signing import public_key_base64
from agent.watch import Watch
from tests.runtime.boxes import Box, standin_binary
from tests.upgrade.fixtures import installed_version, k3s_bundle, replan, upgrade

BROKEN_K3S = """#!/bin/sh
if [ "$1" = "--version" ]; then echo "k3s version v1.35.0+k3s1 (deadbeef)"; echo "go version go1.24"; exit 0; fi
echo 'level=fatal msg="Error: broken release"' >&2
exit 1
"""


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Box]:
    b = Box("box-1", tmp_path / "box-1", "10.0.0.1", tmp_path / "cluster", {})
    yield b
    b.stop_all()


@pytest.mark.slow
async def test_k3s_upgrade_commits_refuses_skew_and_rolls_back_a_broken_release(
    box: Box, tmp_path: Path, release_key: Ed25519PrivateKey
) -> None:
    box.bundle("k3s")
    box.set_config(distribution="k3s")
    await box.converge(box.controller())
    assert installed_version(box) == "v1.33.1+k3s1"
    cfg = box.ctx.config.value.model_copy(
        update={"upgrade": UpgradeSection(release_keys=[public_key_base64(release_key)], health_deadline=15)}
    )
    box.ctx.config = Watch(cfg)
    replan(box.ctx)
    manager = UpgradeManager(box.ctx, installers=default_installers(box.ctx))

    # two minors up: refused before anything changes
    before = (box.root / "usr/local/bin/k3s").read_bytes()
    skip = k3s_bundle(tmp_path, release_key, "v1.35.0+k3s1", standin_binary("v1.35.0+k3s1"))
    rec = await upgrade(manager, skip)
    assert rec.state == "failed"
    assert "skips a minor version" in rec.reason
    assert (box.root / "usr/local/bin/k3s").read_bytes() == before
    assert not (box.ctx.paths.versions_dir / "k3s").exists()

    # the next minor: swapped, restarted, Ready on the new version, committed
    good = k3s_bundle(tmp_path, release_key, "v1.34.0+k3s1", standin_binary("v1.34.0+k3s1"))
    rec = await upgrade(manager, good)
    assert rec.state == "committed", rec.reason
    assert rec.previous_version == "v1.33.1+k3s1"
    assert installed_version(box) == "v1.34.0+k3s1"
    node = box.run(str(box.root / "usr/local/bin/k3s"), "kubectl", "get", "node", "box-1", "-o", "json").stdout
    assert '"kubeletVersion": "v1.34.0+k3s1"' in node
    assert committed_binary(box.ctx.paths, "k3s") == box.ctx.paths.versions_dir / "k3s/current/k3s"
    assert (box.ctx.paths.versions_dir / "k3s/v1.33.1+k3s1/k3s").read_bytes() == before  # kept for rollback

    # the runtime's next reconcile keeps the committed release, not the image's older air-gap binary
    await box.converge(box.controller())
    assert installed_version(box) == "v1.34.0+k3s1"
    installed = box.ctx.board.condition("Installed")
    assert installed is not None and installed.status == "True", installed

    # the same release again: nothing to do, and the record says so in a way a fleet rollout can read
    again = await upgrade(manager, good)
    assert again.state == "failed" and again.code == "already-current", again.reason
    assert installed_version(box) == "v1.34.0+k3s1"

    # a release that never starts: rolled back to v1.34.0, node Ready again
    broken = k3s_bundle(tmp_path, release_key, "v1.35.0+k3s1", BROKEN_K3S.encode())
    rec = await upgrade(manager, broken)
    assert rec.state == "rolled-back", rec.reason
    assert "restored v1.34.0+k3s1" in rec.reason
    assert installed_version(box) == "v1.34.0+k3s1"
    ready = subprocess.run(
        [str(box.root / "usr/local/bin/k3s"), "kubectl", "get", "node", "box-1", "-o", "json"],
        capture_output=True,
        text=True,
        env={"PATH": box.path, **box.env},
        check=True,
    ).stdout
    assert '"status": "True"' in ready

    # what failed stays failed: the same release again, unforced, is refused before anything changes
    swaps = (box.root / "usr/local/bin/k3s").read_bytes()
    refused = await upgrade(manager, broken)
    assert refused.state == "failed" and refused.code == "version-blocked", refused.reason
    assert "k3s version v1.35.0+k3s1 failed once on this box and is blocked" in refused.reason
    assert (box.root / "usr/local/bin/k3s").read_bytes() == swaps
    assert box.ctx.board.sections()["upgrade"]["blocked_versions"] == {"k3s": {"v1.35.0+k3s1": 1}}
    assert UpgradeManager(box.ctx, installers=default_installers(box.ctx)).kind_failures == {
        "k3s": {"v1.35.0+k3s1": 1}
    }  # kept across a restart

    # the agent restarts in the middle of a k3s switch: the next process checks the node again
    record = {
        "id": "k1",
        "source": str(good),
        "state": "switching",
        "kind": "k3s",
        "version": "v1.34.0+k3s1",
        "previous_version": "v1.33.1+k3s1",
    }
    box.ctx.store.put("upgrade", {"active": "k1", "records": [record]})
    again = UpgradeManager(box.ctx, installers=default_installers(box.ctx))
    await settle.cleanup_at_start(again)
    await asyncio.wait_for(settle.resume(again), 30)
    rec2 = again.get("k1")
    assert rec2 is not None and rec2.state == "committed", rec2
    assert [s.state for s in rec2.history][-2:] == ["checking", "committed"]


@pytest.mark.slow
async def test_k0s_upgrade_stops_swaps_starts_and_commits(
    box: Box, tmp_path: Path, release_key: Ed25519PrivateKey
) -> None:
    box.bundle("k0s")
    box.set_config(distribution="k0s")
    await box.converge(box.controller())
    cfg = box.ctx.config.value.model_copy(
        update={"upgrade": UpgradeSection(release_keys=[public_key_base64(release_key)], health_deadline=15)}
    )
    box.ctx.config = Watch(cfg)
    replan(box.ctx)
    src = tmp_path / "k0s-new"
    src.write_bytes(standin_binary("v1.37.0+k0s.0", "k0s"))
    src.chmod(0o755)
    bundle = tmp_path / "k0s.tar"
    bundle_tool.build(bundle, name="k0s", kind="k0s", version="v1.37.0+k0s.0", files=[f"{src}=k0s"], key=release_key)
    n = len(box.calls())
    rec = await upgrade(UpgradeManager(box.ctx, installers=default_installers(box.ctx)), bundle)
    assert rec.state == "committed", rec.reason
    assert rec.previous_version == "v1.36.3+k0s.1"
    k0s_calls = [c["argv"][0] for c in box.calls()[n:] if c["prog"] == "k0s" and c["argv"][0] in ("stop", "start")]
    assert k0s_calls == ["stop", "start"]  # contract B5: stop, replace the binary, start
    assert box.run(str(box.root / "usr/local/bin/k0s"), "version").stdout.strip() == "v1.37.0+k0s.0"


@pytest.mark.slow
async def test_agents_are_never_newer_than_servers(tmp_path: Path, release_key: Ed25519PrivateKey) -> None:
    server = Box("srv", tmp_path / "srv", "10.0.0.1", tmp_path / "cluster", {})
    agent = Box("agt", tmp_path / "agt", "10.0.0.2", tmp_path / "cluster", {})
    try:
        server.bundle("k3s")
        server.set_config(distribution="k3s", cluster_init=True, token="clustersecret")
        await server.converge(server.controller())
        tokens = server.ctx.join_tokens.value
        assert tokens is not None
        agent.bundle("k3s")
        agent.set_config(
            distribution="k3s", role="agent", server_url="https://10.0.0.1:6443", token=tokens.agent.get_secret_value()
        )
        await agent.converge(agent.controller())
        upgrade_cfg = UpgradeSection(release_keys=[public_key_base64(release_key)], health_deadline=15)
        for b in (server, agent):
            b.ctx.config = Watch(b.ctx.config.value.model_copy(update={"upgrade": upgrade_cfg}))
            replan(b.ctx)
        bundle = k3s_bundle(tmp_path, release_key, "v1.34.0+k3s1", standin_binary("v1.34.0+k3s1"))

        # the agent first: refused, its server still runs v1.33.1
        rec = await upgrade(UpgradeManager(agent.ctx, installers=default_installers(agent.ctx)), bundle)
        assert rec.state == "failed"
        assert "agents are never newer than servers: a server runs v1.33.1+k3s1" in rec.reason
        assert installed_version(agent) == "v1.33.1+k3s1"

        # servers first, then the agent may follow
        assert (
            await upgrade(UpgradeManager(server.ctx, installers=default_installers(server.ctx)), bundle)
        ).state == "committed"
        rec = await upgrade(UpgradeManager(agent.ctx, installers=default_installers(agent.ctx)), bundle)
        assert rec.state == "committed", rec.reason
        assert installed_version(agent) == "v1.34.0+k3s1"
    finally:
        agent.stop_all()
        server.stop_all()
