"""The pure renderer: exact, byte-stable files and the k0s install argv."""

from __future__ import annotations

import tomllib

import yaml
from pydantic import SecretStr

from agent.model.desired import DesiredKube
from agent.runtime.render import Facts, render


def desired(**kw: object) -> DesiredKube:
    base: dict[str, object] = {"origin": "config", "distribution": "k3s", "role": "server"}
    base.update(kw)
    return DesiredKube.model_validate(base)


def files(d: DesiredKube, facts: Facts) -> dict[str, str]:
    return {f.path: f.data.decode() for f in render(d, facts).files}


def test_k3s_first_server() -> None:
    r = render(desired(cluster_init=True, token=SecretStr("s3cret")), Facts("box-1"))
    assert r.unit == "k3s"
    out = {f.path: f for f in r.files}
    assert yaml.safe_load(out["/etc/rancher/k3s/config.yaml"].data) == {
        "node-name": "box-1",
        "write-kubeconfig-mode": "0600",
        "cluster-init": True,
    }
    env = out["/etc/systemd/system/k3s.service.env"]
    assert (env.data, env.mode, env.secret) == (b"K3S_TOKEN=s3cret\n", 0o600, True)
    unit = out["/etc/systemd/system/k3s.service"].data.decode()
    assert "Type=notify\n" in unit and "TimeoutStartSec=0\n" in unit
    assert unit.endswith("ExecStart=/usr/local/bin/k3s server\n")
    assert "/etc/systemd/system/k3s-agent.service" in r.remove


def test_k3s_agent_labels_in_dropin_and_secrets_not_in_config() -> None:
    d = desired(
        role="agent",
        server_url="https://10.0.0.1:6443",
        token=SecretStr("K10aa::server:bb"),
        node_labels={"b": "2", "a": "1"},
        node_taints=("gpu=true:NoSchedule",),
    )
    out = files(d, Facts("box-2"))
    assert yaml.safe_load(out["/etc/rancher/k3s/config.yaml"]) == {
        "node-name": "box-2",
        "server": "https://10.0.0.1:6443",
    }
    assert yaml.safe_load(out["/etc/rancher/k3s/config.yaml.d/50-edge-agent.yaml"]) == {
        "node-label": ["a=1", "b=2"],
        "node-taint": ["gpu=true:NoSchedule"],
    }
    assert "K10aa" not in out["/etc/rancher/k3s/config.yaml"] + out["/etc/systemd/system/k3s-agent.service"]
    assert out["/etc/systemd/system/k3s-agent.service"].endswith("ExecStart=/usr/local/bin/k3s agent\n")


def test_rendering_is_byte_stable() -> None:
    d = desired(node_labels={"z": "1", "a": "2"})
    assert render(d, Facts("n")) == render(d.model_copy(), Facts("n"))
    assert render(d, Facts("n")).digest == render(d, Facts("n")).digest
    assert render(d, Facts("n")).digest != render(d, Facts("m")).digest


def test_k0s_single_controller() -> None:
    r = render(desired(distribution="k0s"), Facts("box-1"))
    assert r.unit == "k0scontroller"
    assert r.install_argv == (
        "/usr/local/bin/k0s",
        "install",
        "controller",
        "-c",
        "/etc/k0s/k0s.yaml",
        "--single",
        "--kubelet-extra-args=--hostname-override=box-1",
    )
    k0s_yaml = yaml.safe_load(files(desired(distribution="k0s"), Facts("box-1"))["/etc/k0s/k0s.yaml"])
    assert k0s_yaml["spec"] == {"storage": {"type": "kine"}}


def test_k0s_worker_with_token_labels_and_gpu() -> None:
    d = desired(
        distribution="k0s",
        role="agent",
        server_url="https://10.0.0.1:6443",
        token=SecretStr("H4sI"),
        node_labels={"site": "lab"},
        node_taints=("a=b:NoExecute",),
    )
    r = render(d, Facts("w1", nvidia_runtime="/usr/bin/nvidia-container-runtime"))
    assert r.unit == "k0sworker"
    assert r.install_argv[2:] == (
        "worker",
        "--token-file",
        "/etc/k0s/join-token",
        "--labels",
        "site=lab",
        "--taints",
        "a=b:NoExecute",
        "--kubelet-extra-args=--hostname-override=w1",
    )
    out = {f.path: f for f in r.files}
    assert out["/etc/k0s/join-token"].mode == 0o600
    assert "/etc/k0s/k0s.yaml" not in out
    nvidia = tomllib.loads(out["/etc/k0s/containerd.d/nvidia.toml"].data.decode())
    runtime = nvidia["plugins"]["io.containerd.grpc.v1.cri"]["containerd"]["runtimes"]["nvidia"]
    assert runtime["options"] == {"BinaryName": "/usr/bin/nvidia-container-runtime"}


def test_k0s_cluster_init_controller_runs_workloads() -> None:
    r = render(desired(distribution="k0s", cluster_init=True), Facts("c1"))
    assert "--enable-worker" in r.install_argv and "--no-taints" in r.install_argv
    assert "--single" not in r.install_argv
