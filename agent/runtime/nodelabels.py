"""Keeps the agent's own labels true on its Node after it joined, with the node's own credentials.

Reads: the labels the planner wants (hardware labels from the inventory plus
configured ones), the Node (``kubectl get node``). Writes: that Node's labels
(``kubectl label node``), /var/lib/edge-agent/nodelabels.json.

Registration labels apply once (contract A3, B1), so a hot-added GPU would stay
invisible; this reconciler runs after registration and on every inventory
change. It uses the kubelet's kubeconfig (contract A4: k3s
``/var/lib/rancher/k3s/agent/kubelet.kubeconfig``, B5: k0s ``/var/lib/k0s/kubelet.conf``),
which NodeRestriction lets update only this Node. It touches only labels it
owns: every ``edge-agent.io/`` label, and the NFD-format
(``feature.node.kubernetes.io/``) labels it set itself, remembered across
restarts. A label someone else set is never changed or removed.

Also here: the ``nvidia`` RuntimeClass manifest k0s controllers need (k3s makes its own).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from agent.errors import ExecError
from agent.fsio import atomic_write, atomic_write_json
from agent.inventory.labels import NFD, OURS
from agent.model.desired import DesiredKube
from agent.paths import Paths
from agent.runtime.layout import LAYOUTS
from agent.sysexec import Runner


@dataclass(frozen=True)
class LabelSync:
    """One pass: what changed, or why it could not be done (status shows it; the next pass retries)."""

    ok: bool
    set: dict[str, str] = field(default_factory=dict)
    removed: tuple[str, ...] = ()
    message: str = ""


def kubectl_argv(distribution: Literal["k3s", "k0s"], binary: str) -> list[str]:
    """The runtime's own kubectl on the kubelet's credentials."""
    return [binary, "kubectl", "--kubeconfig", LAYOUTS[distribution].kubelet_kubeconfig]


def labels_of(node_json: str) -> dict[str, str]:
    """The labels of a Node document (``kubectl get node -o json``)."""
    return dict(json.loads(node_json).get("metadata", {}).get("labels") or {})


def owned(key: str, remembered: frozenset[str]) -> bool:
    return key.startswith(OURS) or (key.startswith(NFD) and key in remembered)


class NodeLabeler:
    def __init__(self, runner: Runner, kubectl: Sequence[str], node: str, memory: Path, timeout: float = 20.0):
        self.runner = runner
        self.kubectl = list(kubectl)
        self.node = node
        self.memory = memory
        self.timeout = timeout

    def remembered(self) -> frozenset[str]:
        try:
            doc = json.loads(self.memory.read_text())
            return frozenset(str(k) for k in doc.get("nfd_labels_set", []))
        except (OSError, ValueError, AttributeError):
            return frozenset()

    def _remember(self, keys: frozenset[str]) -> None:
        atomic_write_json(self.memory, {"schema": 1, "node": self.node, "nfd_labels_set": sorted(keys)})

    def adopt(self, registration_labels: Mapping[str, str]) -> None:
        """The NFD-format labels the agent passed at first registration are its own too."""
        nfd = {k for k in registration_labels if k.startswith(NFD)}
        if nfd - self.remembered():
            self._remember(self.remembered() | nfd)

    async def current(self) -> dict[str, str]:
        out = await self.runner.run([*self.kubectl, "get", "node", self.node, "-o", "json"], timeout=self.timeout)
        return labels_of(out.stdout)

    async def reconcile(self, desired: Mapping[str, str], node_json: str = "") -> LabelSync:
        """Make the owned labels on the Node equal ``desired``'s (labels outside what we own are ignored).
        ``node_json``: the Node as the caller just read it (one kubectl call less per pass)."""
        wanted = {k: v for k, v in desired.items() if k.startswith((OURS, NFD))}
        try:
            labels = labels_of(node_json) if node_json else await self.current()
        except (ExecError, ValueError, AttributeError) as exc:
            return LabelSync(False, message=f"cannot read node {self.node}: {_why(exc)}")
        mine = self.remembered()
        to_set = {
            k: v
            for k, v in wanted.items()
            if labels.get(k) != v and (k.startswith(OURS) or k not in labels or k in mine)
        }
        to_remove = tuple(sorted(k for k in labels if owned(k, mine) and k not in wanted))
        if not to_set and not to_remove:
            return LabelSync(True)
        # remembered before the write: a crash after it still knows these are ours
        self._remember(mine | {k for k in to_set if k.startswith(NFD)})
        argv = [*self.kubectl, "label", "node", self.node, "--overwrite"]
        argv += [f"{k}={v}" for k, v in sorted(to_set.items())] + [f"{k}-" for k in to_remove]
        try:
            await self.runner.run(argv, timeout=self.timeout)
        except ExecError as exc:
            return LabelSync(False, message=f"cannot label node {self.node}: {_why(exc)}")
        self._remember((mine | {k for k in to_set if k.startswith(NFD)}) - set(to_remove))
        return LabelSync(True, set=to_set, removed=to_remove)


def _why(exc: Exception) -> str:
    text = getattr(exc, "stderr", "") or str(exc)
    lines = text.strip().splitlines()
    return lines[-1][:300] if lines else str(exc)


# --- the nvidia RuntimeClass on k0s (contract B5: k0s detects no NVIDIA runtime; k3s creates its own, A8) ---
K0S_NVIDIA_MANIFEST = "/var/lib/k0s/manifests/edge-agent-nvidia/runtimeclass.yaml"
NVIDIA_RUNTIMECLASS = (
    "# Written by edge-agent: this box has an NVIDIA GPU and its container runtime.\n"
    "apiVersion: node.k8s.io/v1\n"
    "kind: RuntimeClass\n"
    "metadata:\n"
    "  name: nvidia\n"
    "  labels:\n"
    "    app.kubernetes.io/managed-by: edge-agent\n"
    "handler: nvidia\n"
)


def sync_nvidia_runtimeclass(paths: Paths, desired: DesiredKube) -> bool:
    """On a k0s controller, keep the ``nvidia`` RuntimeClass in k0s's manifest directory exactly while
    the planner wires the NVIDIA runtime (an NVIDIA GPU in the inventory, the toolkit installed).
    Returns True when the file changed."""
    target = paths.under(K0S_NVIDIA_MANIFEST)
    if desired.distribution == "k0s" and desired.role == "server" and desired.gpu.nvidia:
        return atomic_write(target, NVIDIA_RUNTIMECLASS)
    if target.exists():
        target.unlink()
        return True
    return False
