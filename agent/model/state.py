"""The sections of the durable state file (``state.json``), one model each (data only).

Each section is owned by one writer and read back through ``StateStore.load_section`` (agent.state),
which validates it: a section that does not fit its model is reported (``StateValid=False`` naming
the section and field), set aside and not trusted. Unknown fields are ignored on read, so a file a
newer agent wrote stays readable after a rollback.

| section  | model         | written by                                         |
| -------- | ------------- | -------------------------------------------------- |
| config   | ConfigState   | agent.daemon (last known good config)              |
| fleet    | FleetState    | agent.fleet.enrollment (the last assignment)       |
| runtime  | RuntimeState  | agent.runtime.controller (what was applied)        |
| upgrade  | UpgradeState  | agent.upgrade.manager (records, k3s/k0s failures)  |

The shapes are those of schema 1 (the release before these models): every field has the default
an absent key meant, so files of either release read the same in both.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from agent.model.upgrade import UpgradeRecord
from agent.model.wire import AssignmentWithToken


class _State(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class ConfigState(_State):
    """``config``: the merged config of the last start whose config loaded (never the bootstrap token)."""

    last_good: dict[str, Any] | None = Field(
        None,
        description="the merged TOML layers as loaded; validated as AgentConfig only when it is needed (a key "
        "an upgrade renamed must not mark the state invalid: the next good config replaces it)",
    )


class FleetState(_State):
    """``fleet``: the assignment the registrar last gave this node id (kept across restarts and outages)."""

    node_id: str = ""
    assignment: AssignmentWithToken | None = Field(None, description="with its join token (the file is 0600)")


class RuntimeState(_State):
    """``runtime``: what the runtime controller applied, so a restart neither re-applies nor forgets."""

    step: Literal["", "activating", "applied"] = ""
    pending: str = Field(
        "",
        description="the configuration key being activated (step 'activating'); left out when empty",
        exclude_if=lambda v: v == "",
    )
    applied: str = Field("", description="key of the applied configuration, labels and taints included")
    applied_core: str = Field("", description="key of the applied configuration without labels and taints")
    registered: bool = Field(False, description="the node object exists (labels/taints no longer need a restart)")
    distribution: Literal["", "k3s", "k0s"] = ""
    unit: str = ""
    binary_sha256: str = ""
    version: str = ""


class UpgradeState(_State):
    """``upgrade``: recent upgrade records, the active one, and k3s/k0s/air-gap failure counts."""

    active: str | None = Field(None, description="id of the upgrade in progress")
    records: tuple[UpgradeRecord, ...] = ()
    failures: dict[str, dict[str, int]] = Field(default_factory=dict, description="kind -> version -> failures")


SECTIONS: dict[str, type[_State]] = {
    "config": ConfigState,
    "fleet": FleetState,
    "runtime": RuntimeState,
    "upgrade": UpgradeState,
}
