"""The ``upgrade`` status section: what runs, what is on trial, what is blocked, and why an upgrade waits.

Its ``summary`` is the line ``agentctl status`` shows, so it names what a
technician needs without ``agentctl upgrade status``: a staged upgrade that
waits says why (the update lock held by a workload, outside the maintenance
window) and how often it looks again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agent.model.status import UpgradeStatus
from agent.model.upgrade import LastRollback
from agent.upgrade import blocks
from agent.upgrade.slots import FACTORY

if TYPE_CHECKING:
    from agent.upgrade.manager import UpgradeManager
    from agent.upgrade.record import UpgradeRecord


def _every(seconds: float) -> str:
    s = max(1, round(seconds))
    return f"{s}s" if s < 120 else f"{s // 60} min"


def waiting(rec: UpgradeRecord) -> str:
    """``waiting: <why>; looks again every 1s`` for a deferred switch, else ''."""
    if not rec.deferred:
        return ""
    text = f"waiting: {rec.deferred}"
    if rec.recheck_s > 0:
        text += f"; looks again every {_every(rec.recheck_s)}"
    return text


def build(m: UpgradeManager) -> UpgradeStatus:
    doc = m.slots.read()
    last = next((r for r in m.list() if r.final), None)
    running = m.running_slot or "unmanaged"
    summary = f"agent version {running}"
    if m.active:
        summary += f"; upgrading to {m.active.version or m.active.source}: {m.active.state}"
        why = waiting(m.active)
        if why:
            summary += f", {why}"
    elif last:
        summary += f"; last upgrade {last.version or last.source}: {last.state}"
    blocked_by_kind = blocks.blocked_versions(doc["failures"], m.kind_failures)
    if blocked_by_kind:
        summary += f"; blocked: {blocks.describe(blocked_by_kind)}"
    trial = m.slots.trial(doc)  # launch.json as agent.upgrade.slots reads it (a malformed entry: none)
    rollback = doc["last_rollback"]
    return UpgradeStatus(
        summary=summary,
        running=running,
        current=m.slots.current() or FACTORY,
        installed=m.slots.installed(),
        trial=trial,
        blocked=sorted(blocked_by_kind.get("agent", {})),
        failures={str(v): int(n) for v, n in doc["failures"].items()},
        blocked_versions=blocked_by_kind,
        last_rollback=LastRollback.model_validate(rollback) if isinstance(rollback, dict) else None,
        active=m.active.to_document() if m.active else None,
        last=last.to_document() if last else None,
    )
