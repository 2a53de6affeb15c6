"""Rollouts the serving replicas drive together (``rollout create --on-replicas``, ``serve --rollout-interval S``).

Each replica holds the lease ``rollouts:<id>`` (renewed every step, expiring after two intervals plus
5 s) and, every step, for each rollout handed to the replicas: finds its current batch (the first with a
node not final), and drives the nodes of that batch that rendezvous hashing over the live lease holders
gives it (agent.registrar.shards.owner), each under a claim in the database (``claimed_by``,
``claimed_until``, renewed every step), so a node has one driver even while replicas come and go. A
batch is only left when every node of it is final, whoever drove it; the first failure any replica sees
pauses the rollout for all of them (nodes in flight still finish and are recorded). A replica killed
mid-upgrade stops renewing: after its lease and claims run out its nodes fall to the others, which
follow the upgrade id it recorded when the box accepted the upgrade instead of asking again.

Until a box has read the bundle's manifest the target version is unknown: then only the first node of
the batch is driven, as ``drive`` does.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from agent.errors import AgentError
from agent.registrar.poll import client_context
from agent.registrar.registry import Node, Registry
from agent.registrar.rollout import AgentApi, NodeResult, Target, drive_node, left_over
from agent.registrar.rollout_store import FINAL, RolloutStore
from agent.registrar.shards import owner, pollable

log = logging.getLogger("edge-registrar.rollout")

LEASE = "rollouts:"


def current_batch(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows of the first batch with a node that is not final ([] when every node is)."""
    open_ = [n["batch"] for n in doc["nodes"] if n["state"] not in FINAL]
    if not open_:
        return []
    return [n for n in doc["nodes"] if n["batch"] == min(open_)]


@dataclass
class RolloutWorker:
    registry: Registry
    store: RolloutStore
    client_dir: Path
    me: str
    interval: float
    node_timeout: float = 1800.0
    poll_interval: float = 2.0
    driving: dict[tuple[str, str], asyncio.Task[None]] = field(default_factory=dict)  # (rollout, node) in flight
    _api: AgentApi | None = None

    @property
    def ttl(self) -> float:
        """How long this replica's lease and claims last without a step."""
        return 2 * self.interval + 5

    async def run(self) -> None:
        connector = aiohttp.TCPConnector(ssl=client_context(self.client_dir), force_close=True)
        async with aiohttp.ClientSession(connector=connector) as session:
            self._api = AgentApi(session, poll_interval=self.poll_interval)
            try:
                while True:
                    try:
                        self.step()
                    except AgentError as exc:
                        log.warning("rollout step failed: %s", exc)
                    await asyncio.sleep(self.interval)
            finally:
                for task in self.driving.values():
                    task.cancel()
                await asyncio.gather(*self.driving.values(), return_exceptions=True)

    def step(self) -> None:
        """Renew the lease and the claims of nodes in flight, then start what this replica's shard holds."""
        now = time.time()
        self.registry.take_lease(LEASE + self.me, self.me, self.ttl, now)
        live = sorted({*(holder for _, holder in self.registry.leases(LEASE, now)), self.me})
        for key, task in list(self.driving.items()):
            if task.done():
                del self.driving[key]
            else:
                self.store.claim(*key, self.me, self.ttl, now)
        rids = self.store.running_on_replicas()
        nodes = {n.node_id: n for n in pollable(self.registry)} if rids else {}
        for rid in rids:
            doc = self.store.get(rid)
            if doc is not None:
                self._advance(doc, nodes, live, now)

    def _advance(self, doc: dict[str, Any], nodes: dict[str, Node], live: list[str], now: float) -> None:
        rid = str(doc["id"])
        batch = current_batch(doc)
        if not batch:
            if self.store.finish(rid, left_over(doc)):
                log.info("%s: done%s", rid, f"; {left_over(doc)}" if left_over(doc) else "")
            return
        todo = [n for n in batch if n["state"] in ("pending", "running")]
        missing = [n["node_id"] for n in todo if n["node_id"] not in nodes]
        if missing:
            self.store.pause(rid, f"node {missing[0]} is no longer enrolled and approved")
            return
        if not doc["version"]:  # the first box reads the manifest alone
            todo = todo[:1]
        target = Target.of(doc)
        for row in todo:
            key = (rid, str(row["node_id"]))
            if key in self.driving or owner(key[1], live) != self.me:
                continue
            if self.store.claim(rid, key[1], self.me, self.ttl, now):
                if row["state"] == "running":
                    log.info("%s: %s: taking over its upgrade %s", rid, key[1], row["upgrade_id"] or "(not started)")
                self.driving[key] = asyncio.create_task(self._drive(row, nodes[key[1]], target))

    async def _drive(self, row: dict[str, Any], node: Node, target: Target) -> None:
        assert self._api is not None
        rid = target.rid
        try:
            result: NodeResult = await drive_node(
                self.store, row, node, self._api, target, node_timeout=self.node_timeout, by=self.me
            )
        except AgentError as exc:  # the store unreachable: the claim runs out and the node is driven again
            log.warning("%s: %s: %s", rid, node.node_id, exc)
            return
        log.info("%s: %s: %s%s", rid, node.node_id, result.state, f" ({result.reason})" if result.reason else "")
        if result.state == "failed" and self.store.pause(rid, f"{node.node_id}: {result.reason}"):
            log.warning("%s: paused after the first failure: %s: %s", rid, node.node_id, result.reason)
