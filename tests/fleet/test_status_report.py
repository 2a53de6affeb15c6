"""Heartbeats carry the box's status only when it changed (flightctl#1537), and only to a registrar that
said it keeps the last one: against the real registrar (its store read back), a registrar of the previous
answer shape, and the decision's edges (a lost answer, a new identity, the periodic full heartbeat)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agent.fleet.status_report import RESEND, StatusReport
from agent.fleet.transport import AiohttpTransport, HttpResponse

from .harness import RegistrarHandle, box_config, make_box, wait_for

MACHINE_ID = "7" * 32
STATUS = {"health": "healthy", "conditions": [], "sections": {"fleet": {"role": "agent", "last_contact": "t1"}}}


def test_an_unchanged_status_is_left_out_once_the_registrar_keeps_it() -> None:
    report = StatusReport()
    assert report.carry("n1", STATUS) == STATUS  # first: all of it
    report.answered(status_kept=True)
    assert report.carry("n1", STATUS) is None
    report.answered(status_kept=True)
    moved = {**STATUS, "sections": {"fleet": {"role": "agent", "last_contact": "t2"}}}
    assert report.carry("n1", moved) is None  # bookkeeping that moves at every call is no change
    report.answered(status_kept=True)
    degraded = {**STATUS, "health": "degraded"}
    assert report.carry("n1", degraded) == degraded  # a change: carried
    report.answered(status_kept=True)
    assert report.carry("n1", degraded) is None


def test_a_registrar_that_does_not_keep_it_gets_it_every_time() -> None:
    report = StatusReport()
    for _ in range(3):
        assert report.carry("n1", STATUS) == STATUS
        report.answered(status_kept=False)


def test_a_lost_answer_a_new_identity_and_every_tenth_heartbeat_carry_it() -> None:
    report = StatusReport()
    report.carry("n1", STATUS)
    report.answered(status_kept=True)
    assert report.carry("n1", STATUS) is None
    report.failed()  # no answer: whether the registrar has it is unknown
    assert report.carry("n1", STATUS) == STATUS
    report.answered(status_kept=True)
    assert report.carry("n2", STATUS) == STATUS  # another node id: its registry row has nothing yet
    report.answered(status_kept=True)
    carried = []
    for _ in range(3 * RESEND):
        carried.append(report.carry("n2", STATUS) is not None)
        report.answered(status_kept=True)
    assert sum(carried) == 3 and carried[RESEND - 1]  # one in RESEND, however quiet the box


class Recording(AiohttpTransport):
    """The agent's own transport, keeping the heartbeat bodies it sends."""

    def __init__(self) -> None:
        super().__init__()
        self.heartbeats: list[dict[str, Any]] = []

    async def request(self, method: str, url: str, **kw: Any) -> HttpResponse:  # type: ignore[override]
        body = kw.get("body")
        if url.endswith("/v1/fleet/heartbeat") and body is not None:
            self.heartbeats.append(json.loads(body))
        return await super().request(method, url, **kw)


async def test_the_registrar_keeps_the_status_a_quiet_box_leaves_out(
    registrar: RegistrarHandle, run_controller: Any, tmp_path: Path
) -> None:
    box = make_box(tmp_path / "box", box_config(registrar.url, registrar.pin, registrar.token()), MACHINE_ID)
    transport = Recording()
    run_controller(box, transport=transport)
    await wait_for(lambda: len(transport.heartbeats) >= 4, what="four heartbeats")
    assert transport.heartbeats[0]["status"]["health"] == "healthy"
    assert any(b.get("status") is None for b in transport.heartbeats[1:]), "an unchanged status was sent again"
    node = registrar.reg.registry.list_nodes()[0]
    assert node.status["health"] == "healthy"  # kept, although later heartbeats left it out

    box.board.set_condition("NvmeHealthy", "False", "NvmeWearHigh", "nvme0n1 at 97% of its rated wear")
    await wait_for(
        lambda: registrar.reg.registry.list_nodes()[0].status.get("health") == "degraded",
        what="the degraded status stored at the next heartbeat",
    )
    sent = [b for b in transport.heartbeats if b.get("status") and b["status"]["health"] == "degraded"]
    assert sent, "the change was not carried"
    await transport.close()
