"""Live node labels against the stand-in k3s and k0s, with the node's own kubelet credentials (contract A4, B5).

The agent's labels follow the hardware after registration; labels it does not own
(an operator's, NFD's own) survive every pass; the kubelet identity is held to
NodeRestriction (its own Node, no kubernetes.io labels).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import yaml

from agent.model.desired import DesiredKube, HostFacts
from agent.model.inventory import Gpu
from agent.paths import Paths
from agent.planner import plan
from agent.runtime.nodelabels import (
    K0S_NVIDIA_MANIFEST,
    NodeLabeler,
    kubectl_argv,
    sync_nvidia_runtimeclass,
)
from agent.sysexec import ProcessRunner

from .boxes import Box
from .plans import gpu_inventory, kube_config
from .test_standins_contract import Service, exe, node, services
from .test_standins_contract import k3s as box

__all__ = ["box", "services"]  # fixtures, used by name


def planned(distribution: str, *gpus: Gpu, toolkit: bool = True) -> DesiredKube:
    """The planner's decision for a server with these GPUs (and the NVIDIA toolkit, unless told)."""
    config = kube_config(distribution=distribution)
    facts = HostFacts(hostname="gpu-1", nvidia_runtime="/usr/bin/nvidia-container-runtime" if toolkit else "")
    kube = plan(config, gpu_inventory(*gpus), None, facts).kube
    assert kube is not None
    return kube


GPU = {
    "edge-agent.io/gpu.count": "1",
    "edge-agent.io/gpu.model": "NVIDIA-L4",
    "feature.node.kubernetes.io/pci-0302_10de.present": "true",
    "feature.node.kubernetes.io/pci-10de.present": "true",
}
NO_GPU = {"edge-agent.io/gpu.count": "0"}


def labeler(box: Box, distribution: str = "k3s") -> NodeLabeler:
    runner = ProcessRunner(path=box.path, base_env=box.env)
    argv = kubectl_argv("k3s" if distribution == "k3s" else "k0s", exe(box, distribution))
    return NodeLabeler(runner, argv, "n1", box.root / "var/lib/edge-agent/nodelabels.json")


def labels(box: Box, binary: str = "k3s") -> dict[str, str]:
    return dict(node(box, "n1", binary)["metadata"]["labels"])  # type: ignore[index]


def test_a_hot_added_gpu_shows_and_a_removed_one_disappears_while_others_labels_stay(
    box: Box, services: list[Service]
) -> None:
    s = Service(box, [exe(box, "k3s"), "server", "--node-name", "n1", "--node-label", "edge-agent.io/gpu.count=0"])
    services.append(s)
    assert s.ready()
    # an operator's label and one NFD itself set, with the admin kubeconfig
    box.run(exe(box, "k3s"), "kubectl", "label", "node", "n1", "team=ml", "feature.node.kubernetes.io/cpu-avx512=true")
    lab = labeler(box)

    first = asyncio.run(lab.reconcile(GPU))  # a GPU was hot-added after registration

    assert first.ok, first
    got = labels(box)
    assert {k: got.get(k) for k in GPU} == GPU
    assert got["team"] == "ml" and got["feature.node.kubernetes.io/cpu-avx512"] == "true"

    second = asyncio.run(lab.reconcile(NO_GPU))  # and removed again

    assert second.ok and set(second.removed) == set(GPU) - set(NO_GPU), second
    got = labels(box)
    assert got["edge-agent.io/gpu.count"] == "0"
    assert not {k for k in GPU if k != "edge-agent.io/gpu.count"} & set(got)
    assert got["team"] == "ml" and got["feature.node.kubernetes.io/cpu-avx512"] == "true"
    # remembered across a restart of the agent: a fresh labeler still knows which NFD labels it set
    asyncio.run(labeler(box).reconcile(GPU))
    assert asyncio.run(labeler(box).reconcile(NO_GPU)).removed


def test_nfd_labels_given_at_registration_are_adopted_and_follow_the_hardware(
    box: Box, services: list[Service]
) -> None:
    registration = {"edge-agent.io/gpu.count": "1", "feature.node.kubernetes.io/pci-10de.present": "true"}
    argv = [exe(box, "k3s"), "server", "--node-name", "n1"]
    for k, v in registration.items():
        argv += ["--node-label", f"{k}={v}"]
    s = Service(box, argv)
    services.append(s)
    assert s.ready()
    lab = labeler(box)
    lab.adopt(registration)
    result = asyncio.run(lab.reconcile(NO_GPU))
    assert result.ok and result.removed == ("feature.node.kubernetes.io/pci-10de.present",), result
    assert "feature.node.kubernetes.io/pci-10de.present" not in labels(box)


def test_an_nfd_label_someone_else_set_is_never_overwritten(box: Box, services: list[Service]) -> None:
    s = Service(box, [exe(box, "k3s"), "server", "--node-name", "n1"])
    services.append(s)
    assert s.ready()
    box.run(exe(box, "k3s"), "kubectl", "label", "node", "n1", "feature.node.kubernetes.io/pci-10de.present=false")
    result = asyncio.run(labeler(box).reconcile(GPU))
    assert result.ok and "feature.node.kubernetes.io/pci-10de.present" not in result.set
    assert labels(box)["feature.node.kubernetes.io/pci-10de.present"] == "false"
    asyncio.run(labeler(box).reconcile(NO_GPU))
    assert labels(box)["feature.node.kubernetes.io/pci-10de.present"] == "false"


def test_the_kubelet_identity_is_held_to_node_restriction(box: Box, services: list[Service]) -> None:
    s = Service(box, [exe(box, "k3s"), "server", "--node-name", "n1"])
    services.append(s)
    assert s.ready()
    kubelet = ["kubectl", "--kubeconfig", "/var/lib/rancher/k3s/agent/kubelet.kubeconfig", "label", "node"]
    r = box.run(exe(box, "k3s"), *kubelet, "n1", "kubernetes.io/role=x", check=False)
    assert r.returncode == 1 and "is not allowed to modify labels: kubernetes.io/role" in r.stderr
    r = box.run(exe(box, "k3s"), *kubelet, "n1", "node.kubernetes.io/pool=a", "feature.node.kubernetes.io/x=1")
    assert r.returncode == 0


def test_k0s_worker_labels_through_kubelet_conf(box: Box, services: list[Service]) -> None:
    argv = [exe(box, "k0s"), "controller", "--single", "--kubelet-extra-args=--hostname-override=n1"]
    s = Service(box, argv)
    services.append(s)
    assert s.ready(), s.stop()
    assert (box.root / "var/lib/k0s/kubelet.conf").exists()
    result = asyncio.run(labeler(box, "k0s").reconcile(GPU))
    assert result.ok, result
    assert labels(box, "k0s")["edge-agent.io/gpu.model"] == "NVIDIA-L4"


def test_k0s_controllers_get_the_nvidia_runtimeclass_only_with_an_nvidia_gpu(tmp_path: Path) -> None:
    paths = Paths(tmp_path)
    l4 = Gpu(kind="pci", name="NVIDIA L4", vendor_id="10de", device_id="27b8")
    bmc = Gpu(kind="pci", name="ASPEED", vendor_id="1a03", display_only=True)
    target = paths.under(K0S_NVIDIA_MANIFEST)
    assert not sync_nvidia_runtimeclass(paths, planned("k0s", bmc)) and not target.exists()
    assert not sync_nvidia_runtimeclass(paths, planned("k3s", l4))  # k3s makes its own
    assert not sync_nvidia_runtimeclass(paths, planned("k0s", l4, toolkit=False))  # no handler to name
    assert sync_nvidia_runtimeclass(paths, planned("k0s", l4, bmc))
    doc = yaml.safe_load(target.read_text())
    assert doc["kind"] == "RuntimeClass" and doc["metadata"]["name"] == "nvidia" and doc["handler"] == "nvidia"
    assert doc["apiVersion"] == "node.k8s.io/v1"
    assert sync_nvidia_runtimeclass(paths, planned("k0s", bmc)) and not target.exists()
