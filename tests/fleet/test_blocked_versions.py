"""A box's blocked versions travel in its heartbeats; the registrar keeps them per node and
``nodes list`` / ``nodes show`` print them (the real registrar over TLS, a real enrollment controller)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.registrar.cli import main as registrar_main
from agent.upgrade.installers import default_installers
from agent.upgrade.manager import UpgradeManager
from agent.upgrade.slots import Slots

from .harness import box_config, make_box, wait_for


def crashed_trial(slots: Slots, version: str) -> None:
    """What the launcher leaves after a candidate that never became healthy."""
    agentd = slots.agentd(version)
    agentd.parent.mkdir(parents=True)
    agentd.write_text("#!/bin/sh\nexit 3\n")
    agentd.chmod(0o755)
    (slots.dir / version / ".staged").write_text("x\n")
    slots.switch(version, deadline_s=30)
    slots.rollback(f"version {version} was started 3 times without becoming healthy")


async def test_heartbeats_carry_blocked_versions_to_nodes_list_and_show(
    registrar, run_controller, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ctx = make_box(tmp_path / "box1", box_config(registrar.url, registrar.pin, registrar.token()), "a" * 32)
    manager = UpgradeManager(ctx, running_slot="1.0", installers=default_installers(ctx))
    crashed_trial(manager.slots, "2.0")
    manager.kind_failures = {"k3s": {"v1.35.0+k3s1": 2}}
    manager.publish()
    run_controller(ctx)

    def reported() -> object:
        nodes = registrar.reg.registry.list_nodes()
        return nodes and nodes[0].status.get("sections", {}).get("upgrade", {}).get("blocked_versions")

    await wait_for(reported, what="a heartbeat with the upgrade section")
    node_id = registrar.reg.registry.list_nodes()[0].node_id
    state = ["--state-dir", str(registrar.state_dir)]

    assert registrar_main([*state, "nodes", "list"]) == 0
    header, row = capsys.readouterr().out.splitlines()[:2]
    assert header.split()[-1] == "BLOCKED"
    assert row.startswith(node_id) and row.endswith("agent 2.0, k3s v1.35.0+k3s1")

    assert registrar_main([*state, "nodes", "show", node_id]) == 0
    shown = capsys.readouterr().out
    assert "blocked:     agent 2.0 (failed 1x), k3s v1.35.0+k3s1 (failed 2x) (failed on the box" in shown

    assert registrar_main([*state, "nodes", "list", "-o", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["nodes"][0]["blocked_versions"] == {"agent": {"2.0": 1}, "k3s": {"v1.35.0+k3s1": 2}}
