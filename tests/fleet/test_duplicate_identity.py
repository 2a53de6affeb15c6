"""Two boxes running one identity at once (same certificate, different boot ids): the registrar sees
the instances alternate on the node's heartbeats, flags it DuplicateIdentity in ``nodes list``, and
refuses the second box's heartbeats until ``nodes resolve`` (real registrar, real controllers, TLS)."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from agent.registrar.cli import main as registrar_main
from agent.registrar.database import open_registry

from .harness import box_config, make_box, wait_for

MACHINE_ID = "6" * 32


def boot(root: Path, boot_id: str) -> None:
    p = root / "proc/sys/kernel/random/boot_id"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(boot_id + "\n")


def flagged(state_dir: Path) -> set[str]:
    registry = open_registry(None, state_dir)  # as an operator's command reads it
    try:
        return set(registry.duplicates())
    finally:
        registry.close()


async def test_two_boxes_with_one_identity_are_flagged_and_the_second_refused(
    registrar, run_controller, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    token = registrar.token(uses=1)
    first_root = tmp_path / "box1"
    boot(first_root, "1f6a6c1e-0000-4000-8000-00000000000a")
    first = make_box(first_root, box_config(registrar.url, registrar.pin, token), MACHINE_ID)
    task = run_controller(first)
    await wait_for(lambda: first.assignment.value is not None, what="the first box enrolled")
    node = registrar.reg.registry.list_nodes()[0]
    await wait_for(lambda: registrar.reg.registry.list_nodes()[0].last_seen > 0, what="a heartbeat")
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)

    # the disk is copied into a second box of the same kind: same identity, its own boot id
    second_root = tmp_path / "box2"
    shutil.copytree(first_root, second_root, symlinks=True)
    boot(second_root, "2b7d8e2f-0000-4000-8000-00000000000b")
    second = make_box(second_root, box_config(registrar.url, registrar.pin, token), MACHINE_ID)
    first = make_box(first_root, box_config(registrar.url, registrar.pin, token), MACHINE_ID)
    run_controller(first)
    second_task = run_controller(second)
    await wait_for(lambda: node.node_id in flagged(registrar.state_dir), what="DuplicateIdentity")

    state = ["--state-dir", str(registrar.state_dir)]
    assert registrar_main([*state, "nodes", "list"]) == 0
    row = capsys.readouterr().out.splitlines()[1]
    assert row.startswith(node.node_id) and "approved, DuplicateIdentity" in row
    assert [n.node_id for n in registrar.reg.registry.list_nodes()] == [node.node_id]  # still one node

    def refused() -> bool:
        c = second.board.condition("Enrolled")
        return c is not None and "409" in c.message and "DuplicateIdentity" in c.message

    await wait_for(refused, what="the second box told its heartbeats are refused")
    seen = registrar.reg.registry.list_nodes()[0].last_seen
    await wait_for(lambda: registrar.reg.registry.list_nodes()[0].last_seen > seen, what="the first box still heard")
    c = first.board.condition("Enrolled")
    assert c is not None and "DuplicateIdentity" not in c.message

    assert registrar_main([*state, "nodes", "show", node.node_id]) == 0
    assert "nodes resolve " + node.node_id in capsys.readouterr().out
    # the operator re-images the copy and resolves: the node is whole again
    second_task.cancel()
    await asyncio.gather(second_task, return_exceptions=True)
    assert registrar_main([*state, "nodes", "resolve", node.node_id]) == 0
    assert capsys.readouterr().out.startswith(f"resolved {node.node_id}")
    seen = registrar.reg.registry.list_nodes()[0].last_seen
    await wait_for(lambda: registrar.reg.registry.list_nodes()[0].last_seen > seen, what="a heartbeat after resolve")
    assert flagged(registrar.state_dir) == set()
    assert registrar_main([*state, "nodes", "resolve", node.node_id]) == 1  # nothing to resolve any more
