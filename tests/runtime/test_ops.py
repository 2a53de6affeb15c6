"""GPU runtime pick-up, uninstall/reset by each tool's rules, distribution switch, operator mistakes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from agent.model.inventory import Inventory

from .boxes import SHIM_PID, Box, alive, wait_gone


@pytest.mark.slow
async def test_k3s_restarts_once_when_the_nvidia_runtime_appears(make_box: Callable[..., Box]) -> None:
    box = make_box("gpu1")
    box.bundle("k3s")
    box.set_config(distribution="k3s")
    ctl = box.controller()
    await box.converge(ctl)
    assert box.section()["gpu_runtime"] == ""
    box.add_nvidia_gpu()
    box.add_nvidia_toolkit()
    n = len(box.calls())
    await box.converge(ctl, until=lambda: box.section()["gpu_configured"])
    restarts = [c for c in box.calls()[n:] if c["prog"] == "systemctl" and c["argv"][0] == "restart"]
    assert len(restarts) == 1
    assert box.section()["gpu_runtime"] == "/usr/bin/nvidia-container-runtime"
    toml = (box.root / "var/lib/rancher/k3s/agent/etc/containerd/config.toml").read_text()
    assert 'BinaryName = "/usr/bin/nvidia-container-runtime"' in toml
    n = len(box.calls())
    await ctl.reconcile()
    assert not [c for c in box.calls()[n:] if c["argv"][0] == "restart"]


async def test_a_toolkit_without_an_nvidia_gpu_gets_no_runtime_and_status_says_why(
    make_box: Callable[..., Box],
) -> None:
    """The inventory decides: nvidia-container-runtime on PATH of a box with no NVIDIA GPU (a golden
    image with the toolkit baked in) must not switch containerd's runtime."""
    box = make_box("nogpu")
    box.bundle("k0s")
    box.add_nvidia_toolkit()
    box.ctx.inventory.set(Inventory(scanned_at=datetime.now(UTC)))
    box.set_config(distribution="k0s")
    await box.converge(box.controller())
    assert not (box.root / "etc/k0s/containerd.d/nvidia.toml").exists()
    k = box.section()
    assert (k["gpu_runtime"], k["gpu_configured"]) == ("", False)
    assert (
        k["gpu_reason"] == "no NVIDIA GPU in the inventory; /usr/bin/nvidia-container-runtime is installed but unused"
    )


@pytest.mark.slow
async def test_k0s_gets_a_containerd_dropin_for_the_nvidia_runtime(make_box: Callable[..., Box]) -> None:
    box = make_box("gpu0")
    box.bundle("k0s")
    box.add_nvidia_gpu()
    box.add_nvidia_toolkit()
    box.set_config(distribution="k0s")
    await box.converge(box.controller())
    dropin = (box.root / "etc/k0s/containerd.d/nvidia.toml").read_text()
    assert 'BinaryName = "/usr/bin/nvidia-container-runtime"' in dropin
    assert box.section()["gpu_configured"] is True


@pytest.mark.slow
async def test_k3s_uninstall_does_killalls_work_and_keeps_node_password(make_box: Callable[..., Box]) -> None:
    box = make_box("u1")
    box.bundle("k3s")
    box.set_config(distribution="k3s")
    ctl = box.controller()
    await box.converge(ctl)
    password = (box.root / "etc/rancher/node/password").read_text()
    await ctl.uninstall()
    stops = [c["argv"] for c in box.calls() if c["prog"] == "systemctl" and c["argv"][0] == "stop"]
    assert ["stop", "k3s.service"] in stops  # no k3s-killall.sh on a box the agent installed: it does the work
    for gone in ("etc/rancher/k3s", "var/lib/rancher/k3s", "usr/local/bin/k3s", "etc/systemd/system/k3s.service"):
        assert not (box.root / gone).exists(), gone
    assert (box.root / "etc/rancher/node/password").read_text() == password
    assert box.run("systemctl", "is-active", "k3s", check=False).stdout.strip() == "inactive"


@pytest.mark.slow
async def test_k3s_stop_ends_the_pods_that_stopping_the_unit_leaves_running(make_box: Callable[..., Box]) -> None:
    box = make_box("st")
    box.bundle("k3s")
    box.set_config(distribution="k3s")
    ctl = box.controller()
    await box.converge(ctl)
    pod = int((box.root / SHIM_PID).read_text())
    box.run("systemctl", "stop", "k3s")
    assert box.run("systemctl", "is-active", "k3s", check=False).stdout.strip() == "inactive"
    assert alive(pod), "KillMode=process: the stand-in's pod should outlive its unit, as with k3s"
    await ctl.stop()
    assert wait_gone(pod), "stop() left the pod's shim running"
    assert (box.root / "var/lib/rancher/k3s/server/token").exists()  # killall keeps cluster data


@pytest.mark.slow
async def test_k3s_uninstall_stops_short_while_another_k3s_unit_remains(make_box: Callable[..., Box]) -> None:
    box = make_box("u2")
    box.bundle("k3s")
    box.set_config(distribution="k3s")
    ctl = box.controller()
    await box.converge(ctl)
    (box.root / "etc/systemd/system/k3s-extra.service").write_text("[Service]\nExecStart=/bin/true\n")
    await ctl.uninstall()
    assert not (box.root / "etc/systemd/system/k3s.service").exists()
    assert (box.root / "usr/local/bin/k3s").exists()
    assert (box.root / "var/lib/rancher/k3s").exists()


@pytest.mark.slow
async def test_k0s_reset_after_stop_keeps_binary(make_box: Callable[..., Box]) -> None:
    box = make_box("u3")
    box.bundle("k0s")
    box.set_config(distribution="k0s")
    ctl = box.controller()
    await box.converge(ctl)
    n = len(box.calls())
    await ctl.uninstall()
    done = [c["argv"][0] for c in box.calls()[n:] if c["prog"] == "k0s"]
    assert done.index("stop") < done.index("reset")
    assert not (box.root / "var/lib/k0s").exists()
    assert not (box.root / "etc/systemd/system/k0scontroller.service").exists()
    assert (box.root / "usr/local/bin/k0s").exists()


@pytest.mark.slow
async def test_switching_distribution_uninstalls_the_old_one(make_box: Callable[..., Box]) -> None:
    box = make_box("sw")
    box.bundle("k3s")
    box.bundle("k0s")
    box.set_config(distribution="k3s")
    await box.converge(box.controller())
    box.set_config(distribution="k0s")
    await box.converge(box.controller())
    assert box.section()["distribution"] == "k0s"
    assert not (box.root / "etc/systemd/system/k3s.service").exists()
    assert box.run("systemctl", "is-active", "k3s", check=False).stdout.strip() == "inactive"


async def test_operator_dropin_with_reserved_label_fails_start_and_says_why(make_box: Callable[..., Box]) -> None:
    box = make_box("op")
    box.bundle("k3s")
    local = box.root / "etc/rancher/k3s/config.yaml.d/90-local.yaml"
    local.parent.mkdir(parents=True)
    local.write_text('no-such-flag: true\nnode-label+:\n  - "kubernetes.io/role=edge"\n')
    box.set_config(distribution="k3s")
    await box.controller().reconcile()
    running = box.cond("Running")
    assert (running.status, running.reason) == ("False", "InvalidNodeLabels"), running
    assert "kubernetes.io/role" in running.message
    assert "Unknown flag --no-such-flag found in config.yaml, skipping" in box.journal("k3s")


async def test_k0s_not_root(make_box: Callable[..., Box]) -> None:
    box = make_box("nr", EDGE_STANDIN_EUID="1000")
    box.bundle("k0s")
    box.set_config(distribution="k0s")
    await box.controller().reconcile()
    running = box.cond("Running")
    assert running.status == "False" and "this command must be run as root" in running.message


async def test_invalid_config_label_is_reported_and_nothing_is_touched(make_box: Callable[..., Box]) -> None:
    box = make_box("bad")
    box.bundle("k3s")
    box.set_config(distribution="k3s", node_labels={"kubernetes.io/role": "edge"})
    await box.controller().reconcile()
    cond = box.cond("Configured")
    assert (cond.status, cond.reason) == ("False", "InvalidConfig")
    assert "kubernetes.node_labels.kubernetes.io/role" in cond.message
    assert not (box.root / "usr/local/bin/k3s").exists()
    assert box.calls() == []
