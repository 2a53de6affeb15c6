"""Fleet rollouts: drive many agents through POST /v1/upgrades, servers before agents,
canary first, in batches, pausing on the first failure; resumable.

The plan is fixed when the rollout is created and kept, with every node's
progress, in its own SQLite file (``<state-dir>/rollouts.sqlite``), so
``resume`` continues where a failure (or Ctrl-C) stopped it: a node whose
upgrade was in flight is followed by its upgrade id rather than started again.

Agents are reached on their remote API (mTLS) with an operator certificate
issued by the fleet CA (``cert issue --role fleet:operator``).
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from agent.errors import AgentError, StateError
from agent.registrar.assign import node_address
from agent.registrar.poll import client_context
from agent.registrar.registry import Node
from agent.upgrade.record import ALREADY_CURRENT

DB_NAME = "rollouts.sqlite"
FINAL_UPGRADE = ("committed", "rolled-back", "failed")

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS rollouts (
        id TEXT PRIMARY KEY, bundle TEXT NOT NULL, selector TEXT NOT NULL, force INTEGER NOT NULL,
        batch_size INTEGER NOT NULL, canary INTEGER NOT NULL, state TEXT NOT NULL, reason TEXT NOT NULL,
        created_at REAL NOT NULL, updated_at REAL NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS rollout_nodes (
        rollout_id TEXT NOT NULL, node_id TEXT NOT NULL, batch INTEGER NOT NULL, position INTEGER NOT NULL,
        role TEXT NOT NULL, state TEXT NOT NULL, upgrade_id TEXT NOT NULL, reason TEXT NOT NULL,
        updated_at REAL NOT NULL, PRIMARY KEY (rollout_id, node_id))""",
]


class RolloutError(AgentError):
    """A rollout cannot be created or resumed (named why)."""


def parse_selector(pairs: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for p in pairs:
        key, sep, value = p.partition("=")
        if not sep or not key:
            raise RolloutError(f"--selector {p!r}: expected KEY=VALUE (site=..., role=..., cluster=..., or a label)")
        out[key] = value
    return out


def matches(node: Node, selector: dict[str, str]) -> bool:
    fields = {"site": node.site, "role": node.role, "cluster": node.cluster, "node": node.node_id}
    return all((fields[k] if k in fields else node.labels.get(k)) == v for k, v in selector.items())


def plan(nodes: Sequence[Node], *, canary: int, batch_size: int) -> list[list[Node]]:
    """Batches in order: a canary, then the other servers one at a time, then agents in batches.

    A server canary is a single server (servers go one at a time); with no
    servers the canary is the first ``canary`` agents.
    """
    servers = sorted((n for n in nodes if n.role == "server"), key=lambda n: n.node_id)
    agents = sorted((n for n in nodes if n.role != "server"), key=lambda n: n.node_id)
    batches: list[list[Node]] = []
    if servers:
        batches += [[s] for s in servers]
    elif agents and canary > 0:
        batches.append(agents[:canary])
        agents = agents[canary:]
    size = max(1, batch_size)
    batches += [agents[i : i + size] for i in range(0, len(agents), size)]
    return batches


@dataclass(frozen=True)
class NodeResult:
    state: str  # committed | skipped | failed
    reason: str
    upgrade_id: str


class RolloutStore:
    def __init__(self, state_dir: Path) -> None:
        path = state_dir / DB_NAME
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
            self.db = sqlite3.connect(path, timeout=10.0, isolation_level=None)
            self.db.row_factory = sqlite3.Row
            self.db.execute("PRAGMA journal_mode=WAL")
            for stmt in SCHEMA:
                self.db.execute(stmt)
        except sqlite3.Error as exc:
            raise StateError(f"{path}: rollout store unusable: {exc}") from exc

    def close(self) -> None:
        self.db.close()

    def create(
        self,
        bundle: str,
        selector: dict[str, str],
        batches: list[list[Node]],
        *,
        force: bool,
        batch_size: int,
        canary: int,
    ) -> str:
        rid = "r-" + uuid.uuid4().hex[:10]
        now = time.time()
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.db.execute(
                "INSERT INTO rollouts VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    rid,
                    bundle,
                    json.dumps(selector, sort_keys=True),
                    int(force),
                    batch_size,
                    canary,
                    "created",
                    "",
                    now,
                    now,
                ),
            )
            pos = 0
            for b, batch in enumerate(batches):
                for n in batch:
                    self.db.execute(
                        "INSERT INTO rollout_nodes VALUES (?,?,?,?,?,?,?,?,?)",
                        (rid, n.node_id, b, pos, n.role or "", "pending", "", "", now),
                    )
                    pos += 1
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return rid

    def get(self, rid: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT * FROM rollouts WHERE id=?", (rid,)).fetchone()
        if row is None:
            return None
        doc = dict(row)
        doc["selector"] = json.loads(doc["selector"])
        doc["force"] = bool(doc["force"])
        doc["nodes"] = [
            dict(r)
            for r in self.db.execute(
                "SELECT node_id, batch, position, role, state, upgrade_id, reason, updated_at "
                "FROM rollout_nodes WHERE rollout_id=? ORDER BY position",
                (rid,),
            )
        ]
        counts: dict[str, int] = {}
        for n in doc["nodes"]:
            counts[n["state"]] = counts.get(n["state"], 0) + 1
        doc["counts"] = counts
        return doc

    def list(self) -> list[dict[str, Any]]:
        ids = [r[0] for r in self.db.execute("SELECT id FROM rollouts ORDER BY created_at DESC")]
        return [d for d in (self.get(i) for i in ids) if d is not None]

    def set_state(self, rid: str, state: str, reason: str = "") -> None:
        self.db.execute(
            "UPDATE rollouts SET state=?, reason=?, updated_at=? WHERE id=?", (state, reason, time.time(), rid)
        )

    def set_node(self, rid: str, node_id: str, state: str, upgrade_id: str = "", reason: str = "") -> None:
        self.db.execute(
            "UPDATE rollout_nodes SET state=?, upgrade_id=?, reason=?, updated_at=? WHERE rollout_id=? AND node_id=?",
            (state, upgrade_id, reason, time.time(), rid, node_id),
        )


class AgentApi:
    """POST/GET /v1/upgrades on one agent's remote API, checking the box is that node id."""

    def __init__(self, session: aiohttp.ClientSession, *, poll_interval: float = 2.0, request_timeout: float = 10.0):
        self.session = session
        self.poll_interval = poll_interval
        self.request_timeout = request_timeout

    def _url(self, node: Node, path: str) -> str:
        address = node_address(node)
        host = f"[{address}]" if ":" in address else address
        return f"https://{host}:{node.api_port}{path}"

    async def _call(self, method: str, node: Node, path: str, body: Any = None) -> tuple[int, dict[str, Any]]:
        async with self.session.request(
            method,
            self._url(node, path),
            json=body,
            server_hostname=node.node_id,
            timeout=aiohttp.ClientTimeout(total=self.request_timeout),
        ) as resp:
            try:
                doc = await resp.json(content_type=None)
            except ValueError:
                doc = {}
            return resp.status, doc if isinstance(doc, dict) else {}

    async def upgrade(
        self, node: Node, bundle: str, *, force: bool, timeout: float, upgrade_id: str = ""
    ) -> NodeResult:
        """Start (or follow) the node's upgrade until it is final or ``timeout`` passes."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        last = ""
        while not upgrade_id:
            if loop.time() > end:
                return NodeResult("failed", f"could not start the upgrade within {timeout:g}s: {last}", "")
            if not node_address(node):
                return NodeResult("failed", "the node reported no address", "")
            try:
                status, doc = await self._call("POST", node, "/v1/upgrades", {"source": bundle, "force": force})
            except (aiohttp.ClientError, TimeoutError) as exc:
                last = f"unreachable: {type(exc).__name__}: {exc}"
            else:
                if status == 202:
                    upgrade_id = str(doc.get("id", ""))
                    break
                detail = str(doc.get("detail") or doc.get("title") or f"HTTP {status}")
                if status != 409:
                    return NodeResult("failed", f"refused: {detail}", "")
                last = f"busy: {detail}"
            await asyncio.sleep(self.poll_interval)
        while True:
            if loop.time() > end:
                return NodeResult("failed", f"not finished within {timeout:g}s (last: {last})", upgrade_id)
            try:
                status, doc = await self._call("GET", node, f"/v1/upgrades/{upgrade_id}")
            except (aiohttp.ClientError, TimeoutError) as exc:
                last = f"unreachable (restarting?): {type(exc).__name__}"
            else:
                if status == 200:
                    state, reason = str(doc.get("state", "")), str(doc.get("reason", ""))
                    last = f"{state} {doc.get('deferred') or reason}".strip()
                    if state == "committed":
                        return NodeResult("committed", reason, upgrade_id)
                    if state == "failed" and doc.get("code") == ALREADY_CURRENT:
                        return NodeResult("skipped", reason, upgrade_id)
                    if state in FINAL_UPGRADE:
                        return NodeResult("failed", f"{state}: {reason}", upgrade_id)
                elif status == 404:
                    return NodeResult("failed", f"the agent no longer knows upgrade {upgrade_id}", upgrade_id)
            await asyncio.sleep(self.poll_interval)


async def drive(
    store: RolloutStore,
    rid: str,
    nodes: dict[str, Node],
    client_dir: Path,
    *,
    node_timeout: float,
    poll_interval: float = 2.0,
    say: Callable[[str], None] = print,
) -> str:
    """Run (or resume) rollout ``rid``; returns its final state: done or paused."""
    doc = store.get(rid)
    if doc is None:
        raise RolloutError(f"no rollout {rid!r}")
    if doc["state"] == "done":
        return "done"
    store.set_state(rid, "running")
    bundle, force = str(doc["bundle"]), bool(doc["force"])
    ssl_ctx = client_context(client_dir)
    connector = aiohttp.TCPConnector(ssl=ssl_ctx, force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:
        api = AgentApi(session, poll_interval=poll_interval)
        batches = sorted({n["batch"] for n in doc["nodes"]})
        for b in batches:
            todo = [n for n in doc["nodes"] if n["batch"] == b and n["state"] not in ("committed", "skipped")]
            if not todo:
                continue
            missing = [n["node_id"] for n in todo if n["node_id"] not in nodes]
            if missing:
                reason = f"node {missing[0]} is no longer enrolled and approved"
                store.set_state(rid, "paused", reason)
                say(f"{rid}: paused: {reason}")
                return "paused"
            say(f"{rid}: batch {b}: " + ", ".join(f"{n['node_id']} ({n['role'] or 'node'})" for n in todo))

            async def one(row: dict[str, Any]) -> tuple[str, NodeResult]:
                node = nodes[row["node_id"]]
                # an upgrade in flight when we stopped is followed; a failed one is started anew
                follow = row["upgrade_id"] if row["state"] == "running" else ""
                store.set_node(rid, node.node_id, "running", follow)
                result = await api.upgrade(node, bundle, force=force, timeout=node_timeout, upgrade_id=follow)
                store.set_node(rid, node.node_id, result.state, result.upgrade_id, result.reason)
                say(f"{rid}: {node.node_id}: {result.state}" + (f" ({result.reason})" if result.reason else ""))
                return node.node_id, result

            results = await asyncio.gather(*(one(n) for n in todo))
            failed = [(nid, r) for nid, r in results if r.state == "failed"]
            if failed:
                nid, r = failed[0]
                reason = f"{nid}: {r.reason}"
                store.set_state(rid, "paused", reason)
                say(f"{rid}: paused after the first failure: {reason}; fix it, then 'rollout resume {rid}'")
                return "paused"
            doc = store.get(rid) or doc
    store.set_state(rid, "done")
    say(f"{rid}: done")
    return "done"
