"""Several real ``edge-registrar serve`` replicas on one database, driven by simulated boxes that do the
real enrollment exchange (EST simpleenroll, then register over mTLS): bench/helpers/simbox.py."""

from __future__ import annotations

import asyncio
import ssl
import time
from pathlib import Path

import aiohttp
import pytest

from agent.errors import FleetUnavailable
from agent.fleet.registrar_client import RegistrarClient
from agent.fleet.transport import AiohttpTransport
from agent.model.wire import HeartbeatRequest
from agent.registrar.database import open_registry
from agent.registrar.registry import Registry
from bench.helpers.pgcluster import PgCluster
from bench.helpers.replicas import ReplicaSet
from bench.helpers.simbox import SimBox, join

pytestmark = pytest.mark.slow


def token_of(fleet: ReplicaSet, uses: int, site: str) -> str:
    return fleet.cli("token", "create", "--uses", str(uses), "--site", site).strip()


def check_cluster(reg: Registry, name: str, boxes: int, servers: int) -> None:
    members = reg.cluster_members(name)
    assert len(members) == boxes
    assert sum(m.cluster_init for m in members) == 1, "one initialising server, never two"
    assert sum(m.role == "server" for m in members) == servers
    assert sum(m.role == "agent" for m in members) == boxes - servers


async def join_all(fleet: ReplicaSet, boxes: list[SimBox], token: str, work: Path) -> list[SimBox]:
    return await asyncio.gather(*(join(b, fleet.urls, token, fleet.ca_pem, work, first=i) for i, b in enumerate(boxes)))


def test_three_replicas_enroll_fifty_boxes_of_one_cluster_at_once(registry_url: str, tmp_path: Path) -> None:
    fleet = ReplicaSet(tmp_path, registry_url, 3, "--servers", "3").start()
    try:
        token = token_of(fleet, 50, "lab")
        boxes = [SimBox.make(f"box-{i:02d}") for i in range(50)]
        (tmp_path / "boxes").mkdir()
        done = asyncio.run(join_all(fleet, boxes, token, tmp_path / "boxes"))
        assert all(b.done_at for b in done)
        reg = open_registry(registry_url, tmp_path)
        try:
            check_cluster(reg, "lab", 50, 3)
            left = reg.get_token(token.split(".")[0])
            assert left is not None and left.uses_left == 0
        finally:
            reg.close()
    finally:
        fleet.stop()


def test_a_replica_killed_during_a_500_box_storm_loses_and_doubles_nothing(
    pg_cluster: PgCluster, tmp_path: Path
) -> None:
    url = pg_cluster.new_database()
    fleet = ReplicaSet(tmp_path, url, 3, "--servers", "3").start()
    try:
        token = token_of(fleet, 500, "storm")
        boxes = [SimBox.make(f"storm-{i:03d}") for i in range(500)]
        (tmp_path / "boxes").mkdir()

        async def storm() -> float:
            joining = asyncio.gather(
                *(join(b, fleet.urls, token, fleet.ca_pem, tmp_path / "boxes", first=i) for i, b in enumerate(boxes))
            )
            while sum(bool(b.done_at) for b in boxes) < 100:
                await asyncio.sleep(0.05)
            fleet.kill(1)  # SIGKILL, in the middle of the storm
            killed_at = asyncio.get_running_loop().time()
            await joining
            return killed_at

        killed_at = asyncio.run(storm())
        assert all(b.done_at and b.cert is not None for b in boxes)
        late = [b for b in boxes if b.done_at > killed_at]
        assert late, "the kill came before the storm ended"
        assert any(fleet.urls[1] in e for b in late for e in b.errors), "boxes met the killed replica"
        # each box still joining at the kill: done in the round it was in, or after one backoff
        assert max(sum(r > killed_at for r in b.rounds) for b in late) <= 1, [b.errors for b in late][:3]
        reg = open_registry(url, tmp_path)
        try:
            nodes = [n for n in reg.list_nodes() if n.node_id.startswith("storm-")]
            assert sorted(n.node_id for n in nodes) == sorted(b.node_id for b in boxes)  # none lost, none doubled
            left = reg.get_token(token.split(".")[0])
            assert left is not None and left.uses_left == 0  # exactly one use per box
            check_cluster(reg, "storm", 500, 3)
            for b in boxes:  # the certificate each box holds is the one recorded for it
                owner = reg.cert_owner(b.cert.serial_number)  # type: ignore[union-attr]
                assert owner == b.node_id
        finally:
            reg.close()
    finally:
        fleet.stop()


OUTAGE = 30.0


def test_replicas_answer_503_with_retry_after_while_postgres_is_down_and_recover(
    pg_cluster: PgCluster, tmp_path: Path
) -> None:
    url = pg_cluster.new_database()
    fleet = ReplicaSet(tmp_path, url, 2).start()
    pids = [p.pid for p in fleet.procs if p is not None]
    try:
        token = token_of(fleet, 1, "lab")
        (tmp_path / "boxes").mkdir()
        box = asyncio.run(join(SimBox.make("outage-box"), fleet.urls, token, fleet.ca_pem, tmp_path / "boxes"))
        mtls = box.mtls(fleet.ca_pem, tmp_path / "boxes")
        asked: set[float | None] = set()

        async def heartbeat(url: str) -> str:
            transport = AiohttpTransport()
            try:
                client = RegistrarClient(url, transport, mtls, timeout=10)
                answer = await client.heartbeat(HeartbeatRequest(status={"health": "ok"}))
            finally:
                await transport.close()
            return answer.cluster

        async def raw(url: str, ctx: ssl.SSLContext) -> tuple[int, str]:
            async with (
                aiohttp.ClientSession() as s,
                s.get(f"{url}/v1/fleet/assignment", ssl=ctx) as r,
            ):
                return r.status, r.headers.get("Retry-After", "")

        assert asyncio.run(heartbeat(fleet.urls[0])) == "lab"
        pg_cluster.stop()
        try:
            deadline = time.monotonic() + OUTAGE
            seen = 0
            while time.monotonic() < deadline:
                for u in fleet.urls:
                    assert asyncio.run(raw(u, mtls)) == (503, "10")
                    with pytest.raises(FleetUnavailable, match="503") as failed:
                        asyncio.run(heartbeat(u))
                    asked.add(failed.value.retry_after)
                    seen += 1
                time.sleep(3)
            assert seen >= 4 and asked == {10.0}  # the agent's client hands on what the registrar asked
        finally:
            pg_cluster.start()
        for u in fleet.urls:  # back without a restart: the pool reconnects by itself
            for _ in range(60):
                try:
                    assert asyncio.run(heartbeat(u)) == "lab"
                    break
                except FleetUnavailable:
                    time.sleep(0.5)
            else:
                raise AssertionError(f"{u} did not recover: {fleet.log(0)}")
        assert [p.pid for p in fleet.procs if p is not None and p.poll() is None] == pids
    finally:
        fleet.stop()
