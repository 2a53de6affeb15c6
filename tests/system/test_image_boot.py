"""The production image boots under real systemd and the agent comes up, with no fleet yet."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import Boxes
from probes import first_boot, status, unit_active, wait_for

pytestmark = [pytest.mark.system, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
OUR_UNITS = "/usr/lib/systemd/system/edge-agent.service"


def test_production_image_first_boot_runs_the_agent(production_tree: Path, boxes: Boxes) -> None:
    box = boxes.make("e2e-prod", production_tree)
    t0 = time.monotonic()
    box.start()
    state = box.wait_booted()
    assert state in ("running", "degraded"), state
    assert unit_active(box, "edge-agent.service") == "active"
    doc = wait_for("agentctl status to answer", lambda: status(box), timeout=15)
    print(f"\n[timing] e2e-prod: agent answering {time.monotonic() - t0:.1f}s after container start")
    assert doc["schema"] == "edge-agent.status/v1"

    failed = box.sh("systemctl list-units --failed --plain --no-legend").stdout.strip()
    assert failed == "", f"failed units on a fresh box: {failed}"
    # The console screen is enabled for tty1; a container has no tty1, so it is skipped, not failed.
    assert box.sh("systemctl is-enabled edge-agent-console.service", check=False).stdout.strip() == "enabled"

    # First boot: the box made its own machine id; the image carried none.
    machine_id = box.sh("cat /etc/machine-id").stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{32}", machine_id), machine_id
    assert first_boot(box), "systemd did not treat the image's first start as a first boot"

    # The agent runs from its own venv through the unit's ExecStart, not the system Python.
    pid = box.unit_pid("edge-agent.service")
    assert pid > 1
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert any(part.startswith(b"/opt/edge-agent/venv/") for part in cmdline), cmdline

    # tmpfiles/sysusers did their part: private state, socket for root and group edge-agent only.
    assert box.sh("stat -c '%a %U:%G' /var/lib/edge-agent").stdout.split() == ["700", "root:root"]
    assert box.sh("stat -c '%a %U:%G' /run/edge-agent/agent.sock").stdout.split() == ["660", "root:edge-agent"]

    # The technician's screen on the box's real console (nspawn copies /dev/console to console.log):
    # 80x25 ASCII, the box's own hostname and node id, no seed yet, its NIC with the address it has.
    hostname = box.sh("hostname").stdout.strip()
    start = box.console.stat().st_size
    box.sh("agentctl console --once --tty /dev/console")
    raw = wait_for(
        "the screen on the console",
        lambda: (data := box.console.read_bytes()[start:]) and b"read-only screen" in data and data,
        timeout=10,
    )
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", raw.decode("ascii"))
    lines = [line.rstrip("\r") for line in text.split("\n") if line.strip()]  # the tty adds its own \r
    print("\n[console] " + "\n[console] ".join(lines))
    assert len(lines) <= 25 and all(len(line) <= 80 for line in lines), lines
    assert hostname in lines[0], lines
    assert any(line.startswith("node id") for line in lines), lines  # "-" until the box has an identity
    assert any(line.startswith("fleet") and "seed" in line for line in lines), lines
    assert any(line.split()[:1] == ["host0"] for line in lines), lines

    # No test stand-in reachable in a production box.
    for prog in ("k3s", "k0s"):
        assert box.sh(f"command -v {prog}", check=False).returncode != 0, f"{prog} found in a production box"


def test_units_pass_systemd_analyze_verify_inside_the_image(production_tree: Path, boxes: Boxes) -> None:
    box = boxes.make("e2e-verify", production_tree)
    box.start()
    box.wait_booted()
    units = box.sh(
        "ls /usr/lib/systemd/system/edge-agent*.service /etc/systemd/system/edge-agent*.service 2>/dev/null || true"
    ).stdout.split()
    units = [u for u in units if not u.endswith("@.service")]  # templates: verified per instance in tests/cli
    assert OUR_UNITS in units
    res = box.sh(f"systemd-analyze verify {' '.join(units)}", check=False)
    assert res.returncode == 0 and res.stderr.strip() == "", res.stderr
    # sysusers.d and tmpfiles.d entries parse and are already satisfied on a booted box.
    sysusers = box.sh("systemd-sysusers --dry-run /usr/lib/sysusers.d/edge-agent.conf", check=False)
    assert sysusers.returncode == 0, sysusers.stderr
    tmpfiles = box.sh("systemd-tmpfiles --create /usr/lib/tmpfiles.d/edge-agent.conf", check=False)
    assert tmpfiles.returncode == 0 and tmpfiles.stderr.strip() == "", tmpfiles.stderr


def test_production_tree_carries_no_build_secret_and_no_standin(production_tree: Path) -> None:
    """The tree the build published: checked again here, and its key facts asserted directly."""
    res = subprocess.run(
        [sys.executable, str(REPO / "image/check_tree.py"), "--variant", "production", str(production_tree)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    assert (production_tree / "etc/machine-id").read_text().strip() == "uninitialized"
    assert not (production_tree / "var/lib/edge-agent").exists() or not any(
        (production_tree / "var/lib/edge-agent").iterdir()
    )
    airgap = production_tree / "usr/lib/edge-agent/airgap"
    assert airgap.is_dir() and not any(airgap.iterdir()), sorted(p.name for p in airgap.iterdir())
    assert not (production_tree / "usr/local/bin/k3s").exists() and not (production_tree / "usr/local/bin/k0s").exists()
    assert "IMAGE_VARIANT=production" in (production_tree / "usr/lib/edge-agent/image-release").read_text()
