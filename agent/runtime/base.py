"""The Runtime protocol: what the controller needs from k3s and from k0s."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

from agent.model.desired import DesiredKube
from agent.model.fleet import JoinTokens
from agent.runtime.render import Facts, Rendered

Outcome = Literal["unchanged", "started", "restarted", "timeout", "failed"]


@dataclass(frozen=True)
class Activation:
    outcome: Outcome
    detail: str = ""


@dataclass(frozen=True)
class NodeReadiness:
    status: Literal["True", "False", "Unknown"]
    reason: str
    message: str = ""
    kubelet_version: str = ""
    raw: str = field(default="", repr=False)  # the Node JSON as read, for checks beyond Ready (addresses)


class Runtime(Protocol):
    distribution: str

    @property
    def binary(self) -> str: ...

    def render(self, d: DesiredKube, facts: Facts) -> Rendered: ...

    async def activate(self, d: DesiredKube, r: Rendered, *, apply: bool, unit_changed: bool) -> Activation:
        """Make the unit run the rendered config: with ``apply`` (something changed since the
        last successful activation) reinstall/restart; else only start it when it is down."""
        ...

    async def healthy(self, d: DesiredKube, unit: str) -> tuple[bool, str]:
        """Is the service up (beyond the unit state): (ok, why not)."""
        ...

    async def node_ready(self, d: DesiredKube, node: str) -> NodeReadiness: ...

    async def join_tokens(self, d: DesiredKube) -> JoinTokens | None: ...

    def gpu_configured(self) -> bool:
        """The NVIDIA runtime is wired into the distribution's containerd."""
        ...

    async def stop(self) -> None: ...

    async def uninstall(self) -> None: ...
