"""A real agentd seeded through /boot, enrolling with a real registrar on loopback: the box's operator
moves the fleet URL with a drop-in, and the bootstrap token leaves every file on the box once enrolled."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from agent.paths import Paths
from agent.registrar.app import start
from tests.conftest import AgentProcess

from .harness import RegistrarHandle, wait_for


def seed(root: Path, registrar: RegistrarHandle, token: str) -> None:
    paths = Paths(root)
    (root / "etc/edge-agent").mkdir(parents=True)
    (root / "etc/machine-id").write_text("7" * 32 + "\n")
    paths.etc_config.write_text('[api]\nremote_listen = ""\n')  # no remote listener in this test
    paths.boot_seed.parent.mkdir(parents=True)
    paths.boot_seed.write_text(
        f'[fleet]\nurl = "{registrar.url}"\nca_pin = "{registrar.pin}"\nbootstrap_token = "{token}"\n'
        'site = "berlin"\nretry_max = 0.5\nheartbeat_interval = 0.2\n'
    )


@pytest.fixture
async def agentd(tmp_path: Path) -> AsyncIterator[AgentProcess]:
    proc = AgentProcess(tmp_path / "box")
    yield proc
    await asyncio.to_thread(proc.stop)


async def condition(proc: AgentProcess, type_: str) -> tuple[str, str] | None:
    c = await asyncio.to_thread(proc.condition, type_)
    return (c["status"], c["reason"]) if c else None


async def fleet_section(proc: AgentProcess) -> dict[str, Any]:
    doc = await asyncio.to_thread(proc.get_json, "/v1/status")
    return dict(doc["sections"]["fleet"])


def files_holding(root: Path, secrets: list[str]) -> list[str]:
    found = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            if any(s.encode() in data for s in secrets):
                found.append(str(path.relative_to(root)))
    return found


async def test_the_bootstrap_token_is_kept_while_pending_and_gone_from_the_box_once_enrolled(
    registrar: RegistrarHandle, agentd: AgentProcess
) -> None:
    token = registrar.token(require_approval=True)
    secrets = [token, token.split(".", 1)[-1]]
    root = agentd.root
    seed(root, registrar, token)
    await asyncio.to_thread(agentd.start)

    pending = ("True", "AwaitingApproval")
    await wait_for(lambda: _is(condition(agentd, "PendingApproval"), pending), timeout=15, what="pending approval")
    assert files_holding(root, secrets) == ["var/lib/edge-agent/seed.toml"]  # still needed: asked again each retry
    assert not Paths(root).boot_seed.exists()

    node_id = registrar.reg.registry.list_nodes()[0].node_id
    registrar.reg.registry.set_state(node_id, "approved")
    await wait_for(lambda: _is(condition(agentd, "Enrolled"), ("True", "Enrolled")), timeout=15, what="enrolled")
    await asyncio.sleep(0.5)  # a few heartbeats
    await asyncio.to_thread(agentd.stop)

    assert files_holding(root, secrets) == []
    assert files_holding(root.parent, secrets) == []  # nor the daemon's log
    kept = Paths(root).kept_seed.read_text()
    assert 'site = "berlin"' in kept and registrar.url in kept  # the rest of the seed stays

    # a restart (now on a seed without the token) stays enrolled
    await asyncio.to_thread(agentd.start)
    await wait_for(lambda: _is(condition(agentd, "Enrolled"), ("True", "Enrolled")), timeout=15, what="enrolled")
    assert files_holding(root, secrets) == []


async def _is(value: Any, want: Any) -> bool:
    return bool(await value == want)


async def test_a_dropin_moves_the_fleet_url_of_an_enrolled_box(
    registrar: RegistrarHandle, agentd: AgentProcess
) -> None:
    seed(agentd.root, registrar, registrar.token())
    await asyncio.to_thread(agentd.start)
    await wait_for(lambda: _is(condition(agentd, "Enrolled"), ("True", "Enrolled")), timeout=15, what="enrolled")
    node_id = (await fleet_section(agentd))["node_id"]

    # the same fleet (CA, registry) answers on a second port; the box's operator points the box there
    runner, port = await start(registrar.reg, "127.0.0.1", 0, ["localhost"])
    try:
        dropin = Paths(agentd.root).config_dropins / "50-fleet.toml"
        dropin.parent.mkdir(parents=True)
        dropin.write_text(f'[fleet]\nurl = "https://127.0.0.1:{port}"\n')
        agentd.signal(signal.SIGHUP)
        await registrar.stop()  # the old URL is gone
        moved = time.time()

        def heard_since() -> bool:
            node = registrar.reg.registry.get_node(node_id)
            return node is not None and node.last_seen > moved + 0.5

        await wait_for(heard_since, timeout=15, what="a heartbeat at the new URL")
        section = await fleet_section(agentd)
        assert section["enrolled"] is True and not section.get("last_error"), section
        assert await condition(agentd, "ConfigValid") == ("True", "Loaded")
    finally:
        await runner.cleanup()


async def test_a_box_not_enrolled_yet_enrolls_on_its_last_good_config_and_the_seed_token(
    registrar: RegistrarHandle, agentd: AgentProcess
) -> None:
    token = registrar.token(require_approval=True)
    seed(agentd.root, registrar, token)
    await asyncio.to_thread(agentd.start)
    pending = ("True", "AwaitingApproval")
    await wait_for(lambda: _is(condition(agentd, "PendingApproval"), pending), timeout=15, what="pending approval")
    await asyncio.to_thread(agentd.stop)

    # a typo in a drop-in before the next start: the daemon runs on the last good config, which never held
    # the token; the kept seed still does, so the approved box enrolls all the same
    bad = Paths(agentd.root).config_dropins / "50-typo.toml"
    bad.parent.mkdir(parents=True)
    bad.write_text('[fleet]\nsitee = "x"\n')
    registrar.reg.registry.set_state(registrar.reg.registry.list_nodes()[0].node_id, "approved")
    await asyncio.to_thread(agentd.start)
    valid = await asyncio.to_thread(agentd.condition, "ConfigValid")
    assert valid is not None and valid["status"] == "False" and "fleet.sitee" in valid["message"], valid
    await wait_for(lambda: _is(condition(agentd, "Enrolled"), ("True", "Enrolled")), timeout=15, what="enrolled")
    assert token not in Paths(agentd.root).kept_seed.read_text()
