"""k0s end to end: `k0s install` writes the unit, start returns at once, we poll readiness."""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Callable

import pytest

from .boxes import Box, mtimes

ACTIONS = {("k0s", "install"), ("k0s", "start"), ("k0s", "stop"), ("systemctl", "start"), ("systemctl", "restart")}


def actions(calls: list[dict[str, object]]) -> list[object]:
    return [c for c in calls if (c["prog"], c["argv"][0]) in ACTIONS]  # type: ignore[index]


async def test_single_controller(make_box: Callable[..., Box]) -> None:
    box = make_box("c1")
    box.bundle("k0s")
    box.set_config(distribution="k0s", node_labels={"site": "lab"}, node_taints=["edge=true:NoSchedule"])
    ctl = box.controller()
    await box.converge(ctl)

    section = box.section()
    assert (section["distribution"], section["version"], section["unit"]) == ("k0s", "v1.36.3+k0s.1", "k0scontroller")
    unit = (box.root / "etc/systemd/system/k0scontroller.service").read_text()
    assert "ExecStart=/usr/local/bin/k0s controller --config=/etc/k0s/k0s.yaml --single=true" in unit
    assert "--labels=site=lab" in unit and "--taints=edge=true:NoSchedule" in unit
    status = json.loads(box.run(str(box.root / "usr/local/bin/k0s"), "status", "-o", "json").stdout)
    assert (status["Role"], status["SingleNode"], status["Workloads"]) == ("controller", True, True)
    node = json.loads(box.run(str(box.root / "usr/local/bin/k0s"), "kubectl", "get", "node", "c1", "-o", "json").stdout)
    assert node["metadata"]["labels"]["site"] == "lab"
    assert node["spec"]["taints"] == [{"key": "edge", "value": "true", "effect": "NoSchedule"}]
    # a --single cluster takes no joiners, so there are no tokens to hand out
    assert box.ctx.join_tokens.value is None
    assert (box.root / "var/lib/k0s/images/k0s-airgap-bundle-v1-linux-amd64.tar").is_file()

    files = ["/etc/k0s/k0s.yaml", "/etc/systemd/system/k0scontroller.service", "/usr/local/bin/k0s"]
    before = mtimes(box.root, files)
    n = len(box.calls())
    await ctl.reconcile()
    assert mtimes(box.root, files) == before
    assert actions(box.calls()[n:]) == []


@pytest.mark.slow
async def test_config_change_stops_reinstalls_and_starts(make_box: Callable[..., Box]) -> None:
    box = make_box("c1")
    box.bundle("k0s")
    box.set_config(distribution="k0s")
    await box.converge(box.controller())
    box.add_nvidia_gpu()  # a GPU and its toolkit arrive
    box.add_nvidia_toolkit()
    n = len(box.calls())
    await box.converge(box.controller())
    done = [(c["prog"], c["argv"][0], "--force" in c["argv"]) for c in actions(box.calls()[n:])]  # type: ignore[index]
    assert done[:3] == [("k0s", "stop", False), ("k0s", "install", True), ("k0s", "start", False)]
    assert (box.root / "etc/k0s/containerd.d/nvidia.toml").is_file()


async def test_label_change_after_registration_restarts_nothing(make_box: Callable[..., Box]) -> None:
    """Labels apply only at first registration, so a hotplug that changes them is no reason to restart."""
    box = make_box("c1")
    box.bundle("k0s")
    box.set_config(distribution="k0s", node_labels={"a": "1"})
    await box.converge(box.controller())
    box.set_config(distribution="k0s", node_labels={"a": "2"})
    n = len(box.calls())
    await box.converge(box.controller())
    assert actions(box.calls()[n:]) == []


@pytest.mark.slow
async def test_controller_and_joining_worker(make_box: Callable[..., Box]) -> None:
    ctl_box = make_box("c1", "10.0.0.1")
    ctl_box.bundle("k0s")
    ctl_box.set_config(distribution="k0s", cluster_init=True)
    await ctl_box.converge(ctl_box.controller())
    tokens = ctl_box.ctx.join_tokens.value
    assert tokens is not None
    token_file = ctl_box.root / "var/lib/edge-agent/runtime/k0s-join-tokens.json"
    assert token_file.stat().st_mode & 0o777 == 0o600
    # created once: a second pass reuses them rather than minting new ones
    n = len(ctl_box.calls())
    await ctl_box.controller().reconcile()
    assert not [c for c in ctl_box.calls()[n:] if c["argv"][:1] == ["token"]]

    worker = make_box("w1", "10.0.0.2")
    worker.bundle("k0s")
    worker.set_config(
        distribution="k0s", role="agent", server_url="https://10.0.0.1:6443", token=tokens.agent.get_secret_value()
    )
    await worker.converge(worker.controller())
    assert worker.section()["unit"] == "k0sworker"
    assert (worker.root / "etc/k0s/join-token").stat().st_mode & 0o777 == 0o600
    nodes = ctl_box.run(str(ctl_box.root / "usr/local/bin/k0s"), "kubectl", "get", "nodes").stdout
    assert "c1   Ready" in nodes and "w1   Ready" in nodes


def forged_token(server: str) -> str:
    """Well-formed (base64 of a gzipped kubeconfig) but minted by no cluster."""
    kubeconfig = (
        f"apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: {base64.b64encode(b'x').decode()}\n"
        f"    server: {server}\nusers:\n- name: kubelet-bootstrap\n  user:\n    token: abcdef.0123456789abcdef\n"
    )
    return base64.b64encode(gzip.compress(kubeconfig.encode())).decode()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("token", "reason", "says"),
    [
        ("bm90LWEtdG9rZW4=", "TokenRejected", "failed to decode join token"),
        (forged_token("https://10.0.0.1:6443"), "JoinFailed", "failed to bootstrap kubelet client configuration"),
    ],
)
async def test_worker_with_a_bad_token_says_so(
    make_box: Callable[..., Box], token: str, reason: str, says: str
) -> None:
    ctl_box = make_box("c1", "10.0.0.1")
    ctl_box.bundle("k0s")
    ctl_box.set_config(distribution="k0s", cluster_init=True)
    await ctl_box.converge(ctl_box.controller())

    worker = make_box("w1", "10.0.0.2")
    worker.bundle("k0s")
    worker.set_config(distribution="k0s", role="agent", server_url="https://10.0.0.1:6443", token=token)
    await worker.converge(worker.controller(), until=lambda: worker.cond("Running").reason == reason, timeout=8)
    assert says in worker.cond("Running").message
    assert worker.cond("NodeReady").status == "False"
    assert token not in worker.cond("Running").message
