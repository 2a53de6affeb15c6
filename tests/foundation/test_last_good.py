"""The last known good config in state.json never holds the bootstrap token, even one an older agent kept."""

from __future__ import annotations

import json
from pathlib import Path

from agent.paths import Paths
from tests.conftest import AgentProcess


def test_a_token_an_older_agent_kept_in_last_good_is_dropped_at_start(agent_root: Path) -> None:
    p = Paths(agent_root)
    p.state_dir.mkdir(parents=True)
    last_good = {"fleet": {"site": "old", "bootstrap_token": "abcdef012345.OldAgentKeptThisSecret"}}
    p.state_file.write_text(json.dumps({"schema": 1, "sections": {"config": {"last_good": last_good}}}))
    p.etc_config.write_text("[agent]\nlog_levl = 'debug'\n")  # rejected: the daemon runs on last_good
    proc = AgentProcess(agent_root).start()
    try:
        c = proc.condition("ConfigValid")
        assert c is not None and c["status"] == "False" and "last known good" in c["message"]
    finally:
        proc.stop()
    text = p.state_file.read_text()
    assert "OldAgentKeptThisSecret" not in text
    assert json.loads(text)["sections"]["config"]["last_good"] == {"fleet": {"site": "old"}}
