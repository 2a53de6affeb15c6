"""Prometheus families for the inventory: device counts, link speeds, NVMe capacity, scans and hotplug.

Counts come from the published inventory (``ctx.inventory``); scan and
hotplug counters from the controller's ``inventory`` status section.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from agent.api.exposition import counter, gauge
from agent.context import AgentContext
from agent.model.inventory import Inventory


def _device_lines(inv: Inventory) -> Iterator[str]:
    local = [ns for c in inv.nvme for ns in c.namespaces if not ns.remote]
    remote = [ns for c in inv.nvme for ns in c.namespaces if ns.remote]
    counts = {
        "gpu": sum(1 for g in inv.gpus if not g.display_only),
        "display": sum(1 for g in inv.gpus if g.display_only),
        "nvme_controller": len(inv.nvme),
        "nvme_namespace_local": len(local),
        "nvme_namespace_remote": len(remote),
        "disk": len(inv.disks),
        "nic_physical": sum(1 for n in inv.nics if n.physical),
        "nic_virtual": sum(1 for n in inv.nics if not n.physical),
    }
    devices = gauge("edge_agent_inventory_devices", "Devices found by the last inventory scan, by kind.")
    for kind, n in counts.items():
        devices.add(n, {"kind": kind})
    yield from devices.lines()
    gpus = gauge("edge_agent_gpu_info", "One series per GPU, with its identity as labels.")
    for g in inv.gpus:
        where = g.pci.address if g.pci else (g.platform_path or "")
        identity = {
            "address": where,
            "vendor_id": g.vendor_id or "",
            "device_id": g.device_id or "",
            "driver": g.driver or "",
            "name": g.name,
        }
        gpus.add(1, identity)
    yield from gpus.lines()
    speeds = gauge("edge_agent_nic_link_speed_mbps", "Link speed of physical NICs with a known speed.")
    for nic in inv.nics:
        if nic.physical and nic.speed_mbps:
            speeds.add(nic.speed_mbps, {"nic": nic.name})
    yield from speeds.lines()
    capacity = gauge("edge_agent_nvme_capacity_bytes", "Total size of NVMe namespaces, local or fabric-attached.")
    capacity.add(sum(ns.size_bytes or 0 for ns in local), {"location": "local"})
    capacity.add(sum(ns.size_bytes or 0 for ns in remote), {"location": "remote"})
    yield from capacity.lines()


def _scan_lines(section: dict[str, Any]) -> Iterator[str]:
    for family in (
        counter("edge_agent_inventory_scans_total", "Inventory scans since the agent started.").add(
            int(section.get("scans", 0))
        ),
        counter("edge_agent_inventory_hotplug_events_total", "udev add/remove/change events received.").add(
            int(section.get("hotplug_events", 0))
        ),
        gauge("edge_agent_inventory_scan_seconds", "Duration of the last inventory scan.").add(
            float(section.get("last_scan_seconds", 0.0))
        ),
        gauge("edge_agent_inventory_unreadable_fields", "Fields the last scan left null, with a reason.").add(
            int(section.get("unreadable_fields", 0))
        ),
    ):
        yield from family.lines()


def metrics(ctx: AgentContext) -> Iterator[str]:
    inv = ctx.inventory.value
    if inv is not None:
        yield from _device_lines(inv)
    section = ctx.board.sections().get("inventory")
    if isinstance(section, dict):
        yield from _scan_lines(section)
