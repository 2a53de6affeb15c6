"""edge-registrar poll: every enrolled box's remote API, over mTLS, as a table or versioned JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from agent.api.app import ApiInfo, build_app
from agent.api.mtls import require_role
from agent.model.inventory import InventorySummary
from agent.registrar import views
from agent.registrar.poll import poll_fleet

from .harness import client_cert
from .test_remote_api import start_box


def two_gpus() -> InventorySummary:
    return InventorySummary(
        summary="2 GPUs", scanned_at=datetime.now(UTC), gpus=2, nvme_controllers=0, nvme_local_namespaces=0,
        nvme_local_bytes=0, disks=0, nics_physical=1, fastest_nic_mbps=None, unreadable_fields=0, scans=1,
        hotplug_events=0, last_scan_seconds=0.01, hotplug="udev",
    )  # fmt: skip


def agent_app(ctx):
    return build_app(ctx, ApiInfo(), middlewares=[require_role])


async def test_poll_reaches_every_box_and_reports_the_unreachable(registrar, run_controller, tmp_path):
    client_cert(registrar, registrar.state_dir / "poller", "fleet:reader", name="edge-registrar-poller")
    async with start_box(registrar, tmp_path / "gone", run_controller, "c3" * 16, agent_app) as gone:
        pass  # enrolled, then switched off
    async with (
        start_box(registrar, tmp_path / "b1", run_controller, "a1" * 16, agent_app) as b1,
        start_box(registrar, tmp_path / "b2", run_controller, "b2" * 16, agent_app) as b2,
    ):
        b2.ctx.board.set_condition("NodeReady", "True", "Ready", "k3s node is Ready")
        b2.ctx.board.set_section(two_gpus())
        b1.ctx.board.set_condition("NodeReady", "False", "NotReady", "kubelet not posting status")
        rows = await poll_fleet(registrar.reg.registry.list_nodes(), registrar.state_dir / "poller", timeout=3)
    by_id = {r.node_id: r for r in rows}
    assert set(by_id) == {b1.node_id, b2.node_id, gone.node_id}
    assert by_id[b2.node_id].reachable and by_id[b2.node_id].k8s_ready == "True" and by_id[b2.node_id].gpus == 2
    assert by_id[b1.node_id].reachable and by_id[b1.node_id].k8s_ready == "False"
    assert by_id[b1.node_id].site == "lab" and by_id[b1.node_id].role in ("server", "agent")
    assert not by_id[gone.node_id].reachable and by_id[gone.node_id].health == "unreachable"

    table = views.poll(rows, "table")
    assert table.splitlines()[0].split() == ["NODE", "SITE", "ROLE", "K8S", "READY", "GPUS", "LAST", "SEEN"]
    assert table.splitlines()[-1] == "2/3 reachable"
    doc = json.loads(views.poll(rows, "json"))
    assert doc["schema"] == "edge-registrar.poll/v1" and len(doc["nodes"]) == 3
