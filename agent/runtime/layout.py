"""Where k3s and k0s keep their files on a box: declared once, read by everything else.

Box paths (``Paths.under`` maps them under ``--root``); the facts behind them
are in contracts/k3s-k0s.md (A1 paths, A4 node-local kubeconfigs, A8 air-gap
images). The renderer, the installer, the upgrade installers, ``agentctl
doctor`` and the support bundle all name a file through this module.
"""

from __future__ import annotations

from dataclasses import dataclass

SYSTEMD = "/etc/systemd/system"


@dataclass(frozen=True)
class DistroLayout:
    name: str
    binary: str
    images: str  # air-gap image tarballs, imported at start
    config: str
    kubelet_kubeconfig: str  # the node's own credentials (agents and workers)
    admin_kubeconfig: str  # servers/controllers only
    token_files: tuple[str, ...]  # files holding join tokens (never copied into a support bundle)

    def kubeconfig(self, role: str) -> str:
        """The kubeconfig a node of ``role`` talks to its API server with."""
        return self.admin_kubeconfig if role == "server" else self.kubelet_kubeconfig


DISTRIBUTIONS = ("k3s", "k0s")
# Where each distribution keeps each file of a DistroLayout, side by side: field -> (k3s path, k0s path),
# in the order of DISTRIBUTIONS.
_PATHS: dict[str, tuple[str, str]] = {
    "binary": ("/usr/local/bin/k3s", "/usr/local/bin/k0s"),
    "images": ("/var/lib/rancher/k3s/agent/images", "/var/lib/k0s/images"),
    "config": ("/etc/rancher/k3s/config.yaml", "/etc/k0s/k0s.yaml"),
    "kubelet_kubeconfig": ("/var/lib/rancher/k3s/agent/kubelet.kubeconfig", "/var/lib/k0s/kubelet.conf"),
    "admin_kubeconfig": ("/etc/rancher/k3s/k3s.yaml", "/var/lib/k0s/pki/admin.conf"),
}
_TOKEN_FILES = {
    "k3s": (
        "/var/lib/rancher/k3s/server/token",
        "/var/lib/rancher/k3s/server/agent-token",
        "/var/lib/rancher/k3s/server/node-token",
    ),
    "k0s": ("/etc/k0s/join-token",),
}


def _layout(name: str) -> DistroLayout:
    column = DISTRIBUTIONS.index(name)
    paths = {field: per_distribution[column] for field, per_distribution in _PATHS.items()}
    return DistroLayout(name=name, token_files=_TOKEN_FILES[name], **paths)


K3S = _layout("k3s")
K3S_DROPIN = "/etc/rancher/k3s/config.yaml.d/50-edge-agent.yaml"
K3S_SERVER_TOKEN = K3S.token_files[0]
K3S_AGENT_TOKEN = K3S.token_files[1]
K3S_CONTAINERD_CONFIG = "/var/lib/rancher/k3s/agent/etc/containerd/config.toml"
K3S_DATA = "/var/lib/rancher/k3s"
K3S_REMOVES = ("/etc/rancher/k3s", "/run/k3s", K3S_DATA, "/var/lib/kubelet")  # what k3s-uninstall.sh deletes

K0S = _layout("k0s")
K0S_TOKEN = K0S.token_files[0]
K0S_NVIDIA = "/etc/k0s/containerd.d/nvidia.toml"
K0S_REMOVES = ("/var/lib/k0s", "/run/k0s")  # what `k0s reset` deletes: data dir (kubelet root included), runtime dir

LAYOUTS = {"k3s": K3S, "k0s": K0S}
RUNTIME_DATA_DIRS = (K3S_DATA, "/var/lib/k0s", "/var/lib/containerd")
