"""A one-shot full scan in the calling process: ``agentctl inventory --local``.

For a technician at a box whose agent is down (or not installed yet): every
udev/sysfs collector, then nvidia-smi with its timeout when there are NVIDIA
GPUs, and the ``GET /v1/inventory`` document the daemon would serve for the
same hardware. It imports neither pydantic nor asyncio (a fresh process scans
in about the time ``lshw -json`` takes; bench/inventory_bench.py), and needs no
daemon, socket or state.
"""

from __future__ import annotations

from typing import Any

from agent.inventory import nvidia
from agent.inventory.blockingexec import BlockingRunner
from agent.inventory.collect import Collector
from agent.inventory.document import document
from agent.inventory.records import Inventory


def full_scan(collector: Collector, runner: BlockingRunner, *, nvidia_timeout: float) -> Inventory:
    """What the daemon's first scan finds: the collectors, then nvidia-smi when NVIDIA GPUs are there."""
    inv = collector.collect()
    if not nvidia.gpu_addresses(inv.gpus):
        return inv
    return inv._replace(gpus=nvidia.enrich(inv.gpus, nvidia.query_blocking(runner, nvidia_timeout)))


def scan_document(collector: Collector, runner: BlockingRunner, *, nvidia_timeout: float) -> dict[str, Any]:
    return document(full_scan(collector, runner, nvidia_timeout=nvidia_timeout))
