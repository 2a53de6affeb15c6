"""agentd check-config and the running daemon accept and refuse the same configs, with the same words."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from agent.paths import Paths
from tests.conftest import AgentProcess


def last_good(root: Path) -> object:
    doc = json.loads(Paths(root).state_file.read_text())
    return doc["sections"]["config"]["last_good"]


def test_a_label_k3s_refuses_in_a_dropin_is_refused_by_the_daemon_and_check_config(agent_root: Path) -> None:
    p = Paths(agent_root)
    p.etc_config.write_text('[fleet]\nsite = "first"\n')
    first = AgentProcess(agent_root).start()
    first.stop()
    assert last_good(agent_root) == {"fleet": {"site": "first"}}

    p.config_dropins.mkdir()
    dropin = p.config_dropins / "50-labels.toml"
    dropin.write_text('[kubernetes]\ndistribution = "k3s"\nnode_labels = {"kubernetes.io/role" = "edge"}\n')
    expected = f"{dropin}: kubernetes.node_labels.kubernetes.io/role: invalid node label"

    second = AgentProcess(agent_root).start()
    try:
        c = second.condition("ConfigValid")
        assert c is not None and c["status"] == "False", c
        assert expected in c["message"] and "last known good" in c["message"]
    finally:
        second.stop()
    assert last_good(agent_root) == {"fleet": {"site": "first"}}  # the refused config was not kept

    r = subprocess.run(
        [sys.executable, "-m", "agent.daemon", "check-config", "--root", str(agent_root)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 2, r.stdout
    assert f"error: {expected}" in r.stderr
    problem = c["message"].split("; running on")[0]
    assert f"error: {problem}" in r.stderr  # word for word what the daemon reports
