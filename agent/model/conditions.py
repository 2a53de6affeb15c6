"""Conditions in the Kubernetes shape: type, status, reason, message, since."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ConditionStatus = Literal["True", "False", "Unknown"]


def utcnow() -> datetime:
    return datetime.now(UTC)


class Condition(BaseModel):
    model_config = ConfigDict(frozen=True)

    type: str
    status: ConditionStatus
    reason: str
    message: str = ""
    since: datetime = Field(default_factory=utcnow)
    # Conditions whose False means "broken" make the agent degraded; others
    # (PendingApproval=True, say) are informative.
    severity: Literal["error", "info"] = "error"
