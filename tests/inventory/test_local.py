"""`agentctl inventory --local`: the box scanned in a fresh process, the daemon's document exactly.

For every generated device tree (umockdev, hwbed.py) and both real recordings, the command's
output is compared with the ``GET /v1/inventory`` body the daemon's pydantic path builds for
the same tree (pairscan.py), and validated against the API's own schema with jsonschema.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from agent.api import inventory as inventory_api
from agent.cli.args import parse
from agent.model.config import InventorySection

from .conftest import ALL_SCANS
from .umockbed import run_hwbed, run_recording

REPO = Path(__file__).resolve().parents[2]
RECORDINGS = ("recorded-firecracker-vm", "recorded-qemu-vm")
SCANNED_AT = re.compile(r'"scanned_at":"[^"]*"')


@pytest.fixture(scope="module")
def pairs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    found: dict[str, Any] = run_hwbed("local", *ALL_SCANS, timeout=180)
    for name in RECORDINGS:
        found[name] = run_recording(name, "pairscan.py", tmp_path_factory.mktemp(name))
    return found


def validator() -> jsonschema.Draft202012Validator:
    get = inventory_api.OPENAPI_PATHS["/v1/inventory"]["get"]
    schema = get["responses"]["200"]["content"]["application/json"]["schema"]
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def agentctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent.cli.agentctl", *args], capture_output=True, text=True, timeout=60, cwd=REPO
    )


@pytest.mark.umockdev
@pytest.mark.parametrize("name", [*ALL_SCANS, *RECORDINGS])
def test_prints_the_document_the_daemon_serves(pairs: dict[str, Any], name: str) -> None:
    pair = pairs[name]
    assert pair["rc"] == 0, pair["stderr"]
    local = pair["local"].removesuffix("\n")
    assert "\n" not in local  # one line: the compact, key-sorted encoding the API sends
    # the same bytes, but for the moment of the scan
    assert SCANNED_AT.sub('"scanned_at":"-"', local) == SCANNED_AT.sub('"scanned_at":"-"', pair["daemon"])


@pytest.mark.umockdev
@pytest.mark.parametrize("name", [*ALL_SCANS, *RECORDINGS])
def test_output_validates_against_the_inventory_schema(pairs: dict[str, Any], name: str) -> None:
    doc = json.loads(pairs[name]["local"])
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator().iter_errors(doc)]
    assert errors == []
    assert doc["schema"] == "edge-agent.inventory/v1"
    assert any(doc["inventory"][section] for section in ("pci", "gpus", "nvme", "disks", "nics"))


@pytest.mark.umockdev
def test_nvidia_smi_enriches_the_gpus(pairs: dict[str, Any]) -> None:
    gpus = json.loads(pairs["gpu-server:ok"]["local"])["inventory"]["gpus"]
    nvidia = [g for g in gpus if g["vendor_id"] == "10de"]
    assert len(nvidia) == 4 and all(g["nvidia"]["driver_version"] == "550.90.07" for g in nvidia)
    assert {g["name"] for g in nvidia} == {"NVIDIA H100 80GB HBM3"}


@pytest.mark.umockdev
def test_a_hung_nvidia_smi_is_killed_at_its_timeout(pairs: dict[str, Any]) -> None:
    pair = pairs["gpu-server:hang"]
    gpus = json.loads(pair["local"])["inventory"]["gpus"]
    why = {g["problems"].get("nvidia") for g in gpus if g["vendor_id"] == "10de"}
    assert why == {"nvidia-smi did not answer within 0.5s and was killed"}
    assert 0.5 <= pair["seconds"] < 30  # the stand-in sleeps 600 s


def test_this_box_is_scanned_without_pydantic_or_asyncio() -> None:
    code = (
        "import sys; from agent.cli.agentctl import main; rc = main(['inventory', '--local', '-o', 'json']);"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('pydantic', 'pydantic_core', 'asyncio'));"
        "print(rc, *heavy, file=sys.stderr)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert proc.stderr.split() == ["0"]  # exit 0, and not one of those modules loaded
    doc = json.loads(proc.stdout)
    assert list(validator().iter_errors(doc)) == []
    nics = {n["name"] for n in doc["inventory"]["nics"]}
    assert nics == {n for n in os.listdir("/sys/class/net") if n != "lo"}


def test_the_table_lists_this_box() -> None:
    proc = agentctl("inventory", "--local")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("System\n") and "\nNICs (" in proc.stdout
    assert all(n in proc.stdout for n in os.listdir("/sys/class/net") if n != "lo")


def test_an_agent_that_is_down_points_at_the_local_scan(tmp_path: Path) -> None:
    proc = agentctl("--socket", str(tmp_path / "agent.sock"), "inventory")
    assert proc.returncode == 2
    assert "'agentctl inventory --local' scans the hardware without the agent" in proc.stderr


def test_help_tells_of_the_local_scan() -> None:
    proc = agentctl("inventory", "--help")
    assert proc.returncode == 0
    assert "--local" in proc.stdout and "--nvidia-smi-timeout" in proc.stdout


def test_nvidia_smi_gets_the_agents_default_timeout() -> None:
    assert parse(["inventory", "--local"]).nvidia_smi_timeout == InventorySection().nvidia_smi_timeout
    assert parse(["inventory", "--local", "--nvidia-smi-timeout", "2"]).nvidia_smi_timeout == 2.0
