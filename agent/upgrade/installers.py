"""The bundle kinds this box installs besides the agent itself, built once by the daemon.

The upgrade manager only knows the :class:`agent.upgrade.manager.KindInstaller`
protocol; what stands behind each kind is chosen here and passed in, so the
manager, the k3s/k0s installer and the air-gap installer never import each other.
"""

from __future__ import annotations

from agent.context import AgentContext
from agent.upgrade.airgap import AirgapInstaller
from agent.upgrade.kube import KubeInstaller
from agent.upgrade.manager import KindInstaller


def default_installers(ctx: AgentContext) -> dict[str, KindInstaller]:
    return {"k3s": KubeInstaller(ctx, "k3s"), "k0s": KubeInstaller(ctx, "k0s"), "airgap-images": AirgapInstaller(ctx)}
