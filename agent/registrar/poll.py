"""The fleet poller: ask every enrolled agent's remote API for its status, over mTLS, concurrently.

Connects by address but checks that the certificate the box presents is the
node certificate issued to that node id (``server_hostname=<node id>``), with
the registrar's own reader certificate (``<state-dir>/poller``).
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


async def poll_fleet(
    nodes: Sequence[Node], client_dir: Path, *, timeout: float = 5.0, concurrency: int = 200
) -> list[PollRow]:
    """Poll every node, ``concurrency`` at a time; each box gets ``timeout`` from its own start
    (not from the start of the sweep), so a big fleet does not time out in the queue."""
    ctx = client_context(client_dir)
    gate = asyncio.Semaphore(concurrency)

    async def gated(session: aiohttp.ClientSession, node: Node) -> PollRow:
        async with gate:
            return await _one(session, node, timeout)

    connector = aiohttp.TCPConnector(ssl=ctx, limit=concurrency, force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:
        rows = await asyncio.gather(*(gated(session, n) for n in nodes))
    return sorted(rows, key=lambda r: (r.site, r.node_id))
