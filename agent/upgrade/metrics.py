"""Prometheus lines for upgrades: what runs, what is in flight, how far, what failed."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from agent.upgrade.manager import UpgradeManager
from agent.upgrade.record import FINAL
from agent.upgrade.slots import BLOCK_AFTER_FAILURES


def _esc(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def metrics(m: UpgradeManager) -> Iterator[str]:
    m.publish_progress()
    doc = m.slots.read()
    yield "# HELP edge_agent_upgrade_version_info The agent version running and the committed one."
    yield "# TYPE edge_agent_upgrade_version_info gauge"
    yield (
        f'edge_agent_upgrade_version_info{{running="{_esc(m.running_slot or "unmanaged")}",'
        f'current="{_esc(m.slots.current() or "factory")}"}} 1'
    )
    active = m.active
    yield "# HELP edge_agent_upgrade_in_progress 1 while an upgrade is running."
    yield "# TYPE edge_agent_upgrade_in_progress gauge"
    yield f"edge_agent_upgrade_in_progress {1 if active is not None else 0}"
    yield "# HELP edge_agent_upgrade_state State of the upgrade in progress (1 for its state)."
    yield "# TYPE edge_agent_upgrade_state gauge"
    if active is not None:
        yield (
            f'edge_agent_upgrade_state{{kind="{_esc(active.kind)}",version="{_esc(active.version)}",'
            f'state="{active.state}"}} 1'
        )
    yield "# HELP edge_agent_upgrade_bytes Bytes downloaded or verified of the upgrade in progress."
    yield "# TYPE edge_agent_upgrade_bytes gauge"
    yield f"edge_agent_upgrade_bytes {active.bytes_done if active else 0}"
    yield "# HELP edge_agent_upgrade_bytes_total Size of the bundle in progress (0 when unknown)."
    yield "# TYPE edge_agent_upgrade_bytes_total gauge"
    yield f"edge_agent_upgrade_bytes_total {(active.bytes_total or 0) if active else 0}"
    yield "# HELP edge_agent_upgrade_recent Upgrades among the recent history, by final state."
    yield "# TYPE edge_agent_upgrade_recent gauge"
    counts: Counter[str] = Counter(str(r.state) for r in m.list() if r.state in FINAL)
    for state in sorted(FINAL):
        yield f'edge_agent_upgrade_recent{{state="{state}"}} {counts.get(state, 0)}'
    yield "# HELP edge_agent_upgrade_version_failures Failed trials of an agent version (blocked from the first)."
    yield "# TYPE edge_agent_upgrade_version_failures gauge"
    for version, n in sorted(doc["failures"].items()):
        yield f'edge_agent_upgrade_version_failures{{version="{_esc(version)}"}} {int(n)}'
    yield "# HELP edge_agent_upgrade_blocked_versions Agent versions blocked after a failed trial."
    yield "# TYPE edge_agent_upgrade_blocked_versions gauge"
    yield f"edge_agent_upgrade_blocked_versions {sum(1 for n in doc['failures'].values() if n >= BLOCK_AFTER_FAILURES)}"
