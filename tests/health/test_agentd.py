"""Health in a real agentd on this machine: the status section, /metrics (promtool), agentctl
status lines, and [health] config errors from agentd check-config."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from agent.cli.status_view import render_status
from tests.conftest import AgentProcess, unix_get


def _health_section(agentd: AgentProcess) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        section = agentd.get_json("/v1/status")["sections"].get("health")
        if section:
            return section  # type: ignore[no-any-return]
        time.sleep(0.1)
    raise AssertionError(f"no health section:\n{agentd.log.read_text()}")


HEALTH_PREFIXES = ("edge_agent_health_", "edge_agent_nvme_", "edge_agent_gpu_", "edge_agent_nic_")


def health_families(text: str) -> str:
    """The metric families of hardware health (and the inventory's device families beside them);
    other subsystems' families are checked by their own tests."""
    out: list[str] = []
    keep = False
    for line in text.splitlines():
        if line.startswith("# HELP "):
            keep = line.split()[2].startswith(HEALTH_PREFIXES)
        if keep:
            out.append(line)
    return "\n".join(out) + "\n"


def test_agentd_publishes_health_and_clean_metrics(agentd: AgentProcess) -> None:
    agentd.start()
    section = _health_section(agentd)
    physical = [p.name for p in Path("/sys/class/net").iterdir() if (p / "device").exists()]
    assert sorted(n["name"] for n in section["nics"]) == sorted(physical)  # read independently
    assert section["polls"] >= 1
    status, _, body = unix_get(agentd.socket, "/metrics")
    assert status == 200
    text = health_families(body.decode())
    assert "edge_agent_health_polls_total" in text
    assert 'edge_agent_health_device_readable{kind="nic"' in text
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (apt-get install prometheus)")
    proc = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_status_view_lists_each_problem_under_health() -> None:
    doc = {
        "health": "degraded",
        "sections": {
            "health": {
                "summary": "3 NVMe, 4 GPU(s), 4 NIC(s): 2 problem(s), 1 unreadable",
                "problems": [
                    {"kind": "nvme", "device": "nvme1", "reason": "NvmeWearHigh", "message": "nvme1: 93% used"},
                    {"kind": "nic", "device": "eno1", "reason": "LinkFlapping", "message": "eno1: 4 flaps"},
                    {"kind": "gpu", "device": "x", "reason": "NvidiaSmiTimeout", "message": "hung", "unknown": True},
                ],
            }
        },
    }
    lines = render_status(doc, color=False).splitlines()
    i = next(n for n, line in enumerate(lines) if line.startswith("  health"))
    assert "2 problem(s), 1 unreadable" in lines[i]
    assert lines[i + 1 : i + 4] == [
        "             ! NvmeWearHigh: nvme1: 93% used",
        "             ! LinkFlapping: eno1: 4 flaps",
        "             ? NvidiaSmiTimeout: hung",
    ]


@pytest.mark.parametrize(
    ("toml", "words"),
    [
        ('[health]\nnic_expected_mbps = {"ens*" = 0}\n', ("health.nic_expected_mbps", "ens*", "above 0")),
        ("[health]\ninterval = 1\n", ("health.interval", "5")),
    ],
)
def test_bad_health_config_is_named(agent_root: Path, toml: str, words: tuple[str, ...]) -> None:
    (agent_root / "etc/edge-agent/agent.toml").write_text(toml)
    r = subprocess.run(
        [sys.executable, "-m", "agent.daemon", "check-config", "--root", str(agent_root)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 2
    for w in words:
        assert w in r.stderr, r.stderr
