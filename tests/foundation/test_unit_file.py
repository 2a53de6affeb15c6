"""The agent's systemd unit: systemd itself accepts every line of it."""

from __future__ import annotations

import configparser
import shutil
import subprocess
from pathlib import Path

import pytest

from agent.fleet.listener import MAX_CONNECTIONS, max_connections_for
from tests.conftest import REPO

UNIT = REPO / "systemd/edge-agent.service"


def test_systemd_analyze_verify_accepts_every_line(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.fail("systemd-analyze missing: make deps installs systemd")
    # The launcher lives in the image's venv; point ExecStart at an executable that exists here so
    # verify checks everything else. (tests/system verifies the untouched unit inside the image tree.)
    unit = tmp_path / "edge-agent.service"
    unit.write_text(UNIT.read_text().replace("/opt/edge-agent/venv/bin/agentd-launch", shutil.which("true") or ""))
    r = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, check=False)
    assert r.returncode == 0 and r.stderr.strip() == "" and r.stdout.strip() == "", r.stderr


def test_notify_watchdog_and_restart_policy() -> None:
    cp = configparser.ConfigParser(strict=False, interpolation=None)
    cp.optionxform = str  # type: ignore[assignment,method-assign]
    cp.read_string(UNIT.read_text())
    svc = cp["Service"]
    assert svc["Type"] == "notify" and svc["NotifyAccess"] == "main"
    assert svc["Restart"] == "always" and svc["WatchdogSec"]
    assert svc["ExecStart"].startswith("/opt/edge-agent/venv/bin/agentd-launch run")
    assert cp["Unit"]["StartLimitIntervalSec"] == "0"


def test_descriptor_limit_leaves_room_beside_the_remote_connection_cap() -> None:
    """The remote listener's cap is min(MAX_CONNECTIONS, soft limit / 4): under the unit's limit
    it is the full cap, and at least three quarters of the descriptors stay for the local socket
    (tests/fleet/test_remote_storm.py shows the local socket surviving a storm at a lowered limit)."""
    cp = configparser.ConfigParser(strict=False, interpolation=None)
    cp.optionxform = str  # type: ignore[assignment,method-assign]
    cp.read_string(UNIT.read_text())
    nofile = cp["Service"].get("LimitNOFILE", "")
    assert nofile.isdigit(), f"LimitNOFILE must be a number, got {nofile!r}"
    assert int(nofile) >= 4 * MAX_CONNECTIONS and int(nofile) > 1024  # above the default soft limit
    assert max_connections_for(int(nofile)) == MAX_CONNECTIONS  # the full cap under the unit's limit
