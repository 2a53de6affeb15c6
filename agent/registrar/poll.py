"""The fleet poller: ask every enrolled agent's remote API for its status, over mTLS, concurrently.

Connects by address but checks that the certificate the box presents is the
node certificate issued to that node id (``server_hostname=<node id>``), with
the registrar's own reader certificate (``<state-dir>/poller``).

``FleetPoller`` speaks through agent.registrar.tls_client: with ``keep_alive`` it keeps one connection
per box open between sweeps (the next sweep pays no handshake) and each box's TLS session (when the box
closed the connection meanwhile, the new one resumes the session: no certificates, no signatures), a
session only ever offered to the node id it was made with. Without ``keep_alive`` (one sweep,
``edge-registrar poll``) every box costs one full handshake.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from agent.errors import BoxAnswerError
from agent.registrar.assign import node_address
from agent.registrar.registry import Node
from agent.registrar.tls_client import Answer, SessionClient

K8S_READY_CONDITIONS = ("NodeReady",)


@dataclass(frozen=True)
class PollRow:
    node_id: str
    site: str
    role: str
    cluster: str
    address: str
    reachable: bool
    health: str
    k8s_ready: str  # "True", "False" or "Unknown"
    gpus: int | None
    last_seen: float
    error: str = ""
    polled_by: str = ""  # the replica whose sweep this is (poll --from-replicas)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def client_context(client_dir: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(client_dir / "ca.pem"))
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(client_dir / "client.pem", client_dir / "client.key")
    return ctx


def _gpus(status: dict[str, Any], inventory: dict[str, Any]) -> int | None:
    """GPU count: the status's inventory summary (a count), else the inventory the box registered (a list)."""
    for source in (status.get("sections", {}).get("inventory", {}), inventory):
        gpus = source.get("gpus") if isinstance(source, dict) else None
        if isinstance(gpus, bool):
            continue
        if isinstance(gpus, int):
            return gpus
        if isinstance(gpus, list):
            return len(gpus)
    return None


def _k8s_ready(status: dict[str, Any]) -> str:
    """The runtime's NodeReady condition (``sections.kubernetes.ready`` when there is no condition)."""
    for cond in status.get("conditions", []):
        if isinstance(cond, dict) and cond.get("type") in K8S_READY_CONDITIONS:
            return str(cond.get("status", "Unknown"))
    kube = status.get("sections", {}).get("kubernetes")
    if isinstance(kube, dict) and isinstance(kube.get("ready"), bool):
        return "True" if kube["ready"] else "False"
    return "Unknown"


def _url_host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


async def _one(client: SessionClient, node: Node, timeout: float) -> tuple[PollRow, Answer | None]:
    address = node_address(node)
    row = PollRow(
        node_id=node.node_id,
        site=node.site,
        role=node.role,
        cluster=node.cluster,
        address=f"{address}:{node.api_port}",
        last_seen=node.last_seen,
        reachable=False,
        health="unknown",
        k8s_ready="Unknown",
        gpus=_gpus({}, node.inventory),
    )
    if not address or not node.api_port:
        return replace(row, error="no address reported"), None
    try:
        answer = await client.get(node.node_id, address, node.api_port, "/v1/status", timeout)
        if answer.status != 200:
            raise BoxAnswerError(f"HTTP {answer.status}")
        status = json.loads(answer.body)
        if not isinstance(status, dict):
            raise ValueError("the status is not a JSON object")
    except (BoxAnswerError, OSError, TimeoutError, ValueError) as exc:  # ssl.SSLError is an OSError
        error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return replace(row, health="unreachable", error=error[:200]), None
    reached = replace(
        row,
        reachable=True,
        health=str(status.get("health", "unknown")),
        k8s_ready=_k8s_ready(status),
        gpus=_gpus(status, node.inventory),
    )
    return reached, answer


@dataclass
class SweepStats:
    """How the last sweep reached the boxes: over a kept connection, a resumed session or a full handshake."""

    kept: int = 0
    resumed: int = 0
    full: int = 0


class FleetPoller:
    """Sweeps whose connections and TLS sessions stay between sweeps when ``keep_alive`` > 0."""

    def __init__(
        self,
        client_dir: Path,
        *,
        timeout: float = 5.0,
        concurrency: int = 200,
        keep_alive: float = 0.0,
        resume: bool | None = None,
    ) -> None:
        self.ctx = client_context(client_dir)
        self.timeout = timeout
        self.concurrency = concurrency
        keep = keep_alive > 0
        self.client = SessionClient(self.ctx, keep=keep, resume=keep if resume is None else resume)
        self.stats = SweepStats()

    async def sweep(self, nodes: Sequence[Node]) -> list[PollRow]:
        """Poll every node, ``concurrency`` at a time; each box gets ``timeout`` from its own start
        (not from the start of the sweep), so a big fleet does not time out in the queue."""
        gate = asyncio.Semaphore(self.concurrency)
        self.client.forget({n.node_id for n in nodes})

        async def gated(node: Node) -> tuple[PollRow, Answer | None]:
            async with gate:
                return await _one(self.client, node, self.timeout)

        results = await asyncio.gather(*(gated(n) for n in nodes))
        answers = [a for _, a in results if a is not None]
        self.stats = SweepStats(
            kept=sum(a.reused for a in answers),
            resumed=sum(a.resumed and not a.reused for a in answers),
            full=sum(not a.resumed and not a.reused for a in answers),
        )
        return sorted((r for r, _ in results), key=lambda r: (r.site, r.node_id))

    async def close(self) -> None:
        self.client.close()


async def poll_fleet(
    nodes: Sequence[Node], client_dir: Path, *, timeout: float = 5.0, concurrency: int = 200
) -> list[PollRow]:
    """One sweep of every node (``FleetPoller.sweep``), connections closed after it."""
    poller = FleetPoller(client_dir, timeout=timeout, concurrency=concurrency)
    try:
        return await poller.sweep(nodes)
    finally:
        await poller.close()
