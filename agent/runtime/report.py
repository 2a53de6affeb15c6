"""The "kubernetes" status section (what /v1/status, agentctl and /metrics show). No secrets."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

CONDITIONS = ("Installed", "Configured", "Running", "NodeReady")


class KubeStatus(BaseModel):
    model_config = ConfigDict(frozen=True)

    summary: str = "no Kubernetes configured or assigned"
    distribution: Literal["none", "k3s", "k0s"] = "none"
    origin: Literal["none", "fleet", "config"] = "none"
    cluster: str = ""
    version: str = ""
    role: str = ""
    server_url: str = ""
    node_name: str = ""
    node_name_source: str = ""
    unit: str = ""
    active_state: str = ""
    sub_state: str = ""
    service_restarts: int = 0
    ready: bool = False
    ready_reason: str = ""
    gpu_runtime: str = ""
    gpu_configured: bool = False
    gpu_reason: str = ""
    install_source: str = ""
    binary_sha256: str = ""
