"""The "kubernetes" status section (what /v1/status, agentctl and /metrics show). No secrets.
The model lives in agent.model.status."""

from __future__ import annotations

from agent.model.status import KubeStatus

CONDITIONS = ("Installed", "Configured", "Running", "NodeReady")

__all__ = ["CONDITIONS", "KubeStatus"]
