"""Builders for the planner's inputs in the planner tests: a config, an inventory, a fleet assignment.

Each builder states its defaults once; a test passes only what its case is about.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import SecretStr

from agent.model.config import AgentConfig, KubernetesSection
from agent.model.fleet import Assignment
from agent.model.inventory import Gpu, Inventory

SCANNED_AT = datetime(2026, 12, 2, tzinfo=UTC)


def kube_config(**kube: object) -> AgentConfig:
    """Defaults everywhere but ``[kubernetes]``, validated as if read from a file."""
    return AgentConfig(kubernetes=KubernetesSection.model_validate(kube))


def gpu_inventory(*gpus: Gpu) -> Inventory:
    """An inventory holding only ``gpus``."""
    return Inventory(scanned_at=SCANNED_AT, gpus=gpus)


def joining_agent(**fields: Any) -> Assignment:
    """The fleet's word: join k0s cluster ``c1`` as an agent of https://10.0.0.1:6443 with token ``tok``;
    ``fields`` change any of that or add more."""
    told: dict[str, Any] = {
        "cluster": "c1",
        "distribution": "k0s",
        "role": "agent",
        "server_url": "https://10.0.0.1:6443",
        "join_token": SecretStr("tok"),
    }
    return Assignment.model_validate({**told, **fields})
