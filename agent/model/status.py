"""The status sections controllers publish on the StatusBoard (data only).

One model per section name: the fields of ``StatusSections`` list them once (``SECTION_NAMES`` maps a
model to its name); ``/v1/status``'s ``sections`` object and its OpenAPI schema (agent.api.openapi)
are made from them, and agentctl reads their JSON. Every model forbids unknown fields, so the generated
schema says exactly what a section holds.

| section      | model              | published by                      |
| ------------ | ------------------ | --------------------------------- |
| fleet        | FleetStatus        | agent.fleet.enrollment            |
| kubernetes   | KubeStatus         | agent.runtime.controller          |
| inventory    | InventorySummary   | agent.inventory.controller        |
| health       | HealthReport       | agent.health.controller           |
| upgrade      | UpgradeStatus      | agent.upgrade.section             |
| network      | NetworkStatus      | agent.runtime.controller          |
| storage      | StorageStatus      | agent.storage.controller          |
"""

from __future__ import annotations

from typing import Final, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from agent.model.conditions import Condition
from agent.model.health import HealthReport
from agent.model.inventory import InventorySummary
from agent.model.network import NetworkPending, NetworkPlan
from agent.model.storage import StorageStatus
from agent.model.upgrade import LastRollback, UpgradeDocument
from agent.upgrade.slots import Trial  # a stdlib dataclass: the launcher that keeps it imports no pydantic


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FleetStatus(_Section):
    """The ``fleet`` section: enrollment, the certificate, the registrar in use, the assignment."""

    summary: str = Field("not enrolled yet", description="one line for humans")
    node_id: str = ""
    enrolled: bool = False
    cert_serial: str = Field("", description="hex serial of the node certificate")
    cert_not_after: str = Field("", description="ISO 8601")
    renew_at: str = Field("", description="ISO 8601: renewal after two thirds of the certificate's life")
    last_contact: str = Field("", description="ISO 8601 time of the last answered registrar call")
    last_error: str = ""
    next_attempt_in: float | None = Field(None, description="seconds until the next try after a failure")
    waiting: str = Field("", description="why the registrar gives no assignment yet")
    cluster: str = ""
    role: Literal["", "server", "agent"] = ""
    cluster_init: bool = False
    server_url: str = ""
    distribution: Literal["", "k3s", "k0s"] = ""
    registrar: str = Field("", description="the registrar URL in use")
    registrar_errors: dict[str, str] = Field(
        default_factory=dict, description="registrar URL -> the last error of a replica that failed"
    )


class KubeStatus(_Section):
    """The ``kubernetes`` section: the runtime this box runs and how it is doing. No secrets."""

    summary: str = "no Kubernetes configured or assigned"
    distribution: Literal["none", "k3s", "k0s"] = "none"
    origin: Literal["none", "fleet", "config"] = "none"
    cluster: str = ""
    version: str = ""
    role: Literal["", "server", "agent"] = ""
    server_url: str = ""
    node_name: str = ""
    node_name_source: str = Field("", description="where the node name came from (agent.node_name or a hostname file)")
    unit: str = ""
    active_state: str = ""
    sub_state: str = ""
    service_restarts: int = 0
    ready: bool = False
    ready_reason: str = ""
    gpu_runtime: str = ""
    gpu_configured: bool = False
    gpu_reason: str = Field("", description="why the NVIDIA runtime is or is not wired (the planner's decision)")
    node_labels: dict[str, str] = Field(
        default_factory=dict, description="the labels the planner gives the node: hardware < config < fleet"
    )
    install_source: str = ""
    binary_sha256: str = ""


class UpgradeStatus(_Section):
    """The ``upgrade`` section: what runs, what is on trial, what is blocked, the active and last upgrade."""

    summary: str
    running: str = Field(description="the version slot this process runs ('unmanaged' outside the launcher)")
    current: str = Field(description="the version the launcher starts next ('factory': the image's)")
    installed: list[str] = Field(default_factory=list)
    trial: Trial | None = Field(None, description="a candidate agent version on trial (launch.json)")
    blocked: list[str] = Field(default_factory=list, description="blocked agent versions")
    failures: dict[str, int] = Field(default_factory=dict, description="agent version -> failed trials")
    blocked_versions: dict[str, dict[str, int]] = Field(
        default_factory=dict, description="kind -> version -> failures, for every blocked version"
    )
    last_rollback: LastRollback | None = None
    active: UpgradeDocument | None = None
    last: UpgradeDocument | None = None


class NetworkStatus(_Section):
    """The ``network`` section: the planner's address choice and the rule that made it, or why it waits."""

    state: Literal["runtime-default", "chosen", "pending"]
    summary: str
    chosen: NetworkPlan | None = None
    pending: NetworkPending | None = None


Section = FleetStatus | KubeStatus | InventorySummary | HealthReport | UpgradeStatus | NetworkStatus | StorageStatus


STATUS_SCHEMA: Final = "edge-agent.status/v1"


class StatusSections(_Section):
    """``sections``: each appears once its controller first published it."""

    fleet: FleetStatus | None = None
    kubernetes: KubeStatus | None = None
    inventory: InventorySummary | None = None
    health: HealthReport | None = None
    upgrade: UpgradeStatus | None = None
    network: NetworkStatus | None = None
    storage: StorageStatus | None = None


def _section_names() -> dict[type[BaseModel], str]:
    """StatusSections is the one listing: a field's name is the section's name, its ``X | None`` type the model."""
    names = {}
    for name, field in StatusSections.model_fields.items():
        (model,) = (a for a in get_args(field.annotation) if a is not type(None))
        names[model] = name
    return names


SECTION_NAMES: Final = _section_names()


class AgentInfo(_Section):
    version: str
    pid: int
    started_at: float = Field(description="wall time the daemon started (seconds since the epoch)")
    uptime_seconds: int
    config_digest: str = Field(description="digest of the merged config in use ('' before one loaded)")
    config_sources: list[str] = Field(description="the config files merged, in order")


class StatusDocument(_Section):
    """``edge-agent.status/v1``: what ``GET /v1/status`` and ``agentctl status -o json`` print."""

    schema_: Literal["edge-agent.status/v1"] = Field(STATUS_SCHEMA, alias="schema")
    agent: AgentInfo
    health: Literal["healthy", "degraded"]
    conditions: list[Condition]
    sections: StatusSections
