"""The order of the config layers: built-in < vendor < seed (kept, /boot, credential) < /etc < /etc/...d."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from agent.config import load_config
from agent.paths import Paths


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_the_operator_has_the_last_word_over_the_seed(agent_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(agent_root / "creds"))
    p = Paths(agent_root)
    vendor = write(p.vendor_config, '[fleet]\nurl = "https://vendor:1"\nsite = "vendor"\nheartbeat_interval = 5.0\n')
    kept = write(p.kept_seed, '[fleet]\nurl = "https://kept-seed:1"\nsite = "kept"\nbootstrap_token = "t"\n')
    boot = write(p.boot_seed, '[fleet]\nsite = "boot"\n')
    cred = write(agent_root / "creds/edge-agent.seed", '[fleet]\nlabels = {rack = "r1"}\n')
    etc = write(p.etc_config, '[fleet]\nsite = "etc"\n')
    dropin = write(p.config_dropins / "50-move.toml", '[fleet]\nurl = "https://moved:2"\n')

    loaded = load_config(p)
    assert loaded.sources == tuple(map(str, (vendor, kept, boot, cred, etc, dropin)))
    fleet = loaded.config.fleet
    assert fleet.url == "https://moved:2"  # the drop-in beats the seed
    assert fleet.site == "etc"  # /etc beats every seed layer
    assert fleet.labels == {"rack": "r1"} and fleet.heartbeat_interval == 5.0
    assert fleet.bootstrap_token.get_secret_value() == "t"  # what no later layer sets still comes from the seed

    r = subprocess.run(
        [sys.executable, "-m", "agent.daemon", "check-config", "--root", str(agent_root)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    assert f"# merged from: {', '.join(loaded.sources)}" in r.stdout
    assert 'url = "https://moved:2"' in r.stdout
