"""The one planner: config + inventory + assignment + host facts -> one frozen Desired.

The node name, the GPU runtime and "the fleet assignment wins" are decided here for the
runtime and the upgrader alike; a plan that cannot be made keeps the last good one."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from agent.context import AgentContext
from agent.model.config import AgentConfig, AgentSection, ApiSection, UpgradeSection
from agent.model.desired import Desired, HostFacts
from agent.model.inventory import Gpu
from agent.paths import Paths
from agent.planner import plan
from agent.planning import PlannerController
from agent.state import StateStore
from agent.status import StatusBoard
from agent.sysexec import ProcessRunner
from agent.watch import Watch

from .plans import gpu_inventory, joining_agent, kube_config

FACTS = HostFacts(hostname="Edge-7.Berlin.example.com", hostname_source="/etc/hostname")
TOOLKIT = HostFacts(
    hostname="gpu-1", hostname_source="/etc/hostname", nvidia_runtime="/usr/bin/nvidia-container-runtime"
)
A2 = Gpu(kind="pci", name="NVIDIA A2", vendor_id="10de", device_id="25b6", driver="nvidia")
BMC = Gpu(kind="pci", name="ASPEED Graphics Family", vendor_id="1a03", device_id="2000", display_only=True)


def k3s(**kube: object) -> AgentConfig:
    return kube_config(distribution="k3s", **kube)


def test_desired_is_frozen_and_nothing_asked_means_no_kubernetes() -> None:
    d = plan(AgentConfig(), gpu_inventory(A2), None, FACTS)
    assert d.kube is None and d.refused == ""
    with pytest.raises(ValidationError):
        d.refused = "x"  # type: ignore[misc]


def test_the_hostname_is_the_node_name_whole_and_lower_cased_and_says_where_it_came_from() -> None:
    kube = plan(k3s(), None, None, FACTS).kube
    assert kube is not None
    assert (kube.node_name, kube.node_name_source) == ("edge-7.berlin.example.com", "/etc/hostname")
    config = k3s().model_copy(update={"agent": AgentSection(node_name="rack-3")})
    named = plan(config, None, None, FACTS).kube
    assert named is not None and (named.node_name, named.node_name_source) == ("rack-3", "agent.node_name")


@pytest.mark.parametrize(
    ("gpus", "facts", "nvidia", "reason"),
    [
        ((A2,), TOOLKIT, True, "1 NVIDIA GPU; containerd runtime nvidia uses /usr/bin/nvidia-container-runtime"),
        ((A2, A2), FACTS, False, "2 NVIDIA GPUs, but nvidia-container-runtime is not installed (the NVIDIA toolkit)"),
        (
            (BMC,),
            TOOLKIT,
            False,
            "no NVIDIA GPU in the inventory; /usr/bin/nvidia-container-runtime is installed but unused",
        ),
        ((), FACTS, False, "no NVIDIA GPU in the inventory"),
    ],
)
def test_the_gpu_runtime_is_decided_from_the_inventory(
    gpus: tuple[Gpu, ...], facts: HostFacts, nvidia: bool, reason: str
) -> None:
    kube = plan(k3s(), gpu_inventory(*gpus), None, facts).kube
    assert kube is not None
    assert (kube.gpu.nvidia, kube.gpu.reason) == (nvidia, reason)
    assert kube.gpu.binary == (facts.nvidia_runtime if nvidia else "")


def test_hardware_labels_come_from_the_inventory_and_the_fleet_assignment_wins() -> None:
    assignment = joining_agent(cluster="gpu-lab", labels={"edge-agent.io/gpu.count": "9"})
    d = plan(k3s(role="server"), gpu_inventory(A2), assignment, TOOLKIT)
    assert d.kube is not None
    assert (d.kube.origin, d.kube.distribution, d.kube.role, d.kube.cluster) == ("fleet", "k0s", "agent", "gpu-lab")
    assert "edge-agent.io/gpu.model" in d.kube.node_labels  # from the inventory
    assert d.kube.node_labels["edge-agent.io/gpu.count"] == "9"  # fleet > hardware


def test_the_upgrade_policy_is_part_of_the_plan() -> None:
    config = AgentConfig(
        upgrade=UpgradeSection(health_deadline=7, maintenance_window=" 02:00-04:00 "),
        api=ApiSection(remote_listen="127.0.0.1:9443"),
    )
    policy = plan(config, None, None, FACTS).upgrade
    assert (policy.health_deadline, policy.maintenance_window, policy.require_fleet) == (7, "02:00-04:00", True)


async def test_an_unplannable_input_keeps_the_last_good_plan_and_says_why(tmp_path: Path) -> None:
    paths = Paths(tmp_path)
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/hostname").write_text("edge-1\n")
    ctx = AgentContext(
        paths, ProcessRunner(path="/nonexistent"), StatusBoard(), StateStore(paths.state_file), Watch(k3s())
    )
    planner = PlannerController(ctx)
    good = planner.plan_once()
    assert good.kube is not None and good.kube.node_name == "edge-1"
    ctx.config.set(k3s(node_labels={"kubernetes.io/role": "edge"}))
    bad = planner.plan_once()
    assert bad.refused_reason == "InvalidConfig" and "kubernetes.node_labels.kubernetes.io/role" in bad.refused
    assert bad.kube == good.kube  # the box keeps running what it runs
    (tmp_path / "etc/hostname").write_text("edge_1\n")
    ctx.config.set(k3s())
    named = planner.plan_once()
    assert named.refused_reason == "InvalidNodeName" and "'edge_1'" in named.refused
    (tmp_path / "etc/hostname").write_text("edge-2\n")  # a host fact moves: the next pass sees it
    fixed = planner.plan_once()
    assert fixed.refused == "" and fixed.kube is not None and fixed.kube.node_name == "edge-2"
    assert ctx.desired.value == fixed and isinstance(fixed, Desired)
