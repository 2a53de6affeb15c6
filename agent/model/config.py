"""The agent's configuration schema: frozen, unknown keys forbidden.

Every key is documented, with its default, in config.example.toml (a test
loads that file, so the two cannot drift).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AgentSection(Section):
    node_name: str = Field("", description="Kubernetes node name; empty means the hostname")
    log_level: Literal["debug", "info", "warning", "error"] = "info"


class ApiSection(Section):
    socket_group: str = Field("edge-agent", description="group allowed on the local socket")
    remote_listen: str = Field(
        "0.0.0.0:7443", description="HOST:PORT of the mTLS remote API once enrolled; empty disables it"
    )


class FleetSection(Section):
    url: str = Field("", description="registrar base URL, https://host:port; empty: no fleet")
    ca_pin: str = Field("", description="sha256:<hex> of the fleet CA certificate (DER)")
    bootstrap_token: SecretStr = SecretStr("")
    site: str = ""
    labels: dict[str, str] = Field(default_factory=dict)
    retry_max: float = Field(300.0, gt=0, description="cap of the retry backoff, seconds")
    heartbeat_interval: float = Field(30.0, gt=0)


class InventorySection(Section):
    hotplug: bool = True
    nvidia_smi_timeout: float = Field(5.0, gt=0)
    rescan_interval: float = Field(300.0, gt=0, description="full rescan even without uevents")


class KubernetesSection(Section):
    distribution: Literal["none", "k3s", "k0s"] = Field(
        "none", description="'none' leaves the choice to the fleet assignment"
    )
    version: str = ""
    role: Literal["server", "agent"] = "server"
    cluster_init: bool = False
    server_url: str = ""
    token: SecretStr = SecretStr("")
    node_labels: dict[str, str] = Field(default_factory=dict)
    node_taints: list[str] = Field(default_factory=list)
    airgap_dir: str = "/usr/lib/edge-agent/airgap"
    binary_url: str = ""
    binary_sha256: str = ""
    start_timeout: float = Field(60.0, gt=0)
    ready_timeout: float = Field(600.0, gt=0)


class UpgradeSection(Section):
    release_keys: list[str] = Field(default_factory=list, description="Ed25519 public keys, base64")
    health_deadline: float = Field(60.0, gt=0)
    maintenance_window: str = Field("", description="HH:MM-HH:MM in UTC; empty means any time")
    update_lock: str = "/run/edge-agent/update.lock"


class AgentConfig(Section):
    agent: AgentSection = Field(default_factory=AgentSection)
    api: ApiSection = Field(default_factory=ApiSection)
    fleet: FleetSection = Field(default_factory=FleetSection)
    inventory: InventorySection = Field(default_factory=InventorySection)
    kubernetes: KubernetesSection = Field(default_factory=KubernetesSection)
    upgrade: UpgradeSection = Field(default_factory=UpgradeSection)
