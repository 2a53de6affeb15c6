"""Upgrades as data: one request's record (kept in state), its API document, and the box's
launch state (trial, last rollback) as the ``upgrade`` status section shows them.

``UpgradeRecord`` is the stored form (state section ``upgrade``); ``UpgradeDocument`` is what
``GET /v1/upgrades/{id}`` answers and the status section embeds (``edge-agent.upgrade/v1``).
"""

from __future__ import annotations

import time
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

State = Literal["downloading", "verifying", "staged", "switching", "checking", "committed", "rolled-back", "failed"]
Code = Literal["", "already-current", "version-blocked"]
FINAL: frozenset[str] = frozenset({"committed", "rolled-back", "failed"})
SCHEMA: Final = "edge-agent.upgrade/v1"
LIST_SCHEMA: Final = "edge-agent.upgrades/v1"
ALREADY_CURRENT: Final = "already-current"


class Step(BaseModel):
    model_config = ConfigDict(extra="forbid")

    state: State
    at: float = Field(description="wall time (seconds since the epoch)")
    reason: str = ""


class _Fields(BaseModel):
    """What a record and its document share."""

    id: str
    source: str = Field(description="URL without credentials or query, or the local path")
    force: bool = False
    state: State = "downloading"
    reason: str = Field("", description="why it failed / rolled back, or what it is doing now")
    code: Code = Field("", description="machine-readable outcome beside the reason")
    deferred: str = Field("", description="why the switch is waiting (maintenance window, update lock)")
    recheck_s: float = Field(0.0, description="while deferred: how often the gate is looked at again")
    name: str = ""
    kind: Literal["", "agent", "k3s", "k0s", "airgap-images"] = ""
    version: str = ""
    previous_version: str = ""
    created_at: float = Field(default_factory=time.time)
    updated_at: float = Field(default_factory=time.time)
    history: list[Step] = Field(default_factory=list)


class ByteProgress(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    bytes: int = 0
    total: int | None = None


class UpgradeDocument(_Fields):
    """``edge-agent.upgrade/v1``: one upgrade as the API and the status section show it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_: Literal["edge-agent.upgrade/v1"] = Field(SCHEMA, alias="schema")
    progress: ByteProgress = Field(default_factory=ByteProgress)


class UpgradeRecord(_Fields):
    """One upgrade request and its life, as kept in the ``upgrade`` state section."""

    model_config = ConfigDict(extra="ignore")  # a field a newer agent added survives a rollback's read

    bytes_done: int = 0
    bytes_total: int | None = None

    @property
    def final(self) -> bool:
        return self.state in FINAL

    def move(self, state: State, reason: str = "") -> None:
        self.state, self.reason, self.updated_at = state, reason, time.time()
        if state != "staged":
            self.deferred, self.recheck_s = "", 0.0
        self.history.append(Step(state=state, at=self.updated_at, reason=reason))

    def to_document(self) -> UpgradeDocument:
        shared = self.model_dump(exclude={"bytes_done", "bytes_total"})
        return UpgradeDocument(**shared, progress=ByteProgress(bytes=self.bytes_done, total=self.bytes_total))

    def document(self) -> dict[str, Any]:
        """The JSON of :meth:`to_document` (what the API answers)."""
        return self.to_document().model_dump(mode="json", by_alias=True)


class UpgradeList(BaseModel):
    """``edge-agent.upgrades/v1``: what ``GET /v1/upgrades`` answers, newest first."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_: Literal["edge-agent.upgrades/v1"] = Field(LIST_SCHEMA, alias="schema")
    active: str | None = Field(description="id of the upgrade in progress")
    items: list[UpgradeDocument]


class LastRollback(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str
    to: str
    reason: str = ""
    upgrade_id: str = ""
    at: float
    failures: int = 0
