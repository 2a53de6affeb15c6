"""/metrics families for the Kubernetes runtime (conditions are exported by the core already)."""

from __future__ import annotations

from collections.abc import Iterator

from agent.api.exposition import gauge
from agent.context import AgentContext


def metrics(ctx: AgentContext) -> Iterator[str]:
    k = ctx.board.sections().get("kubernetes")
    if not isinstance(k, dict) or k.get("distribution", "none") == "none":
        return
    info = {name: k.get(name, "") for name in ("distribution", "version", "role", "node_name", "cluster")}
    unit = {"unit": k.get("unit", "")}
    for family in (
        gauge("edge_agent_kubernetes_info", "The Kubernetes runtime this box runs; always 1.").add(1, info),
        gauge("edge_agent_kubernetes_node_ready", "1 when the node's Ready condition is True.").add(
            int(bool(k.get("ready")))
        ),
        gauge("edge_agent_kubernetes_service_active", "1 when the k3s/k0s unit is active.").add(
            int(k.get("active_state") == "active"), unit
        ),
        gauge("edge_agent_kubernetes_service_restarts", "systemd's restart count of the k3s/k0s unit.").add(
            int(k.get("service_restarts", 0)), unit
        ),
        gauge("edge_agent_kubernetes_gpu_runtime", "1 when the NVIDIA container runtime is wired into containerd.").add(
            int(bool(k.get("gpu_configured")))
        ),
    ):
        yield from family.lines()
