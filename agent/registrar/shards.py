"""The fleet poll shared by the live replicas: each takes its shard, found through leases in the database.

A replica started with ``serve --poll-interval S`` holds the lease ``replica:<id>`` (renewed at every
sweep, expiring after two intervals), reads which replicas hold one, and polls the nodes that
rendezvous hashing gives it (the replica whose sha256(replica, node) is highest): every node has
one poller, and when a replica comes or goes only its share moves. Its rows go to ``poll_results``
(node, row, when, by whom) in one transaction; ``edge-registrar poll --from-replicas`` merges them.
Nothing about the split is kept in memory: a replica killed mid-sweep stops renewing its lease and
its nodes fall to the others at their next sweep.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import socket
import time
from collections.abc import Sequence
from pathlib import Path

from agent.errors import AgentError
from agent.registrar.poll import FleetPoller, PollRow
from agent.registrar.registry import Node, Registry

log = logging.getLogger("edge-registrar.poll")

REPLICA = "replica:"


def replica_id(port: int) -> str:
    return f"{socket.gethostname()}:{port}:{os.getpid()}"


def owner(node_id: str, replicas: Sequence[str]) -> str:
    return max(replicas, key=lambda r: hashlib.sha256(f"{r}\0{node_id}".encode()).digest())


def shard(nodes: Sequence[Node], replicas: Sequence[str], me: str) -> list[Node]:
    """The nodes ``me`` polls among ``replicas`` (``me`` counts as live)."""
    live = sorted({*replicas, me})
    return [n for n in nodes if owner(n.node_id, live) == me]


def pollable(registry: Registry) -> list[Node]:
    return [n for n in registry.list_nodes() if n.state == "approved" and n.serial]


def merged(registry: Registry) -> list[PollRow]:
    """Every pollable node's latest row from whichever replica polled it; a node no replica polled
    yet is shown unreachable with that said."""
    results = {node_id: (row, by) for node_id, row, _, by in registry.poll_results()}
    rows: list[PollRow] = []
    for n in pollable(registry):
        if n.node_id in results:
            doc, by = results[n.node_id]
            rows.append(PollRow(**{**json.loads(doc), "polled_by": by}))
        else:
            rows.append(PollRow(n.node_id, n.site, n.role, n.cluster, "", False, "unknown", "Unknown", None,
                                n.last_seen, "not polled by any replica yet"))  # fmt: skip
    return sorted(rows, key=lambda r: (r.site, r.node_id))


class ShardPoller:
    def __init__(
        self, registry: Registry, client_dir: Path, me: str, *, interval: float, timeout: float, concurrency: int
    ) -> None:
        self.registry = registry
        self.me = me
        self.interval = interval
        # connections and TLS sessions of this replica's boxes stay between sweeps: one full handshake per box
        self.poller = FleetPoller(client_dir, timeout=timeout, concurrency=concurrency, keep_alive=interval * 3)

    async def sweep_once(self) -> int:
        now = time.time()
        self.registry.take_lease(REPLICA + self.me, self.me, 2 * self.interval + 5, now)
        live = [holder for _, holder in self.registry.leases(REPLICA, now)]
        mine = shard(pollable(self.registry), live, self.me)
        rows = await self.poller.sweep(mine)
        at = time.time()
        self.registry.put_poll_results([(r.node_id, json.dumps(r.to_json()), at, self.me) for r in rows])
        return len(mine)

    async def run(self) -> None:
        try:
            while True:
                started = time.monotonic()
                try:
                    n = await self.sweep_once()
                    log.info("polled %d node(s) of my shard in %.2f s", n, time.monotonic() - started)
                except AgentError as exc:
                    log.warning("poll sweep failed: %s", exc)
                await asyncio.sleep(max(0.0, self.interval - (time.monotonic() - started)))
        finally:
            await self.poller.close()
