"""The stand-in k3s and k0s read their config files with real parsers, as k3s and k0s do (contract A3, B2).

So an operator's config.yaml.d drop-in may use any YAML, and a rendered file a YAML reader
would take differently from what the agent meant fails here rather than on a box.
"""

from __future__ import annotations

import json
import sys
import time

import pytest

from agent.model.desired import DesiredKube
from agent.runtime.render import Facts, render

from .boxes import Box
from .test_standins_contract import Service, exe, node, services, write
from .test_standins_contract import k3s as box

__all__ = ["box", "services"]  # fixtures, used by name

LABELS = {
    "edge.example.com/site": 'lab "north": #1',
    "edge.example.com/zone": "  leading spaces",
    "edge.example.com/name": "çødé ✓ 🚀",
    "edge.example.com/yes": "yes",
}


def install_rendered(box: Box, **kw: object) -> None:
    d = DesiredKube.model_validate({"origin": "config", "role": "server", **kw})
    for f in render(d, Facts(box.name, nvidia_runtime="/usr/bin/nvidia-container-runtime")).files:
        write(box, f.path, f.data.decode())


def labels_of(box: Box, name: str, binary: str = "k3s") -> dict[str, str]:
    return dict(node(box, name, binary)["metadata"]["labels"])  # type: ignore[index]


@pytest.mark.parametrize("pyyaml", [True, False], ids=["pyyaml", "image-python-without-pyyaml"])
def test_k3s_reads_the_rendered_config_and_awkward_labels_arrive_intact(
    box: Box, services: list[Service], pyyaml: bool
) -> None:
    install_rendered(box, distribution="k3s", node_labels=LABELS, node_taints=("gpu=true:NoSchedule",))
    # -S: no site-packages, as under an image's system python (the agent's JSON must do there too)
    argv = [exe(box, "k3s"), "server"] if pyyaml else [sys.executable, "-S", exe(box, "k3s"), "server"]
    s = Service(box, argv)
    services.append(s)
    assert s.ready()
    got = labels_of(box, "n1")
    assert {k: got.get(k) for k in LABELS} == LABELS
    taints = node(box, "n1")["spec"]["taints"]  # type: ignore[index]
    assert {"key": "gpu", "value": "true", "effect": "NoSchedule"} in taints


def test_k3s_reads_an_operators_dropin_in_any_yaml_style(box: Box, services: list[Service]) -> None:
    install_rendered(box, distribution="k3s", node_labels={"a": "1"})
    write(
        box,
        "/etc/rancher/k3s/config.yaml.d/90-local.yaml",
        "# the operator's own settings\n"
        "node-label+:   # appended to ours\n"
        "  - 'b=two # not a comment'\n"
        "  - >-\n"
        "    c=folded\n"
        "write-kubeconfig-mode: '0644'\n"
        "no-such-flag: yes\n",
    )
    s = Service(box, [exe(box, "k3s"), "server"])
    services.append(s)
    assert s.ready()
    got = labels_of(box, "n1")
    assert (got["a"], got["b"], got["c"]) == ("1", "two # not a comment", "folded")
    assert (box.root / "etc/rancher/k3s/k3s.yaml").stat().st_mode & 0o777 == 0o644
    assert "Unknown flag --no-such-flag found in config.yaml, skipping" in s.stop()


def refused(box: Box, services: list[Service], *argv: str) -> str:
    """Start a service that must not come up: its stderr, once it exited 1 (a wrong start fails, never hangs)."""
    s = Service(box, list(argv))
    services.append(s)
    assert not s.ready(), f"{argv} started"
    err = s.stop()
    assert s.proc.returncode == 1, err
    return err


def test_k3s_refuses_a_dropin_that_is_not_yaml_and_names_it(box: Box, services: list[Service]) -> None:
    write(box, "/etc/rancher/k3s/config.yaml.d/90-local.yaml", 'node-label: ["a=1"\nnode-name: x\n')
    err = refused(box, services, exe(box, "k3s"), "server")
    assert "failed to parse /etc/rancher/k3s/config.yaml.d/90-local.yaml" in err
    write(box, "/etc/rancher/k3s/config.yaml.d/90-local.yaml", "- a list, not flags\n")
    assert "expected a mapping of flag names, got list" in refused(box, services, exe(box, "k3s"), "server")


def k0s_status(box: Box) -> dict[str, object]:
    deadline = time.monotonic() + 10
    while True:
        r = box.run(exe(box, "k0s"), "status", "-o", "json", check=False)
        if r.returncode == 0 or time.monotonic() > deadline:
            return dict(json.loads(r.stdout))
        time.sleep(0.05)


def test_k0s_controller_reads_the_rendered_config_and_containerd_dropin(box: Box, services: list[Service]) -> None:
    install_rendered(box, distribution="k0s", cluster_init=True)
    s = Service(box, [exe(box, "k0s"), "controller", "-c", "/etc/k0s/k0s.yaml", "--enable-worker", "--no-taints"])
    services.append(s)
    assert s.ready()
    config = k0s_status(box)["ClusterConfig"]
    assert config["spec"] == {"storage": {"type": "etcd"}}  # type: ignore[index]
    err = s.stop()
    assert "containerd runtime nvidia from /etc/k0s/containerd.d/nvidia.toml: /usr/bin/nvidia-container-runtime" in err


def test_k0s_refuses_a_broken_config_or_containerd_dropin_and_names_it(box: Box, services: list[Service]) -> None:
    k0s = exe(box, "k0s")
    write(box, "/etc/k0s/k0s.yaml", "apiVersion: k0s.k0sproject.io/v1beta1\nkind: [ClusterConfig\n")
    assert "Error: failed to parse /etc/k0s/k0s.yaml:" in refused(box, services, k0s, "controller", "--single")
    write(box, "/etc/k0s/k0s.yaml", "apiVersion: v1\nkind: ConfigMap\n")
    err = refused(box, services, k0s, "controller", "--single")
    assert "Error: failed to load cluster config /etc/k0s/k0s.yaml" in err
    write(box, "/etc/k0s/k0s.yaml", "apiVersion: k0s.k0sproject.io/v1beta1\nkind: ClusterConfig\n")
    write(box, "/etc/k0s/containerd.d/nvidia.toml", '[plugins."io.containerd.grpc.v1.cri"\nBinaryName = "x"\n')
    err = refused(box, services, k0s, "controller", "--single")
    assert "Error: failed to import containerd drop-in /etc/k0s/containerd.d/nvidia.toml:" in err
