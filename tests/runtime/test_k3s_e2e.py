"""k3s end to end: the real controller against stand-in k3s/systemctl processes on scratch roots."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from agent.cli.status_view import render_status
from agent.model.inventory import Inventory
from agent.runtime.metrics import metrics
from agent.watch import Watch

from .boxes import Box, mtimes

RENDERED = [
    "/etc/rancher/k3s/config.yaml",
    "/etc/rancher/k3s/config.yaml.d/50-edge-agent.yaml",
    "/etc/systemd/system/k3s.service",
    "/etc/systemd/system/k3s.service.env",
    "/usr/local/bin/k3s",
    "/var/lib/rancher/k3s/agent/images/k3s-airgap-images-amd64.tar.zst",
]
ACTIONS = {"start", "restart", "stop", "daemon-reload", "enable"}


def actions(calls: list[dict[str, object]]) -> list[object]:
    return [c["argv"] for c in calls if c["prog"] == "systemctl" and c["argv"][0] in ACTIONS]  # type: ignore[index]


async def test_single_server_installs_starts_reports_and_is_idempotent(make_box: Callable[..., Box]) -> None:
    box = make_box("box-1")
    box.bundle("k3s")
    box.set_config(distribution="k3s", node_labels={"site": "lab"})
    ctl = box.controller()
    await box.converge(ctl)

    for ctype in ("Installed", "Configured", "Running", "NodeReady"):
        assert box.cond(ctype).status == "True", box.cond(ctype)
    section = box.section()
    assert section["distribution"] == "k3s"
    assert section["version"] == "v1.33.1+k3s1"
    assert section["role"] == "server"
    assert section["node_name"] == "box-1"
    assert section["server_url"] == "https://127.0.0.1:6443"
    assert section["ready"] is True
    # the token a server reports for joiners: K10<sha256 of the CA PEM>::server:<secret>
    tokens = box.ctx.join_tokens.value
    assert tokens is not None
    assert re.fullmatch(r"K10[0-9a-f]{64}::server:[0-9a-f]{32}", tokens.server.get_secret_value())
    assert "K10" not in str(section)
    assert (box.root / "etc/systemd/system/k3s.service.env").stat().st_mode & 0o777 == 0o600
    # the air-gap image tarball is where k3s imports it
    assert "Imported images from" in box.journal("k3s")

    lines = list(metrics(box.ctx))
    assert "edge_agent_kubernetes_node_ready 1" in lines
    assert (
        'edge_agent_kubernetes_info{distribution="k3s",version="v1.33.1+k3s1",role="server",'
        'node_name="box-1",cluster=""} 1' in lines
    )
    doc = {
        "sections": box.ctx.board.sections(),
        "conditions": [c.model_dump(mode="json") for c in box.ctx.board.conditions()],
    }
    text = render_status(doc, color=False)  # what `agentctl status` prints
    assert "  kubernetes k3s v1.33.1+k3s1 server node box-1: Ready\n" in text
    assert "node name box-1 from agent.node_name" in text
    assert re.search(r"ok +NodeReady +True/KubeletReady", text), text

    before = mtimes(box.root, RENDERED)
    n = len(box.calls())
    await ctl.reconcile()
    await ctl.reconcile()
    assert mtimes(box.root, RENDERED) == before
    assert actions(box.calls()[n:]) == []
    assert box.cond("NodeReady").status == "True"
    # the installed binary is neither re-hashed into a new probe nor re-run for its version
    assert not [c for c in box.calls()[n:] if c["argv"][:1] == ["--version"]]


@pytest.mark.slow
async def test_second_controller_instance_after_restart_changes_nothing(make_box: Callable[..., Box]) -> None:
    """A daemon restart (new controller, state from disk) neither rewrites nor restarts."""
    box = make_box("box-1")
    box.bundle("k3s")
    box.set_config(distribution="k3s")
    await box.converge(box.controller())
    pid = box.section()
    n = len(box.calls())
    box.ctx.store.load()
    fresh = box.controller()
    await fresh.reconcile()
    assert actions(box.calls()[n:]) == []
    assert box.run("systemctl", "show", "-p", "MainPID", "k3s").stdout.strip() != "MainPID=0"
    assert pid["unit"] == "k3s"


@pytest.mark.slow
async def test_server_and_joining_agent(make_box: Callable[..., Box]) -> None:
    server = make_box("srv", "10.0.0.1")
    server.bundle("k3s")
    server.set_config(distribution="k3s", cluster_init=True, token="clustersecret")
    await server.converge(server.controller())
    tokens = server.ctx.join_tokens.value
    assert tokens is not None
    assert tokens.server.get_secret_value().endswith("::server:clustersecret")

    agent = make_box("agt", "10.0.0.2")
    agent.bundle("k3s")
    agent.set_config(
        distribution="k3s",
        role="agent",
        server_url="https://10.0.0.1:6443",
        token=tokens.agent.get_secret_value(),
        node_labels={"edge.example.com/zone": "a"},
    )
    await agent.converge(agent.controller())
    assert agent.section()["unit"] == "k3s-agent"
    assert agent.section()["server_url"] == "https://10.0.0.1:6443"
    nodes = server.run(str(server.root / "usr/local/bin/k3s"), "kubectl", "get", "nodes").stdout
    assert "srv   Ready" in nodes and "agt   Ready" in nodes
    assert agent.ctx.join_tokens.value is None
    assert not (agent.root / "etc/systemd/system/k3s.service").exists()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("token", "server_url", "reason"),
    [
        ("K10" + "0" * 64 + "::server:clustersecret", "https://10.0.0.1:6443", "TokenCAHashMismatch"),
        ("wrong-secret", "https://10.0.0.1:6443", "TokenRejected"),
        ("clustersecret", "https://10.0.0.9:6443", "ServerUnreachable"),
    ],
)
async def test_join_failures_time_out_and_say_why(
    make_box: Callable[..., Box], token: str, server_url: str, reason: str
) -> None:
    server = make_box("srv", "10.0.0.1")
    server.bundle("k3s")
    server.set_config(distribution="k3s", cluster_init=True, token="clustersecret")
    await server.converge(server.controller())

    agent = make_box("agt", "10.0.0.2")
    agent.bundle("k3s")
    agent.set_config(distribution="k3s", role="agent", server_url=server_url, token=token, start_timeout=0.6)
    ctl = agent.controller()
    await ctl.reconcile()  # the Type=notify start never returns; our timeout does
    running = agent.cond("Running")
    assert (running.status, running.reason) == ("False", reason), running
    assert "activating" in running.message
    assert agent.cond("NodeReady").status == "False"
    assert token.rpartition(":")[2] not in running.message
    doc = {
        "sections": agent.ctx.board.sections(),
        "conditions": [c.model_dump(mode="json") for c in agent.ctx.board.conditions()],
    }
    assert re.search(rf"!! +Running +False/{reason} k3s-agent is activating", render_status(doc, color=False))
    # the next pass neither restarts nor blocks: the unit keeps trying on its own
    n = len(agent.calls())
    await ctl.reconcile()
    assert actions(agent.calls()[n:]) == []


@pytest.mark.slow
async def test_node_password_rejected_on_reused_name(make_box: Callable[..., Box]) -> None:
    server = make_box("srv", "10.0.0.1")
    server.bundle("k3s")
    server.set_config(distribution="k3s", cluster_init=True, token="s")
    await server.converge(server.controller())
    first = make_box("agt", "10.0.0.2")
    first.bundle("k3s")
    first.set_config(distribution="k3s", role="agent", server_url="https://10.0.0.1:6443", token="s")
    await first.converge(first.controller())

    twin = make_box("twin", "10.0.0.3")  # a different box claiming the same node name
    twin.bundle("k3s")
    twin.set_config(
        "agt", distribution="k3s", role="agent", server_url="https://10.0.0.1:6443", token="s", start_timeout=0.6
    )
    await twin.controller().reconcile()
    assert twin.cond("Running").reason == "NodePasswordRejected"
    assert "delete the old node" in twin.cond("Running").message


def test_status_view_is_stdlib_only() -> None:
    code = "import sys, agent.cli.status_view; print(sorted(m for m in ('pydantic', 'aiohttp') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.slow
async def test_rejoin_after_uninstall_keeps_node_password(make_box: Callable[..., Box]) -> None:
    server = make_box("srv", "10.0.0.1")
    server.bundle("k3s")
    server.set_config(distribution="k3s", cluster_init=True, token="s")
    await server.converge(server.controller())
    agent = make_box("agt", "10.0.0.2")
    agent.bundle("k3s")
    agent.set_config(distribution="k3s", role="agent", server_url="https://10.0.0.1:6443", token="s", start_timeout=1)
    ctl = agent.controller()
    await agent.converge(ctl)
    await ctl.uninstall()
    await agent.converge(ctl)  # /etc/rancher/node/password survived: the same name is accepted
    await ctl.uninstall()
    shutil.rmtree(agent.root / "etc/rancher/node")  # a wiped box reusing the name is not
    await ctl.reconcile()
    assert agent.cond("Running").reason == "NodePasswordRejected"


async def test_hardware_label_change_after_registration_rewrites_but_restarts_nothing(
    make_box: Callable[..., Box],
) -> None:
    box = make_box("box-1")
    box.bundle("k3s")
    box.ctx.inventory = Watch(Inventory(scanned_at=datetime.now(UTC)))
    box.set_config(distribution="k3s")
    ctl = box.controller()
    await box.converge(ctl)
    dropin = box.root / "etc/rancher/k3s/config.yaml.d/50-edge-agent.yaml"
    assert '"edge-agent.io/gpu.count=0"' in dropin.read_text()
    # a new hardware label (say an NVMe drive hot-plugged) after the node registered
    box.set_config(distribution="k3s", node_labels={"edge.example.com/extra": "1"})
    n = len(box.calls())
    await ctl.reconcile()
    assert '"edge.example.com/extra=1"' in dropin.read_text()
    assert actions(box.calls()[n:]) == []
