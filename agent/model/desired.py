"""Desired Kubernetes runtime state: what the planner wants this box to run (data only).

Built by :func:`agent.planner.plan` from config, the fleet assignment and the
hardware labels; consumed by the runtime controller and the renderer.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

Distribution = Literal["k3s", "k0s"]
Role = Literal["server", "agent"]


class InstallSource(BaseModel):
    """Where the runtime binary (and its air-gap images) come from.

    The binary is taken from ``airgap_dir`` when it holds one, else downloaded
    from ``binary_url``; either way it must match ``binary_sha256`` (from the
    bundle's ``SHA256SUMS``/``sha256sum-<arch>.txt`` when not given here)."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    airgap_dir: str = ""
    binary_url: str = ""
    binary_sha256: str = ""


class DesiredKube(BaseModel):
    """The Kubernetes node this box should be. ``role`` uses k3s words:
    k0s maps server -> controller (+worker) and agent -> worker."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    origin: Literal["fleet", "config"]
    cluster: str = ""
    distribution: Distribution
    version: str = ""
    role: Role
    cluster_init: bool = False
    server_url: str = ""
    token: SecretStr = SecretStr("")
    node_name: str = Field("", description="empty: the box's hostname")
    node_labels: dict[str, str] = Field(default_factory=dict)
    node_taints: tuple[str, ...] = ()
    source: InstallSource = Field(default_factory=InstallSource)
    start_timeout: float = 60.0
    ready_timeout: float = 600.0

    @property
    def joins(self) -> bool:
        """True when this node joins an existing cluster (needs server URL and token)."""
        return bool(self.server_url)

    @property
    def single(self) -> bool:
        """A lone server that nothing will join (k3s sqlite server, k0s ``--single``)."""
        return self.role == "server" and not self.cluster_init and not self.server_url
