"""What the fleet tells a box: its cluster assignment, and the join tokens a server reports back."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from agent.model.network import NetworkOverride


class Assignment(BaseModel):
    """The cluster a box is told to run. ``role`` uses k3s words; k0s maps
    server -> controller (with a worker) and agent -> worker."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    cluster: str
    distribution: Literal["k3s", "k0s"]
    version: str = ""
    role: Literal["server", "agent"]
    cluster_init: bool = False
    server_url: str = ""
    join_token: SecretStr = SecretStr("")
    labels: dict[str, str] = Field(default_factory=dict)
    taints: list[str] = Field(default_factory=list)
    network: NetworkOverride | None = Field(
        None,
        description="per-site override of the box's [network] policy",
        exclude_if=lambda v: v is None,  # absent, as the previous release wrote an assignment
    )


class JoinTokens(BaseModel):
    """Tokens a running server reads from its distribution, for the registrar to hand to joiners."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    server: SecretStr
    agent: SecretStr
