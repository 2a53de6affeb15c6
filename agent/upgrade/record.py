"""One upgrade request and its life: the document GET /v1/upgrades/{id} returns."""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import BaseModel, Field

State = Literal["downloading", "verifying", "staged", "switching", "checking", "committed", "rolled-back", "failed"]
FINAL: frozenset[str] = frozenset({"committed", "rolled-back", "failed"})
SCHEMA = "edge-agent.upgrade/v1"


ALREADY_CURRENT = "already-current"


class Step(BaseModel):
    state: State
    at: float
    reason: str = ""


class UpgradeRecord(BaseModel):
    id: str
    source: str  # URL without credentials or query, or the local path
    force: bool = False
    state: State = "downloading"
    reason: str = ""  # why it failed / rolled back, or what it is doing now
    code: str = ""  # machine-readable outcome beside the reason: "already-current", "version-blocked" or ""
    deferred: str = ""  # why the switch is waiting (maintenance window, update lock)
    recheck_s: float = 0.0  # while deferred: how often the gate is looked at again
    name: str = ""
    kind: str = ""
    version: str = ""
    previous_version: str = ""
    bytes_done: int = 0
    bytes_total: int | None = None
    created_at: float = Field(default_factory=time.time)
    updated_at: float = Field(default_factory=time.time)
    history: list[Step] = Field(default_factory=list)

    @property
    def final(self) -> bool:
        return self.state in FINAL

    def move(self, state: State, reason: str = "") -> None:
        self.state, self.reason, self.updated_at = state, reason, time.time()
        if state != "staged":
            self.deferred, self.recheck_s = "", 0.0
        self.history.append(Step(state=state, at=self.updated_at, reason=reason))

    def document(self) -> dict[str, Any]:
        doc = self.model_dump(mode="json", exclude={"bytes_done", "bytes_total"})
        doc["schema"] = SCHEMA
        doc["progress"] = {"bytes": self.bytes_done, "total": self.bytes_total}
        return doc
