"""Prometheus families for upgrades: what runs, what is in flight, how far, what failed."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from agent.api.exposition import gauge
from agent.upgrade.manager import UpgradeManager
from agent.upgrade.record import FINAL
from agent.upgrade.slots import BLOCK_AFTER_FAILURES


def metrics(m: UpgradeManager) -> Iterator[str]:
    m.publish_progress()
    doc = m.slots.read()
    running = {"running": m.running_slot or "unmanaged", "current": m.slots.current() or "factory"}
    yield from (
        gauge("edge_agent_upgrade_version_info", "The agent version running and the committed one.")
        .add(1, running)
        .lines()
    )
    active = m.active
    yield from (
        gauge("edge_agent_upgrade_in_progress", "1 while an upgrade is running.")
        .add(1 if active is not None else 0)
        .lines()
    )
    state = gauge("edge_agent_upgrade_state", "State of the upgrade in progress (1 for its state).")
    if active is not None:
        state.add(1, {"kind": active.kind, "version": active.version, "state": active.state})
    yield from state.lines()
    yield from (
        gauge("edge_agent_upgrade_bytes", "Bytes downloaded or verified of the upgrade in progress.")
        .add(active.bytes_done if active else 0)
        .lines()
    )
    # a gauge: was edge_agent_upgrade_bytes_total, a name Prometheus keeps for counters
    yield from (
        gauge("edge_agent_upgrade_size_bytes", "Size of the bundle in progress (0 when unknown).")
        .add((active.bytes_total or 0) if active else 0)
        .lines()
    )
    recent = gauge("edge_agent_upgrade_recent", "Upgrades among the recent history, by final state.")
    counts: Counter[str] = Counter(str(r.state) for r in m.list() if r.state in FINAL)
    for final in sorted(FINAL):
        recent.add(counts.get(final, 0), {"state": final})
    yield from recent.lines()
    failures = gauge(
        "edge_agent_upgrade_version_failures", "Failed trials of an agent version (blocked from the first)."
    )
    for version, n in sorted(doc["failures"].items()):
        failures.add(int(n), {"version": version})
    yield from failures.lines()
    blocked = sum(1 for n in doc["failures"].values() if n >= BLOCK_AFTER_FAILURES)
    yield from (
        gauge("edge_agent_upgrade_blocked_versions", "Agent versions blocked after a failed trial.")
        .add(blocked)
        .lines()
    )
