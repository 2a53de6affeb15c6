"""Every YAML and TOML file the renderer writes, read back by independent parsers (PyYAML, tomllib)."""

from __future__ import annotations

import json
import tomllib
from typing import Any

import pytest
import yaml
from pydantic import SecretStr

from agent.model.desired import DesiredKube
from agent.runtime.render import Facts, render

MANAGED = "# Managed by edge-agent; rewritten on every reconcile, do not edit."
K3S = "/etc/rancher/k3s/config.yaml"
K3S_DROPIN = "/etc/rancher/k3s/config.yaml.d/50-edge-agent.yaml"
K0S = "/etc/k0s/k0s.yaml"
NVIDIA = "/etc/k0s/containerd.d/nvidia.toml"
GPU = "/usr/bin/nvidia-container-runtime"

# what an operator or the inventory might put in labels and taints, each a trap for a naive writer
AWKWARD_LABELS = {
    "edge.example.com/site": 'lab "north": #1',
    "edge.example.com/zone": "  leading spaces",
    "edge.example.com/ünï": "çødé ✓ 🚀",
    "yes": "yes",
    "mode": "0600",
    "quote": "it's 'single'",
}
AWKWARD_TAINTS = ('gpu="yes":NoSchedule', "k=v # not a comment:NoExecute", " lead=x:PreferNoSchedule")
AWKWARD_LABEL_ARGS = sorted(f"{k}={v}" for k, v in AWKWARD_LABELS.items())


def desired(**kw: object) -> DesiredKube:
    return DesiredKube.model_validate({"origin": "config", "role": "server", **kw})


def nvidia(binary: str) -> dict[str, Any]:
    runtime = {"runtime_type": "io.containerd.runc.v2", "options": {"BinaryName": binary}}
    return {"version": 2, "plugins": {"io.containerd.grpc.v1.cri": {"containerd": {"runtimes": {"nvidia": runtime}}}}}


def cluster_config(storage: str) -> dict[str, Any]:
    return {
        "apiVersion": "k0s.k0sproject.io/v1beta1",
        "kind": "ClusterConfig",
        "metadata": {"name": "k0s"},
        "spec": {"storage": {"type": storage}},
    }


JOIN = {"server_url": "https://10.0.0.1:6443", "token": SecretStr("K10aa::server:bb")}

CASES: dict[str, tuple[DesiredKube, Facts, dict[str, Any]]] = {
    "k3s first server": (
        desired(distribution="k3s", cluster_init=True, token=SecretStr("s3cret")),
        Facts("box-1", agent_token="p@ss: #word"),
        {
            K3S: {
                "node-name": "box-1",
                "write-kubeconfig-mode": "0600",
                "cluster-init": True,
                "agent-token": "p@ss: #word",
            },
            K3S_DROPIN: {},
        },
    ),
    "k3s joining server, GPU box": (
        desired(distribution="k3s", **JOIN, node_labels={"edge-agent.io/gpu.count": "1"}),
        Facts("box-2", nvidia_runtime=GPU),
        {
            K3S: {"node-name": "box-2", "write-kubeconfig-mode": "0600", "server": "https://10.0.0.1:6443"},
            K3S_DROPIN: {"node-label": ["edge-agent.io/gpu.count=1"]},
        },
    ),
    "k3s agent, awkward labels and taints": (
        desired(distribution="k3s", role="agent", **JOIN, node_labels=AWKWARD_LABELS, node_taints=AWKWARD_TAINTS),
        Facts("ünï-box"),
        {
            K3S: {"node-name": "ünï-box", "server": "https://10.0.0.1:6443"},
            K3S_DROPIN: {"node-label": AWKWARD_LABEL_ARGS, "node-taint": list(AWKWARD_TAINTS)},
        },
    ),
    "k0s single controller, no GPU": (desired(distribution="k0s"), Facts("c1"), {K0S: cluster_config("kine")}),
    "k0s first HA controller, GPU": (
        desired(distribution="k0s", cluster_init=True, node_labels=AWKWARD_LABELS),
        Facts("c1", nvidia_runtime=GPU),
        {K0S: cluster_config("etcd"), NVIDIA: nvidia(GPU)},
    ),
    "k0s joining controller": (
        desired(distribution="k0s", server_url="https://10.0.0.1:9443", token=SecretStr("H4sI")),
        Facts("c2"),
        {K0S: cluster_config("etcd")},
    ),
    "k0s worker, GPU at an awkward path": (
        desired(distribution="k0s", role="agent", server_url="https://10.0.0.1:6443", token=SecretStr("H4sI")),
        Facts("w1", nvidia_runtime='/opt/nvidia "toolkit"/bin\\nvidia-container-runtime'),
        {NVIDIA: nvidia('/opt/nvidia "toolkit"/bin\\nvidia-container-runtime')},
    ),
}


def parsed(path: str, data: bytes) -> Any:
    text = data.decode()
    if path.endswith(".toml"):
        return tomllib.loads(text)
    return yaml.safe_load(text)


@pytest.mark.parametrize("case", CASES)
def test_every_rendered_config_file_parses_to_the_intended_values(case: str) -> None:
    d, facts, want = CASES[case]
    rendered = render(d, facts)
    configs = {f.path: f.data for f in rendered.files if f.path.endswith((".yaml", ".toml"))}
    assert set(configs) == set(want)
    for path, data in configs.items():
        assert parsed(path, data) == want[path], path
        assert data.decode().splitlines()[0] == MANAGED, path


@pytest.mark.parametrize("case", [c for c in CASES if any(p.endswith(".yaml") for p in CASES[c][2])])
def test_rendered_yaml_is_comment_lines_then_json(case: str) -> None:
    """What an image's stand-in (no PyYAML there) and any JSON tool read: the same values as YAML gives."""
    d, facts, want = CASES[case]
    for f in render(d, facts).files:
        if f.path.endswith(".yaml"):
            lines = f.data.decode().splitlines()
            body = "\n".join(line for line in lines if not line.startswith("#"))
            assert json.loads(body) == want[f.path], f.path


def test_text_a_yaml_reader_would_not_take_literally_survives() -> None:
    """Line breaks YAML folds inside quotes (NEL, LS, PS), characters it refuses (DEL, C1), a BOM."""
    value = "tab\there new\nline nel\x85 ls\u2028 ps\u2029 del\x7f c1\x9f bom\ufeff end"
    d = desired(distribution="k3s", role="agent", **JOIN, node_labels={"edge.example.com/note": value})
    data = next(f.data for f in render(d, Facts("n")).files if f.path == K3S_DROPIN)
    assert yaml.safe_load(data) == {"node-label": [f"edge.example.com/note={value}"]}


def test_the_same_input_renders_the_same_bytes() -> None:
    d = desired(distribution="k3s", role="agent", **JOIN, node_labels=AWKWARD_LABELS, node_taints=AWKWARD_TAINTS)
    first = render(d, Facts("ünï-box"))
    again = render(d.model_copy(deep=True), Facts("ünï-box"))
    assert first.files == again.files and first.digest == again.digest
