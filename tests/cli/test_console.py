"""The console screen: golden renders for given statuses, the 80x25 ASCII limits, a real terminal, the units."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import psutil
import pytest

from agent.cli.console import LocalFacts, Nic, render_screen
from tests.conftest import REPO, AgentProcess

GOLDEN = Path(__file__).parent / "golden"
NOW = 1796200000.0  # a fixed instant: 2026-12-02
LOCAL = LocalFacts(
    "cab-17-box-3",
    "3f2a9c0d8e7b6a5f4e3d2c1b0a998877",
    (
        Nic("enp1s0", True, 1000, ("10.20.30.41/24", "fe80::5054:ff:fe12:3456/64")),
        Nic("enp2s0", False, 0, ()),
        Nic("wwan0", True, 0, ("100.64.7.9/30",)),
    ),
)


def cond(type_: str, status: str, reason: str, message: str = "", severity: str = "error") -> dict[str, str]:
    return {"type": type_, "status": status, "reason": reason, "message": message, "severity": severity}


def doc(conditions: list[dict[str, str]], **sections: Any) -> dict[str, Any]:
    degraded = any(c["status"] != "True" and c["severity"] != "info" for c in conditions)
    return {
        "schema": "edge-agent.status/v1",
        "agent": {
            "version": "0.9.1",
            "pid": 812,
            "uptime_seconds": 7384,
            "config_digest": "sha256:1",
            "config_sources": [],
        },
        "health": "degraded" if degraded else "healthy",
        "conditions": conditions,
        "sections": sections,
    }


KUBE_READY = {"distribution": "k3s", "version": "v1.30.4+k3s1", "role": "server", "unit": "k3s",
              "active_state": "active", "node_name": "cab-17-box-3", "ready": True,
              "node_ip": "10.20.30.41"}  # fmt: skip
UPGRADE = {"summary": "agent version 0.9.1; last upgrade 0.9.1: committed"}

STATUSES: dict[str, tuple[dict[str, Any] | None, str]] = {
    "enrolled-ready": (
        doc(
            [
                cond("Enrolled", "True", "Enrolled", "node 3f2a, certificate valid until 2027-01-01T00:00:00Z"),
                cond("KubernetesReady", "True", "NodeReady"),
            ],
            fleet={
                "enrolled": True,
                "node_id": "3f2a9c0d8e7b6a5f4e3d2c1b0a998877",
                "cluster": "lab-east",
                "distribution": "k3s",
                "role": "server",
            },
            kubernetes=KUBE_READY,
            upgrade=UPGRADE,
        ),
        "",
    ),
    "pending-approval": (
        doc(
            [
                cond("Enrolled", "False", "PendingApproval", "awaits approval", "info"),
                cond("PendingApproval", "True", "AwaitingApproval", "node awaits approval", "info"),
            ],
            fleet={"enrolled": False},
            upgrade=UPGRADE,
        ),
        "",
    ),
    "no-seed": (doc([cond("Enrolled", "False", "NotConfigured", "no fleet.url", "info")], upgrade=UPGRADE), ""),
    "registrar-unreachable": (
        doc(
            [
                cond(
                    "Enrolled",
                    "False",
                    "RegistrarUnreachable",
                    "https://reg.example:8443: connect: Connection refused (attempt 7, next in 64.0s)",
                    "info",
                ),
                cond("KubernetesReady", "False", "ServerUnreachable", "cannot reach the server to join: " + "x" * 90),
                cond("DiskPressure", "False", "LowSpace", "/var/lib/rancher has 2% free"),
                cond("ConfigValid", "False", "BadDropIn", "/etc/edge-agent/agent.toml.d/10-net.toml: network.prefer"),
            ],
            kubernetes={**KUBE_READY, "ready": False, "ready_reason": "KubeletNotReady", "active_state": "activating"},
            upgrade={"summary": "agent version 0.9.1; last upgrade 0.9.2: rolled-back"},
        ),
        "",
    ),
    "agent-unreachable": (None, "nothing is listening on /run/edge-agent/agent.sock: edge-agent is not running"),
}


def check_limits(screen: str) -> None:
    lines = screen.rstrip("\n").split("\n")
    assert len(lines) <= 25, f"{len(lines)} lines"
    assert all(len(line) <= 80 for line in lines), max(lines, key=len)
    assert screen.isascii()


@pytest.mark.parametrize("name", sorted(STATUSES))
def test_screen_matches_its_golden_text(name: str) -> None:
    status, why = STATUSES[name]
    screen = render_screen(status, why, LOCAL, NOW, 3)
    check_limits(screen)
    golden = GOLDEN / f"console-{name}.txt"
    if os.environ.get("REGEN_GOLDEN"):
        golden.write_text(screen)
    assert screen == golden.read_text()


def test_a_flood_of_long_unicode_conditions_still_fits_80x25() -> None:
    many = [cond(f"Condition{n}", "False", "Broken\u2026", "m\u00e9ssage " * 30) for n in range(40)]
    nics = tuple(Nic(f"enp{n}s0f0np0verylongname", True, 100000, ("2001:db8::1/64",) * 4) for n in range(12))
    screen = render_screen(doc(many, upgrade=UPGRADE), "", LocalFacts("h\u00f6st" * 30, "id", nics), NOW, 3)
    check_limits(screen)
    assert "more (agentctl status)" in screen and "more interfaces" in screen


def test_screen_never_shows_what_the_status_has_beside_it() -> None:
    """Only chosen fields reach the screen: a token put in a section by mistake does not."""
    status = doc([], fleet={"enrolled": True, "bootstrap_token": "tok.SECRETSECRET"}, upgrade=UPGRADE)
    assert "SECRETSECRET" not in render_screen(status, "", LOCAL, NOW, 3)


def tmux(sock: str, *args: str) -> str:
    return subprocess.run(["tmux", "-L", sock, *args], capture_output=True, text=True, check=True, timeout=10).stdout


def capture_until(sock: str, needle: str, timeout: float = 20.0) -> str:
    deadline = time.monotonic() + timeout
    shown = ""
    while time.monotonic() < deadline:
        shown = tmux(sock, "capture-pane", "-p", "-t", "screen")
        if needle in shown:
            return shown
        time.sleep(0.2)
    raise AssertionError(f"{needle!r} never appeared on the terminal:\n{shown}")


@pytest.fixture
def terminal() -> Any:
    if shutil.which("tmux") is None:
        pytest.fail("tmux missing: apt-get install tmux")
    sock = f"edge-console-{uuid.uuid4().hex[:8]}"
    yield sock
    subprocess.run(["tmux", "-L", sock, "kill-server"], capture_output=True, check=False)


def _console_cmd(root: Path, *extra: str) -> str:
    return f"cd {REPO} && exec {sys.executable} -m agent.cli.agentctl --root {root} {' '.join(extra)}"


def test_console_on_a_real_80x25_terminal_with_the_agent_down(terminal: str, agent_root: Path) -> None:
    tmux(terminal, "new-session", "-d", "-s", "screen", "-x", "80", "-y", "25",
         _console_cmd(agent_root, "console", "--interval", "1"))  # fmt: skip
    shown = capture_until(terminal, "UNREACHABLE")
    nic = next(n for n in sorted(psutil.net_if_addrs()) if n != "lo")
    assert nic in shown  # addresses read locally although the agent is down
    assert "network" in shown and "no login, no secrets" in shown


def test_status_watch_on_a_real_terminal_shows_the_running_agent(
    terminal: str, agentd: AgentProcess, agent_root: Path
) -> None:
    agentd.start()
    tmux(terminal, "new-session", "-d", "-s", "screen", "-x", "80", "-y", "25",
         _console_cmd(agent_root, "status", "--watch", "--interval", "1"))  # fmt: skip
    shown = capture_until(terminal, "kubernetes")
    assert "UNREACHABLE" not in shown
    assert "fleet      no seed" in shown
    assert f"EDGE BOX {os.uname().nodename}" in shown
    lines = shown.rstrip("\n").split("\n")
    assert len(lines) <= 25 and all(len(x) <= 80 for x in lines)
    tmux(terminal, "send-keys", "-t", "screen", "C-c")  # Ctrl-C ends the watch (and with it the session)
    deadline = time.monotonic() + 10
    alive = True
    while alive and time.monotonic() < deadline:
        time.sleep(0.2)
        alive = subprocess.run(["tmux", "-L", terminal, "has-session", "-t", "screen"], capture_output=True,
                               check=False).returncode == 0  # fmt: skip
    assert not alive, "agentctl status --watch did not end on Ctrl-C"


@pytest.mark.parametrize("unit", ["edge-agent-console.service", "edge-agent-console@.service"])
def test_console_units_pass_systemd_analyze_verify(unit: str, tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.fail("systemd-analyze missing: make deps installs systemd")
    text = (REPO / "systemd" / unit).read_text()
    assert "ExecStart=/opt/edge-agent/venv/bin/agentctl console --tty /dev/" in text
    name = unit.replace("@.", "@ttyS0.")
    (tmp_path / name).write_text(text.replace("/opt/edge-agent/venv/bin/agentctl", shutil.which("true") or ""))
    r = subprocess.run(["systemd-analyze", "verify", str(tmp_path / name)], capture_output=True, text=True,
                       check=False)  # fmt: skip
    assert r.returncode == 0 and r.stderr.strip() == "" and r.stdout.strip() == "", r.stderr


def test_console_unit_grants_nothing() -> None:
    for unit in ("edge-agent-console.service", "edge-agent-console@.service"):
        text = (REPO / "systemd" / unit).read_text()
        assert "DynamicUser=yes" in text and "CapabilityBoundingSet=\n" in text


async def test_console_once_writes_to_the_given_tty(tmp_path: Path, agent_root: Path) -> None:
    """--tty writes to the device (a pty here, as tty1 is on a box) and --once returns."""
    import pty

    leader, follower = pty.openpty()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent.cli.agentctl", "--root", str(agent_root), "console", "--once", "--tty",
        os.ttyname(follower), cwd=str(REPO),
    )  # fmt: skip
    assert await asyncio.wait_for(proc.wait(), 30) == 0
    data = os.read(leader, 65536).decode("ascii")
    os.close(leader)
    os.close(follower)
    assert data.startswith("\033[H\033[2J") and "UNREACHABLE" in data and "\r\n" in data
