"""Fleet rollouts: drive many agents through POST /v1/upgrades, servers before agents,
canary first, in batches, pausing on the first failure; resumable.

A box whose upgrade failed stays failed: ``resume`` goes on with the other
boxes, and only an explicit ``resume --retry NODE`` (recorded in the rollout's
events) asks it again, with force. A box that reports the target version
blocked (agent.upgrade.blocks) is skipped and reported, never asked again.

The plan is fixed when the rollout is created and kept, with every node's
progress, beside the registry (agent.registrar.rollout_store), so
``resume`` continues where a failure (or Ctrl-C) stopped it: a node whose
upgrade was in flight is followed by its upgrade id rather than started again.

Agents are reached on their remote API (mTLS) with an operator certificate
issued by the fleet CA (``cert issue --role fleet:operator``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from agent.errors import RolloutError
from agent.registrar import blocked
from agent.registrar.assign import node_address
from agent.registrar.poll import client_context
from agent.registrar.registry import Node
from agent.registrar.rollout_store import DB_NAME, RolloutStore
from agent.upgrade.blocks import BLOCKED
from agent.upgrade.record import ALREADY_CURRENT
from agent.urls import display_source

__all__ = [
    "DB_NAME",
    "AgentApi",
    "NodeResult",
    "RolloutError",
    "RolloutStore",
    "Target",
    "drive",
    "drive_node",
    "matches",
    "plan",
]

FINAL_UPGRADE = ("committed", "rolled-back", "failed")
DONE = ("committed", "skipped", "blocked")  # nothing left to do for the node


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
    state: str  # committed | skipped (already current) | blocked (failed there before) | failed
    reason: str
    upgrade_id: str
    kind: str = ""  # what the bundle is, once the box has read its manifest
    version: str = ""


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

    async def _ours(self, node: Node, active: str, bundle: str) -> str:
        """``active`` when the box's upgrade in progress (its 409's ``active``) is of ``bundle``, else ''."""
        if not active:
            return ""
        try:
            status, doc = await self._call("GET", node, f"/v1/upgrades/{active}")
        except (aiohttp.ClientError, TimeoutError):
            return ""
        return active if status == 200 and doc.get("source") == display_source(bundle) else ""

    async def upgrade(
        self,
        node: Node,
        bundle: str,
        *,
        force: bool,
        timeout: float,
        upgrade_id: str = "",
        started: Callable[[str], None] = lambda _id: None,
    ) -> NodeResult:
        """Start (or follow) the node's upgrade until it is final or ``timeout`` passes; ``started`` is
        told the upgrade id as soon as the box accepted it (so another driver can follow it)."""
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
                    started(upgrade_id)
                    break
                detail = str(doc.get("detail") or doc.get("title") or f"HTTP {status}")
                if status != 409:
                    return NodeResult("failed", f"refused: {detail}", "")
                upgrade_id = await self._ours(node, str(doc.get("active") or ""), bundle)
                if upgrade_id:  # this bundle, started by a driver that stopped before it recorded the id
                    started(upgrade_id)
                    break
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
                    what = {"kind": str(doc.get("kind") or ""), "version": str(doc.get("version") or "")}
                    if state == "committed":
                        return NodeResult("committed", reason, upgrade_id, **what)
                    if state == "failed" and doc.get("code") == ALREADY_CURRENT:
                        return NodeResult("skipped", reason, upgrade_id, **what)
                    if state == "failed" and doc.get("code") == BLOCKED:
                        return NodeResult("blocked", reason, upgrade_id, **what)
                    if state in FINAL_UPGRADE:
                        return NodeResult("failed", f"{state}: {reason}", upgrade_id, **what)
                elif status == 404:
                    return NodeResult("failed", f"the agent no longer knows upgrade {upgrade_id}", upgrade_id)
            await asyncio.sleep(self.poll_interval)


def _reported_block(node: Node, kind: str, version: str, rid: str) -> str:
    """Why ``node`` is not asked for ``kind version``: its heartbeat says the version failed there."""
    n = blocked.failures(node, kind, version) if version else 0
    if not n:
        return ""
    times = "once" if n == 1 else f"{n} times"
    return (
        f"{kind} {version} failed {times} on this box and is blocked there; not asked again "
        f"(retry it with 'rollout resume {rid} --retry {node.node_id}')"
    )


@dataclass
class Target:
    """What rollout ``rid`` installs: its bundle, and kind/version once a box has read the manifest."""

    rid: str
    bundle: str
    force: bool
    kind: str
    version: str

    @classmethod
    def of(cls, doc: dict[str, Any]) -> Target:
        return cls(str(doc["id"]), str(doc["bundle"]), bool(doc["force"]), str(doc["kind"]), str(doc["version"]))


async def drive_node(
    store: RolloutStore,
    row: dict[str, Any],
    node: Node,
    api: AgentApi,
    target: Target,
    *,
    node_timeout: float,
    by: str = "",
) -> NodeResult:
    """Upgrade one node of a rollout and record every step; an upgrade in flight (a resume, or a replica
    taking over a killed one's node) is followed by its id, not requested again."""
    rid = target.rid
    follow = row["upgrade_id"] if row["state"] == "running" else ""
    why = "" if follow or row["retry"] else _reported_block(node, target.kind, target.version, rid)
    if why:
        result = NodeResult("blocked", why, "")
    else:
        store.set_node(rid, node.node_id, "running", follow)
        result = await api.upgrade(
            node,
            target.bundle,
            force=target.force or row["retry"],
            timeout=node_timeout,
            upgrade_id=follow,
            started=lambda uid: store.set_node(rid, node.node_id, "running", uid),
        )
    if result.version and not target.version:
        target.kind, target.version = result.kind, result.version
        store.set_target(rid, result.kind, result.version)
    store.set_node(rid, node.node_id, result.state, result.upgrade_id, result.reason, by=by)
    return result


def left_over(doc: dict[str, Any]) -> str:
    """Why a finished rollout is not complete: its failed and blocked nodes ('' when none)."""
    left = [f"{n['node_id']} ({n['state']})" for n in doc["nodes"] if n["state"] in ("failed", "blocked")]
    return f"not upgraded: {', '.join(left)}" if left else ""


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
    """Run (or resume) rollout ``rid``; returns its final state: done or paused.

    Nodes that failed stay failed (a resume goes on with the rest); only a node the
    operator marked with ``RolloutStore.retry_node`` is asked again, with force. A
    node whose heartbeat reports the target version blocked is not asked at all.
    """
    doc = store.get(rid)
    if doc is None:
        raise RolloutError(f"no rollout {rid!r}")
    if doc["state"] == "done":
        return "done"
    store.set_state(rid, "running")
    target = Target.of(doc)
    ssl_ctx = client_context(client_dir)
    connector = aiohttp.TCPConnector(ssl=ssl_ctx, force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:
        api = AgentApi(session, poll_interval=poll_interval)
        batches = sorted({n["batch"] for n in doc["nodes"]})
        for b in batches:
            todo = [n for n in doc["nodes"] if n["batch"] == b and n["state"] in ("pending", "running")]
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
                result = await drive_node(store, row, node, api, target, node_timeout=node_timeout)
                say(f"{rid}: {node.node_id}: {result.state}" + (f" ({result.reason})" if result.reason else ""))
                return node.node_id, result

            # until a box has read the bundle's manifest the target is unknown: one box first, then the rest
            first = [] if target.version else [await one(todo[0])]
            results = first + list(await asyncio.gather(*(one(n) for n in todo[len(first) :])))
            failed = [(nid, r) for nid, r in results if r.state == "failed"]
            if failed:
                nid, r = failed[0]
                reason = f"{nid}: {r.reason}"
                store.set_state(rid, "paused", reason)
                say(
                    f"{rid}: paused after the first failure: {reason}; 'rollout resume {rid}' goes on with the "
                    f"other boxes, 'rollout resume {rid} --retry {nid}' asks {nid} again (with force)"
                )
                return "paused"
            doc = store.get(rid) or doc
    reason = left_over(store.get(rid) or doc)
    store.set_state(rid, "done", reason)
    say(f"{rid}: done" + (f"; {reason}" if reason else ""))
    return "done"
