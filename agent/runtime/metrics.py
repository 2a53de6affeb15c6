"""/metrics lines for the Kubernetes runtime (conditions are exported by the core already)."""

from __future__ import annotations

from collections.abc import Iterator

from agent.context import AgentContext


def _escape(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def metrics(ctx: AgentContext) -> Iterator[str]:
    k = ctx.board.sections().get("kubernetes")
    if not isinstance(k, dict) or k.get("distribution", "none") == "none":
        return
    labels = ",".join(
        f'{name}="{_escape(k.get(name, ""))}"' for name in ("distribution", "version", "role", "node_name", "cluster")
    )
    yield "# HELP edge_agent_kubernetes_info The Kubernetes runtime this box runs; always 1."
    yield "# TYPE edge_agent_kubernetes_info gauge"
    yield f"edge_agent_kubernetes_info{{{labels}}} 1"
    yield "# HELP edge_agent_kubernetes_node_ready 1 when the node's Ready condition is True."
    yield "# TYPE edge_agent_kubernetes_node_ready gauge"
    yield f"edge_agent_kubernetes_node_ready {int(bool(k.get('ready')))}"
    yield "# HELP edge_agent_kubernetes_service_active 1 when the k3s/k0s unit is active."
    yield "# TYPE edge_agent_kubernetes_service_active gauge"
    unit = f'unit="{_escape(k.get("unit", ""))}"'
    yield f"edge_agent_kubernetes_service_active{{{unit}}} {int(k.get('active_state') == 'active')}"
    yield "# HELP edge_agent_kubernetes_service_restarts systemd's restart count of the k3s/k0s unit."
    yield "# TYPE edge_agent_kubernetes_service_restarts gauge"
    yield f"edge_agent_kubernetes_service_restarts{{{unit}}} {int(k.get('service_restarts', 0))}"
    yield "# HELP edge_agent_kubernetes_gpu_runtime 1 when the NVIDIA container runtime is wired into containerd."
    yield "# TYPE edge_agent_kubernetes_gpu_runtime gauge"
    yield f"edge_agent_kubernetes_gpu_runtime {int(bool(k.get('gpu_configured')))}"
