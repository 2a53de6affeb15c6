"""Per-namespace status for ``agentctl status`` and /metrics: capacity and free space (read-only)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from agent.api.exposition import gauge
from agent.model.conditions import Condition
from agent.model.storage import NamespaceDecision, NamespaceStatus, StorageStatus
from agent.paths import Paths
from agent.status import StatusBoard
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


def metrics_lines(status: StorageStatus) -> Iterator[str]:
    """Prometheus text for /metrics (the lead mounts it beside the others), via the one writer."""
    state = gauge("edge_agent_storage_namespace_state", "1 for the state the namespace is in (prepared/skipped/failed)")
    capacity = gauge("edge_agent_storage_namespace_capacity_bytes", "size of the prepared PV or filesystem")
    free = gauge("edge_agent_storage_namespace_free_bytes", "space not yet used by volumes")
    for ns in status.namespaces:
        ident = {"device": ns.device, "serial": ns.serial, "nsid": ns.nsid}
        for name in ("prepared", "skipped", "failed"):
            state.add(ns.state == name, {**ident, "state": name})
        if ns.capacity_bytes is not None:
            capacity.add(ns.capacity_bytes, ident)
        if ns.free_bytes is not None:
            free.add(ns.free_bytes, ident)
    for family in (state, capacity, free):
        yield from family.lines()


def storage_condition(status: StorageStatus | None) -> Condition:
    """``StoragePrepared``: False (an error) when a namespace failed; skipped ones are information."""
    if status is None:
        return Condition(
            type="StoragePrepared", status="True", reason="Disabled", message="[storage] is off", severity="info"
        )
    counts = {s: sum(ns.state == s for ns in status.namespaces) for s in ("prepared", "skipped", "failed")}
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n) or "no namespaces"
    failed = [f"{ns.device}: {ns.reason}" for ns in status.namespaces if ns.state == "failed"]
    if failed:
        return Condition(
            type="StoragePrepared",
            status="False",
            reason="PreparationFailed",
            message=f"{summary}; {'; '.join(failed)}",
        )
    return Condition(type="StoragePrepared", status="True", reason="Prepared", message=summary, severity="info")


def board_metrics(board: StatusBoard) -> Iterator[str]:
    """The storage lines from the ``storage`` status section (none while ``[storage]`` is off)."""
    doc = board.sections().get("storage")
    if doc is not None:
        yield from metrics_lines(StorageStatus.model_validate(doc))
