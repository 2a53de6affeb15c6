"""Desired state: everything the reconcilers act on, decided by one pure planner (data only).

:func:`agent.planner.plan` builds one frozen :class:`Desired` from config, the
inventory, the fleet assignment and a few host facts; the planner controller
publishes it on ``ctx.desired``. The runtime controller, the renderer and the
upgrade installers read it and nothing else of each other: the node name, the
GPU runtime and "the fleet assignment wins" are decided here once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from agent.model.network import NetworkChoice, NetworkPending, NetworkPlan
from agent.model.storage import StoragePlan

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


class GpuRuntime(BaseModel):
    """The GPU runtime decision: the NVIDIA container runtime is wired into containerd only when
    the inventory shows an NVIDIA GPU and the toolkit is installed; ``reason`` says which held."""

    model_config = ConfigDict(frozen=True)

    nvidia: bool = False
    binary: str = Field("", description="box path of nvidia-container-runtime when nvidia is true")
    reason: str = "no NVIDIA GPU in the inventory"


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
    node_name: str = Field("", description="the node's name: agent.node_name, else the box's hostname")
    node_name_source: str = Field("", description="where node_name came from (config key or hostname file)")
    node_labels: dict[str, str] = Field(default_factory=dict)
    node_taints: tuple[str, ...] = ()
    source: InstallSource = Field(default_factory=InstallSource)
    start_timeout: float = 60.0
    ready_timeout: float = 600.0
    gpu: GpuRuntime = Field(default_factory=GpuRuntime)
    network: NetworkPlan | None = Field(None, description="the chosen addresses; None: k3s/k0s pick (default route)")
    local_storage_paths: tuple[str, ...] = Field((), description="filesystem-mode volumes for local-path")

    @property
    def joins(self) -> bool:
        """True when this node joins an existing cluster (needs server URL and token)."""
        return bool(self.server_url)

    @property
    def single(self) -> bool:
        """A lone server that nothing will join (k3s sqlite server, k0s ``--single``)."""
        return self.role == "server" and not self.cluster_init and not self.server_url


class UpgradePolicy(BaseModel):
    """How upgrades may go on this box (from ``[upgrade]``, checked)."""

    model_config = ConfigDict(frozen=True)

    release_keys: tuple[str, ...] = Field((), description="Ed25519 public keys (base64) bundles must be signed by")
    health_deadline: float = 60.0
    maintenance_window: str = Field("", description="HH:MM-HH:MM in UTC; empty means any time")
    update_lock: str = "/run/edge-agent/update.lock"
    require_fleet: bool = Field(False, description="a new agent must reach the fleet before it commits")


class HostFacts(BaseModel):
    """What the planner needs to know about the box that is not hardware: read by the planner
    controller (agent.hostfacts), passed in, so the planner itself stays pure."""

    model_config = ConfigDict(frozen=True)

    hostname: str = ""
    hostname_source: str = ""
    nvidia_runtime: str = Field("", description="box path of nvidia-container-runtime when installed, else empty")
    since: datetime | None = Field(None, description="when this agent started waiting: deadlines count from here")


class Desired(BaseModel):
    """The one desired state of the box. ``kube`` is None when nothing asks for Kubernetes.
    When the newest inputs cannot be planned, ``refused`` says why and the rest is the last
    good plan (the box keeps running what it runs)."""

    model_config = ConfigDict(frozen=True)

    kube: DesiredKube | None = None
    network: NetworkChoice | None = Field(None, description="the address choice, or why it waits")
    storage: StoragePlan | None = Field(None, description="local NVMe for CSI; None: [storage] is off")
    upgrade: UpgradePolicy = Field(default_factory=UpgradePolicy)
    refused: str = ""
    refused_reason: Literal["", "InvalidConfig", "InvalidNodeName"] = ""

    @property
    def network_pending(self) -> bool:
        """The node address waits for a NIC's address (DHCP late at boot)."""
        return isinstance(self.network, NetworkPending)
