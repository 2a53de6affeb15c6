"""The status board: conditions and status sections that controllers publish.

The API, agentctl and /metrics read it; only controllers (and the supervisor)
write it. Every change bumps ``generation``, which the API turns into an ETag.
"""

from __future__ import annotations

import asyncio
from typing import Any

from agent.model.conditions import Condition, ConditionStatus, utcnow
from agent.model.status import SECTION_NAMES, Section


class StatusBoard:
    def __init__(self) -> None:
        self._conditions: dict[str, Condition] = {}
        self._sections: dict[str, Any] = {}
        self.generation = 0
        self._changed = asyncio.Event()

    def set_condition(
        self,
        type: str,
        status: ConditionStatus,
        reason: str,
        message: str = "",
        *,
        severity: str = "error",
    ) -> Condition:
        old = self._conditions.get(type)
        if old and (old.status, old.reason, old.message, old.severity) == (status, reason, message, severity):
            return old
        since = old.since if old and old.status == status else utcnow()
        cond = Condition(
            type=type,
            status=status,
            reason=reason,
            message=message,
            since=since,
            severity="info" if severity == "info" else "error",
        )
        self._conditions[type] = cond
        self._bump()
        return cond

    def condition(self, type: str) -> Condition | None:
        return self._conditions.get(type)

    def conditions(self) -> list[Condition]:
        return sorted(self._conditions.values(), key=lambda c: c.type)

    def set_section(self, value: Section) -> None:
        """Publish a status section; its model says which (agent.model.status.StatusSections)."""
        name = SECTION_NAMES.get(type(value))
        if name is None:
            known = ", ".join(m.__name__ for m in SECTION_NAMES)
            raise TypeError(f"not a status section: {type(value).__name__} (expected one of {known})")
        data = value.model_dump(mode="json", by_alias=True)
        if self._sections.get(name) != data:
            self._sections[name] = data
            self._bump()

    def sections(self) -> dict[str, Any]:
        return dict(self._sections)

    def degraded(self) -> list[Condition]:
        """Error-severity conditions that are not True: what makes the agent 'degraded'."""
        return [c for c in self._conditions.values() if c.severity == "error" and c.status != "True"]

    def _bump(self) -> None:
        self.generation += 1
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_change(self) -> None:
        await self._changed.wait()
