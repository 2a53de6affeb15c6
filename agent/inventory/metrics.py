"""Prometheus lines for the inventory: device counts, link speeds, NVMe capacity, scans and hotplug.

Counts come from the published inventory (``ctx.inventory``); scan and
hotplug counters from the controller's ``inventory`` status section.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from agent.api.metrics import escape
from agent.context import AgentContext
from agent.model.inventory import Inventory


def _gauge(name: str, help_text: str, kind: str = "gauge") -> Iterator[str]:
    yield f"# HELP {name} {help_text}"
    yield f"# TYPE {name} {kind}"


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
    yield from _gauge("edge_agent_inventory_devices", "Devices found by the last inventory scan, by kind.")
    for kind, n in counts.items():
        yield f'edge_agent_inventory_devices{{kind="{kind}"}} {n}'
    yield from _gauge("edge_agent_gpu_info", "One series per GPU, with its identity as labels.")
    for g in inv.gpus:
        where = g.pci.address if g.pci else (g.platform_path or "")
        yield (
            f'edge_agent_gpu_info{{address="{escape(where)}",vendor_id="{g.vendor_id or ""}",'
            f'device_id="{g.device_id or ""}",driver="{escape(g.driver or "")}",name="{escape(g.name)}"}} 1'
        )
    yield from _gauge("edge_agent_nic_link_speed_mbps", "Link speed of physical NICs with a known speed.")
    for nic in inv.nics:
        if nic.physical and nic.speed_mbps:
            yield f'edge_agent_nic_link_speed_mbps{{nic="{escape(nic.name)}"}} {nic.speed_mbps}'
    yield from _gauge("edge_agent_nvme_capacity_bytes", "Total size of NVMe namespaces, local or fabric-attached.")
    yield f'edge_agent_nvme_capacity_bytes{{location="local"}} {sum(ns.size_bytes or 0 for ns in local)}'
    yield f'edge_agent_nvme_capacity_bytes{{location="remote"}} {sum(ns.size_bytes or 0 for ns in remote)}'


def _scan_lines(section: dict[str, Any]) -> Iterator[str]:
    yield from _gauge("edge_agent_inventory_scans_total", "Inventory scans since the agent started.", "counter")
    yield f"edge_agent_inventory_scans_total {int(section.get('scans', 0))}"
    yield from _gauge("edge_agent_inventory_hotplug_events_total", "udev add/remove/change events received.", "counter")
    yield f"edge_agent_inventory_hotplug_events_total {int(section.get('hotplug_events', 0))}"
    yield from _gauge("edge_agent_inventory_scan_seconds", "Duration of the last inventory scan.")
    yield f"edge_agent_inventory_scan_seconds {float(section.get('last_scan_seconds', 0.0))}"
    yield from _gauge("edge_agent_inventory_unreadable_fields", "Fields the last scan left null, with a reason.")
    yield f"edge_agent_inventory_unreadable_fields {int(section.get('unreadable_fields', 0))}"


def metrics(ctx: AgentContext) -> Iterator[str]:
    inv = ctx.inventory.value
    if inv is not None:
        yield from _device_lines(inv)
    section = ctx.board.sections().get("inventory")
    if isinstance(section, dict):
        yield from _scan_lines(section)
