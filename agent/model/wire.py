"""The membership wire (``edge-registrar.membership/v1``): what an agent and the registrar exchange
over mTLS after EST enrollment. Both sides import these models (agent.fleet.registrar_client,
agent.fleet.enrollment; agent.registrar.membership), so the two cannot drift apart.

- ``POST /v1/fleet/register``  RegisterRequest
- ``POST /v1/fleet/heartbeat`` HeartbeatRequest (its ``status`` is a HeartbeatStatus)
- ``GET  /v1/fleet/assignment``
each answered with a MembershipAnswer. The JSON is what the previous release sent and accepted, key
for key: requests ignore fields they do not know (a newer agent talking to an older registrar and
the reverse both work), and the registrar's limits (lengths, ports) are part of the models.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

from agent.model.conditions import Condition
from agent.model.fleet import Assignment

SCHEMA = "edge-registrar.membership/v1"


def _with_token(value: Assignment) -> dict[str, Any]:
    doc = value.model_dump(mode="json")
    doc["join_token"] = value.join_token.get_secret_value()
    return doc


# An assignment that serialises its join token as itself: on the wire (mTLS, to the node it is for)
# and in the 0600 state file (a restart joins without the registrar). Everywhere else it stays masked.
AssignmentWithToken = Annotated[Assignment, PlainSerializer(_with_token, return_type=dict[str, Any])]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class RegisterRequest(_Wire):
    """Sent once per start (and when the inventory changes): where the box listens and what it is."""

    addresses: list[str] = Field(default_factory=list, max_length=64)
    api_port: int = Field(7443, ge=0, le=65535)
    inventory: dict[str, Any] = Field(
        default_factory=dict,
        description="the box's Inventory (agent.model.inventory) as JSON; kept as sent, so an agent of "
        "another release registers all the same",
    )
    dmi_serial: str = Field("", max_length=128)
    site: str = Field("", max_length=128)
    labels: dict[str, str] = Field(default_factory=dict)


class JoinTokensReport(_Wire):
    """A server's join tokens, for the registrar to hand to the nodes that join its cluster."""

    server: str = Field(min_length=1, max_length=4096)
    agent: str = Field("", max_length=4096)


class HeartbeatStatus(_Wire):
    """The box's status as a heartbeat carries it: the ``edge-agent.status/v1`` health, conditions and
    sections (agent.model.status), which the registrar keeps for ``nodes show`` and rollouts."""

    health: Literal["healthy", "degraded"]
    conditions: list[Condition] = Field(default_factory=list)
    sections: dict[str, Any] = Field(default_factory=dict)


class HeartbeatRequest(_Wire):
    status: dict[str, Any] | None = Field(
        None,
        description="a HeartbeatStatus as JSON, stored as sent (older agents' too); null or left out: the same as "
        "the last one this node's heartbeats carried, which a registrar that answers status_kept keeps",
    )
    boot_id: str = Field("", max_length=64)  # which box sends it (agent.registrar.duplicates)
    hardware: str = Field("", max_length=64)
    join_tokens: JoinTokensReport | None = None


class MembershipAnswer(_Wire):
    """The registrar's answer to every membership call."""

    schema_: str = Field(SCHEMA, alias="schema")
    node_id: str = ""
    state: str = Field("", description="approved | pending (certified while approval policies judge it); "
                       "'' from older registrars")  # fmt: skip
    cluster: str = ""
    assignment: AssignmentWithToken | None = None
    waiting: str = Field("", description="why there is no assignment (yet)")
    crl_number: int = 0
    status_kept: bool = Field(
        False,
        description="a heartbeat may leave out a status that did not change: this registrar keeps the last one "
        "(false from older registrars, which store what each heartbeat carries)",
    )

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)

    def to_bytes(self) -> bytes:
        """``to_json`` serialised, in one step (pydantic-core's serialiser: a heartbeat's answer)."""
        return self.model_dump_json(by_alias=True).encode()
