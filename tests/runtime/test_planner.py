"""The pure planner: fleet wins over config, labels merged and checked, wiring refused early."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from agent.errors import ConfigError
from agent.model.config import AgentConfig, KubernetesSection
from agent.planner import config_problems, plan_kube

from .plans import joining_agent, kube_config

NFD = {"feature.node.kubernetes.io/pci-0300_10de.present": "true", "nvidia.com/gpu.present": "true"}


def test_nothing_asked_means_no_kubernetes() -> None:
    assert plan_kube(AgentConfig(), None, NFD) is None


def test_config_server_with_hardware_and_config_labels() -> None:
    d = plan_kube(
        kube_config(distribution="k3s", node_labels={"site": "lab", "nvidia.com/gpu.present": "false"}), None, NFD
    )
    assert d is not None
    assert (d.origin, d.distribution, d.role, d.single) == ("config", "k3s", "server", True)
    # config labels win over hardware labels; keys come out sorted
    assert d.node_labels == {
        "feature.node.kubernetes.io/pci-0300_10de.present": "true",
        "nvidia.com/gpu.present": "false",
        "site": "lab",
    }


def test_fleet_assignment_wins_over_config() -> None:
    a = joining_agent(version="v1.36.3+k0s.1", labels={"site": "fleet"}, taints=["edge=true:NoSchedule"])
    d = plan_kube(kube_config(distribution="k3s", role="server", node_labels={"site": "lab"}), a, {})
    assert d is not None
    assert (d.origin, d.cluster, d.distribution, d.role, d.version) == (
        "fleet",
        "c1",
        "k0s",
        "agent",
        "v1.36.3+k0s.1",
    )
    assert d.node_labels == {"site": "fleet"}
    assert d.node_taints == ("edge=true:NoSchedule",)
    assert d.token.get_secret_value() == "tok"


@pytest.mark.parametrize(
    "label",
    ["kubernetes.io/role", "node-role.kubernetes.io/worker", "k8s.io/x", "foo.k8s.io/x"],
)
def test_reserved_label_refused_naming_the_key(label: str) -> None:
    with pytest.raises(ConfigError) as err:
        plan_kube(kube_config(distribution="k3s", node_labels={label: "x"}), None, {})
    assert f"kubernetes.node_labels.{label}" in str(err.value)
    assert "reserved" in str(err.value)


@pytest.mark.parametrize(
    "label",
    ["node.kubernetes.io/instance-type", "feature.node.kubernetes.io/cpu-x", "kubernetes.io/arch", "example.com/a"],
)
def test_kubelet_allowed_labels_pass(label: str) -> None:
    assert plan_kube(kube_config(distribution="k3s", node_labels={label: "x"}), None, {}) is not None


@pytest.mark.parametrize(
    ("labels", "fragment"),
    [
        ({"-bad": "x"}, "name part"),
        ({"UPPER.example/x": "y"}, "prefix"),
        ({"ok": "bad value with spaces"}, "value"),
        ({"ok": "x" * 64}, "value"),
    ],
)
def test_invalid_label_syntax(labels: dict[str, str], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        plan_kube(kube_config(distribution="k0s", node_labels=labels), None, {})


def test_bad_hardware_label_names_its_source() -> None:
    with pytest.raises(ConfigError, match=r"hardware labels: kubernetes\.io/gpu"):
        plan_kube(kube_config(distribution="k3s"), None, {"kubernetes.io/gpu": "x"})


def test_bad_taint() -> None:
    with pytest.raises(ConfigError, match="invalid taint 'gpu=true'"):
        plan_kube(kube_config(distribution="k3s", node_taints=["gpu=true"]), None, {})


def test_wiring_problems_are_all_listed() -> None:
    problems = config_problems(
        AgentConfig(
            kubernetes=KubernetesSection(
                distribution="k3s", role="agent", server_url="https://x:6443", binary_url="https://dl/k3s"
            )
        )
    )
    text = "\n".join(map(str, problems))
    assert "kubernetes.token: joining a cluster needs its join token" in text
    assert "kubernetes.binary_sha256" in text
    with pytest.raises(ValidationError, match="server_url"):  # a plain-http server is refused when the file is read
        KubernetesSection(server_url="http://x:6443")


def test_agent_without_server() -> None:
    with pytest.raises(ConfigError, match="an agent needs the URL"):
        plan_kube(kube_config(distribution="k3s", role="agent"), None, {})


def test_first_k3s_server_refuses_full_token() -> None:
    with pytest.raises(ConfigError, match="short token"):
        plan_kube(kube_config(distribution="k3s", cluster_init=True, token="K10abc::server:s"), None, {})


def test_errors_never_show_the_token() -> None:
    with pytest.raises(ConfigError) as err:
        plan_kube(kube_config(distribution="k3s", role="agent", token="sekrit-123"), None, {})  # no server: refused
    assert "sekrit-123" not in str(err.value)
