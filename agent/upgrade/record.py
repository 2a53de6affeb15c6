"""One upgrade request and its life: the models live in agent.model.upgrade; this module keeps the
names the upgrade code imports."""

from __future__ import annotations

from agent.model.upgrade import ALREADY_CURRENT, FINAL, SCHEMA, State, Step, UpgradeDocument, UpgradeRecord

__all__ = ["ALREADY_CURRENT", "FINAL", "SCHEMA", "State", "Step", "UpgradeDocument", "UpgradeRecord"]
