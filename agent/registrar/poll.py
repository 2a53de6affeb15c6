"""The fleet poller: ask every enrolled agent's remote API for its status, over mTLS, concurrently.

Connects by address but checks that the certificate the box presents is the
node certificate issued to that node id (``server_hostname=<node id>``), with
the registrar's own reader certificate (``<state-dir>/poller``).

``FleetPoller`` keeps one kept-alive connection per box between sweeps (aiohttp keys its pool by
address and ``server_hostname``, so a connection is only reused for the node it was verified for):
a replica sweeping its shard every interval pays each box's TLS handshake once, not every sweep.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp

from agent.registrar.assign import node_address
from agent.registrar.registry import Node

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


async def _one(session: aiohttp.ClientSession, node: Node, timeout: float) -> PollRow:
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
        return replace(row, error="no address reported")
    url = f"https://{_url_host(address)}:{node.api_port}/v1/status"
    try:
        async with session.get(url, server_hostname=node.node_id, timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
            if resp.status != 200:
                raise aiohttp.ClientResponseError(resp.request_info, (), status=resp.status, message=resp.reason or "")
            status = await resp.json()
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return replace(row, health="unreachable", error=error[:200])
    return replace(
        row,
        reachable=True,
        health=str(status.get("health", "unknown")),
        k8s_ready=_k8s_ready(status),
        gpus=_gpus(status, node.inventory),
    )


class FleetPoller:
    """Sweeps over one client session whose connections stay open between sweeps (``keep_alive``
    seconds idle at most)."""

    def __init__(
        self, client_dir: Path, *, timeout: float = 5.0, concurrency: int = 200, keep_alive: float = 0.0
    ) -> None:
        self.ctx = client_context(client_dir)
        self.timeout = timeout
        self.concurrency = concurrency
        self.keep_alive = keep_alive
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            if self.keep_alive > 0:
                connector = aiohttp.TCPConnector(
                    ssl=self.ctx, limit=0, limit_per_host=1, keepalive_timeout=self.keep_alive
                )
            else:
                connector = aiohttp.TCPConnector(ssl=self.ctx, limit=self.concurrency, force_close=True)
            self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    async def sweep(self, nodes: Sequence[Node]) -> list[PollRow]:
        """Poll every node, ``concurrency`` at a time; each box gets ``timeout`` from its own start
        (not from the start of the sweep), so a big fleet does not time out in the queue."""
        session = self._open()
        gate = asyncio.Semaphore(self.concurrency)

        async def gated(node: Node) -> PollRow:
            async with gate:
                return await _one(session, node, self.timeout)

        rows = await asyncio.gather(*(gated(n) for n in nodes))
        return sorted(rows, key=lambda r: (r.site, r.node_id))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


async def poll_fleet(
    nodes: Sequence[Node], client_dir: Path, *, timeout: float = 5.0, concurrency: int = 200
) -> list[PollRow]:
    """One sweep of every node (``FleetPoller.sweep``), connections closed after it."""
    poller = FleetPoller(client_dir, timeout=timeout, concurrency=concurrency)
    try:
        return await poller.sweep(nodes)
    finally:
        await poller.close()
