"""Per-namespace status for ``agentctl status`` and /metrics: capacity and free space (read-only)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from agent.model.storage import NamespaceDecision, NamespaceStatus, StorageStatus
from agent.paths import Paths
from agent.storage.probe import physical_volume
from agent.sysexec import Runner


async def lvm_status(runner: Runner, d: NamespaceDecision, timeout: float, how: str) -> NamespaceStatus:
    """A prepared PV: its size and the space no logical volume uses yet."""
    pv = await physical_volume(runner, d.device, timeout)
    return NamespaceStatus(
        device=d.device,
        serial=d.serial,
        nsid=d.nsid,
        state="prepared",
        reason=how,
        target=d.volume_group,
        capacity_bytes=pv.size_bytes if pv else None,
        free_bytes=pv.free_bytes if pv else None,
    )


def _mounted(where: Path, proc: Path) -> bool:
    for line in (proc / "self" / "mountinfo").read_text().splitlines():
        fields = line.split()
        if len(fields) > 4 and fields[4] == str(where):
            return True
    return False


def fs_status(paths: Paths, d: NamespaceDecision, how: str, proc: Path = Path("/proc")) -> NamespaceStatus:
    """A prepared filesystem: size and free space when mounted where its unit puts it, else unknown."""
    where = paths.under(d.mountpoint)
    capacity = free = None
    if _mounted(where, proc):
        st = os.statvfs(where)
        capacity, free = st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize
    return NamespaceStatus(
        device=d.device,
        serial=d.serial,
        nsid=d.nsid,
        state="prepared",
        reason=how if capacity is not None else f"{how}; not mounted at {d.mountpoint} yet",
        target=d.mountpoint,
        capacity_bytes=capacity if capacity is not None else (d.size_bytes or None),
        free_bytes=free,
    )


def metrics_lines(status: StorageStatus) -> Iterable[str]:
    """Prometheus text for /metrics (the lead mounts it beside the others)."""
    yield "# HELP edge_agent_storage_namespace_state 1 for the namespace's current state."
    yield "# TYPE edge_agent_storage_namespace_state gauge"
    for ns in status.namespaces:
        for state in ("prepared", "skipped", "failed"):
            labels = f'device="{ns.device}",serial="{ns.serial}",nsid="{ns.nsid}",state="{state}"'
            yield f"edge_agent_storage_namespace_state{{{labels}}} {int(ns.state == state)}"
    for metric, attr in (("capacity_bytes", "capacity_bytes"), ("free_bytes", "free_bytes")):
        yield f"# TYPE edge_agent_storage_namespace_{metric} gauge"
        for ns in status.namespaces:
            value = getattr(ns, attr)
            if value is not None:
                labels = f'device="{ns.device}",serial="{ns.serial}",nsid="{ns.nsid}"'
                yield f"edge_agent_storage_namespace_{metric}{{{labels}}} {value}"
