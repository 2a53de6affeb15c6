"""The agent's configuration schema: frozen, unknown keys forbidden.

Every key is documented, with its default, in config.example.toml (a test
loads that file, so the two cannot drift).
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from agent.model.network import NetworkSection
from agent.model.storage import StorageSection

_PIN = re.compile(r"sha256:[0-9a-fA-F]{64}")
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_WINDOW = re.compile(r"([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)")


def _url(value: str, schemes: tuple[str, ...]) -> str:
    """Empty, or an absolute URL with one of ``schemes`` and a host."""
    if value:
        u = urlsplit(value)
        if u.scheme not in schemes or not u.hostname:
            raise ValueError(f"expected {' or '.join(s + '://HOST[:PORT]' for s in schemes)}")
        try:
            u.port  # noqa: B018 (raises on a bad port)
        except ValueError as exc:
            raise ValueError(f"bad port: {exc}") from None
    return value


def _host_port(value: str) -> str:
    if value:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("expected HOST:PORT, e.g. 0.0.0.0:7443 or [::]:7443")
    return value


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

    _listen = field_validator("remote_listen")(_host_port)


class FleetSection(Section):
    url: str | list[str] = Field(
        "", description="registrar base URL https://host:port, or a list of replicas tried in turn; empty: no fleet"
    )
    ca_pin: str = Field("", description="sha256:<hex> of the fleet CA certificate (DER)")
    bootstrap_token: SecretStr = SecretStr("")
    site: str = ""
    labels: dict[str, str] = Field(default_factory=dict)
    retry_max: float = Field(300.0, gt=0, description="cap of the retry backoff, seconds")
    heartbeat_interval: float = Field(30.0, gt=0)

    @field_validator("url", mode="before")
    @classmethod
    def _url(cls, v: object) -> str | list[str]:
        if isinstance(v, str):
            return _url(v, ("https",))
        if not isinstance(v, list):
            raise ValueError("expected an https URL or a list of them")
        if not v:
            raise ValueError("expected at least one https URL in the list (or leave fleet.url out: no fleet)")
        for i, item in enumerate(v):
            if not isinstance(item, str) or not item:
                raise ValueError(f"[{i}]: expected an https URL, got {item!r}")
            try:
                _url(item, ("https",))
            except ValueError as exc:
                raise ValueError(f"[{i}]: {exc}, got {item!r}") from None
        return list(v)

    @property
    def urls(self) -> tuple[str, ...]:
        """Every registrar replica, in the order they are tried (empty: no fleet)."""
        if isinstance(self.url, str):
            return (self.url,) if self.url else ()
        return tuple(self.url)

    @field_validator("ca_pin")
    @classmethod
    def _pin(cls, v: str) -> str:
        if v and not _PIN.fullmatch(v):
            raise ValueError("expected sha256:<64 hex digits> (edge-registrar init prints it)")
        return v.lower()


class InventorySection(Section):
    hotplug: bool = True
    nvidia_smi_timeout: float = Field(5.0, gt=0)
    rescan_interval: float = Field(300.0, gt=0, description="full rescan even without uevents")


# -- [health]: hardware health (agent/health/) -------------------------------------------------
class HealthSection(Section):
    enabled: bool = Field(True, description="poll NVMe SMART logs, GPU health and NIC links")
    interval: float = Field(60.0, ge=5, description="seconds between health polls")
    command_timeout: float = Field(10.0, gt=0, description="seconds nvme / nvidia-smi may take per call")
    nvme_temperature_max_celsius: float = Field(70.0, gt=0)
    nvme_percent_used_max: int = Field(80, ge=1, le=255, description="wear (percentage used) that raises NvmeWearHigh")
    gpu_temperature_max_celsius: float = Field(85.0, gt=0)
    gpu_uncorrected_ecc_max: int = Field(0, ge=0, description="uncorrected volatile ECC errors tolerated")
    link_flaps_per_hour_max: int = Field(
        3, ge=1, description="link down/up cycles in the last hour that raise LinkFlapping"
    )
    nic_expected_mbps: dict[str, int] = Field(
        default_factory=dict, description="interface glob -> expected Mb/s (else its fastest link mode)"
    )

    @field_validator("nic_expected_mbps")
    @classmethod
    def _speeds(cls, v: dict[str, int]) -> dict[str, int]:
        for glob, mbps in v.items():
            if mbps <= 0:
                raise ValueError(f"{glob}: expected a speed in Mb/s above 0, got {mbps}")
        return v


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

    @field_validator("server_url")
    @classmethod
    def _server(cls, v: str) -> str:
        return _url(v, ("https",))

    @field_validator("binary_url")
    @classmethod
    def _binary(cls, v: str) -> str:
        return _url(v, ("https", "http"))

    @field_validator("binary_sha256")
    @classmethod
    def _sha(cls, v: str) -> str:
        if v and not _HEX64.fullmatch(v):
            raise ValueError("expected 64 hex digits (sha256sum output)")
        return v.lower()


class UpgradeSection(Section):
    release_keys: list[str] = Field(default_factory=list, description="Ed25519 public keys, base64")
    health_deadline: float = Field(60.0, gt=0)
    maintenance_window: str = Field("", description="HH:MM-HH:MM in UTC; empty means any time")
    update_lock: str = "/run/edge-agent/update.lock"

    @field_validator("maintenance_window")
    @classmethod
    def _window(cls, v: str) -> str:
        if v.strip() and not _WINDOW.fullmatch(v.strip()):
            raise ValueError("expected HH:MM-HH:MM in UTC, e.g. 02:00-04:00")
        return v

    @field_validator("release_keys")
    @classmethod
    def _keys(cls, v: list[str]) -> list[str]:
        for i, key in enumerate(v):
            try:
                raw = base64.b64decode(key, validate=True)
            except (binascii.Error, ValueError):
                raise ValueError(f"[{i}]: not base64") from None
            if len(raw) != 32:
                raise ValueError(f"[{i}]: expected an Ed25519 public key (32 bytes), got {len(raw)} bytes")
        return v


class AgentConfig(Section):
    agent: AgentSection = Field(default_factory=AgentSection)
    api: ApiSection = Field(default_factory=ApiSection)
    fleet: FleetSection = Field(default_factory=FleetSection)
    inventory: InventorySection = Field(default_factory=InventorySection)
    health: HealthSection = Field(default_factory=HealthSection)
    kubernetes: KubernetesSection = Field(default_factory=KubernetesSection)
    network: NetworkSection = Field(default_factory=NetworkSection)
    storage: StorageSection = Field(default_factory=StorageSection)
    upgrade: UpgradeSection = Field(default_factory=UpgradeSection)
