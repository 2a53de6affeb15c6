"""The node name comes from agent.node_name or the box root's /etc/hostname, checked as RFC 1123:
decided by the planner from the host facts it is handed (read from a real --root tree here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.errors import ConfigError, NodeNameError
from agent.hostfacts import gather
from agent.model.config import AgentConfig, AgentSection, KubernetesSection
from agent.paths import Paths
from agent.planner import plan
from agent.sysexec import ProcessRunner


def node_name(paths: Paths, configured: str = "") -> str:
    config = AgentConfig(agent=AgentSection(node_name=configured), kubernetes=KubernetesSection(distribution="k3s"))
    kube = plan(config, None, None, gather(paths, ProcessRunner(path="/nonexistent"))).kube
    assert kube is not None
    return kube.node_name


def box(tmp_path: Path, hostname: str) -> Paths:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/hostname").write_text(hostname)
    return Paths(tmp_path)


def test_an_fqdn_hostname_is_the_whole_name_lower_cased(tmp_path: Path) -> None:
    assert node_name(box(tmp_path, "\n# comment\n  EDGE-7.berlin.example.com  \n")) == "edge-7.berlin.example.com"


def test_the_configured_name_wins_over_the_hostname(tmp_path: Path) -> None:
    assert node_name(box(tmp_path, "edge-7.example.com\n"), "rack-3-node-1") == "rack-3-node-1"


def test_a_hostname_kubernetes_refuses_is_an_error_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(NodeNameError) as caught:
        node_name(box(tmp_path, "edge_7.example.com\n"))
    message = str(caught.value)
    assert str(tmp_path / "etc/hostname") in message
    assert "'edge_7'" in message and "RFC 1123" in message and "agent.node_name" in message


def test_a_label_longer_than_63_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="1-63"):
        node_name(box(tmp_path, "a" * 64 + ".example.com\n"))
