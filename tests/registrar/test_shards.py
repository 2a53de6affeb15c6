"""The fleet poll split across live replicas by leases in the database (agent.registrar.shards)."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from pathlib import Path

import pytest
from aiohttp import web

from agent.registrar.registry import Node
from agent.registrar.shards import owner, shard
from bench.helpers.pgcluster import PgCluster
from bench.helpers.replicas import ReplicaSet
from bench.helpers.simbox import SimBox, join, serving_context


def nodes(n: int) -> list[Node]:
    return [Node(f"n{i:03d}", "approved", "t", "fp") for i in range(n)]


def test_every_node_has_one_poller_and_only_a_gone_replicas_share_moves() -> None:
    three = ["r-a", "r-b", "r-c"]
    fleet = nodes(300)
    shards = {r: {n.node_id for n in shard(fleet, three, r)} for r in three}
    assert sum(len(s) for s in shards.values()) == 300 and set().union(*shards.values()) == {n.node_id for n in fleet}
    assert all(60 < len(s) < 140 for s in shards.values())  # spread, not one replica polling all
    two = ["r-a", "r-c"]
    for r in two:  # r-b is gone: r-a and r-c keep theirs and take over only r-b's
        after = {n.node_id for n in shard(fleet, two, r)}
        assert shards[r] <= after and after - shards[r] <= shards["r-b"]
    assert owner("n001", ["only"]) == "only"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _results(fleet: ReplicaSet) -> dict[str, dict[str, object]]:
    doc = json.loads(fleet.cli("poll", "--from-replicas", "-o", "json"))
    return {r["node_id"]: r for r in doc["nodes"]}


@pytest.mark.slow
def test_three_replicas_split_the_poll_and_take_over_a_killed_ones_share(pg_cluster: PgCluster, tmp_path: Path) -> None:
    fleet = ReplicaSet(tmp_path, pg_cluster.new_database(), 3, "--poll-interval", "1s").start()
    work = tmp_path / "boxes"
    work.mkdir()
    try:
        token = fleet.cli("token", "create", "--uses", "30", "--site", "lab").strip()

        async def scenario() -> None:
            boxes = [
                SimBox.make(
                    f"box-{i:02d}",
                )
                for i in range(30)
            ]
            for b in boxes:
                b.api_port = _free_port()
            await asyncio.gather(
                *(join(b, fleet.urls, token, fleet.ca_pem, work, first=i) for i, b in enumerate(boxes))
            )
            app = web.Application()

            async def status(request: web.Request) -> web.Response:
                return web.json_response({"health": "healthy", "conditions": [], "sections": {}})

            app.router.add_get("/v1/status", status)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            for b in boxes:  # each box's remote API: its own node certificate, mTLS
                await web.TCPSite(
                    runner, "127.0.0.1", b.api_port, ssl_context=serving_context(b, fleet.ca_pem, work)
                ).start()
            try:
                await _until(lambda rows: len(rows) == 30 and all(r["reachable"] for r in rows.values())
                             and len({r["polled_by"] for r in rows.values()}) == 3, fleet)  # fmt: skip
                rows = await asyncio.to_thread(_results, fleet)
                victim = str(rows["box-00"]["polled_by"])
                fleet.kill(next(i for i, p in enumerate(fleet.ports) if f":{p}:" in victim))
                # its lease runs out; the two replicas left take its share at their next sweeps
                await _until(
                    lambda rows: all(r["reachable"] and r["polled_by"] != victim for r in rows.values()), fleet
                )
            finally:
                await runner.cleanup()

        asyncio.run(scenario())
    finally:
        fleet.stop()


async def _until(ok, fleet: ReplicaSet, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    rows: dict[str, dict[str, object]] = {}
    while time.monotonic() < deadline:
        rows = await asyncio.to_thread(_results, fleet)
        if ok(rows):
            return
        await asyncio.sleep(0.5)
    raise AssertionError(f"not reached: {list(rows.values())[:3]} {fleet.log(0)}")
