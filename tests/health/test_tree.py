"""Health of the gpu-server tree under umockdev: SMART logs through the nvme stand-in, GPU health
through the nvidia-smi stand-in, hwmon and NIC counters from sysfs, changed between polls."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.umockdev


def _nvme(step: dict[str, Any], dev: str) -> dict[str, Any]:
    return next(r for r in step["section"]["nvme"] if r["device"] == dev)


def _problems(step: dict[str, Any], kind: str) -> set[tuple[str, str]]:
    return {(p["device"], p["reason"]) for p in step["section"]["problems"] if p["kind"] == kind}


def test_worn_and_failing_nvme_drives_become_one_condition(links: dict[str, Any]) -> None:
    first = links["first"]
    cond = first["conditions"]["NvmeHealth"]
    assert (cond["status"], cond["reason"]) == ("False", "NvmeCriticalWarning")
    assert "nvme1: 93% of rated endurance used" in cond["message"]
    assert "available spare below threshold, NVM subsystem reliability degraded" in cond["message"]
    assert _problems(first, "nvme") == {
        ("nvme1", "NvmeWearHigh"),
        ("nvme2", "NvmeCriticalWarning"),
        ("nvme2", "NvmeMediaErrors"),
        ("nvme2", "NvmeSpareLow"),
        ("nvme2", "NvmeTemperatureHigh"),
    }


def test_smart_kelvin_and_hwmon_millidegrees_become_celsius(links: dict[str, Any]) -> None:
    nvme2 = _nvme(links["first"], "nvme2")
    assert nvme2["temperature_celsius"] == 349 - 273  # the log's "temperature" is Kelvin
    assert nvme2["hwmon_celsius"] == 75.85  # temp1_input 75850
    assert (nvme2["unsafe_shutdowns"], nvme2["media_errors"], nvme2["critical_warning"]) == (29, 3, 5)
    assert _nvme(links["first"], "nvme0")["percent_used"] == 3


def test_gpu_ecc_errors_and_not_available_values(links: dict[str, Any]) -> None:
    cond = links["first"]["conditions"]["GpuHealth"]
    assert (cond["status"], cond["reason"]) == ("False", "GpuEccErrors")
    assert "0000:9a:00.0: 2 uncorrected ECC error(s)" in cond["message"]
    gpus = {g["address"]: g for g in links["first"]["section"]["gpus"]}
    assert set(gpus) == {"0000:18:00.0", "0000:2a:00.0", "0000:9a:00.0", "0000:ab:00.0"}
    assert gpus["0000:ab:00.0"]["temperature_celsius"] is None  # [N/A]
    assert gpus["0000:18:00.0"]["retired_pages_pending"] is None  # [N/A] on H100 (row remapping)
    assert gpus["0000:2a:00.0"]["ecc_corrected_volatile"] == 12  # corrected: counted, not a problem
    assert _problems(links["first"], "gpu") == {("0000:9a:00.0", "GpuEccErrors")}


def test_configured_port_speed_gives_link_degraded(links: dict[str, Any]) -> None:
    # [health] nic_expected_mbps = {"eno*" = 25000}; the X710 ports run at 10G
    cond = links["first"]["conditions"]["NicHealth"]
    assert (cond["status"], cond["reason"]) == ("False", "LinkDegraded")
    assert _problems(links["first"], "nic") == {("eno1", "LinkDegraded"), ("eno2", "LinkDegraded")}


def test_carrier_changes_between_polls_are_flaps_for_an_hour(links: dict[str, Any]) -> None:
    flapped = links["flapped"]
    cond = flapped["conditions"]["NicHealth"]
    assert (cond["status"], cond["reason"]) == ("False", "LinkFlapping")
    assert "eno1: 4 link flap(s) in the last hour" in cond["message"]
    # a 100G port that came back at 10G, against the fastest speed seen on it
    assert ("ens1f0np0", "LinkDegraded") in _problems(flapped, "nic")
    quiet = links["quiet"]
    assert _problems(quiet, "nic") == {("eno1", "LinkDegraded"), ("eno2", "LinkDegraded")}
    assert next(n for n in quiet["section"]["nics"] if n["name"] == "eno1")["flaps_last_hour"] == 0


def test_a_link_that_was_up_and_went_down(links: dict[str, Any]) -> None:
    down = links["down"]
    assert down["conditions"]["NicHealth"]["reason"] == "LinkDown"
    assert ("eno2", "LinkDown") in _problems(down, "nic")


def test_metrics_pass_promtool_and_carry_the_readings(links: dict[str, Any], tmp_path: Path) -> None:
    text = links["metrics"]
    assert 'edge_agent_nvme_temperature_celsius{device="nvme2"} 76.0' in text
    assert 'edge_agent_nvme_percentage_used_ratio{device="nvme1"} 0.93' in text
    assert 'edge_agent_gpu_ecc_errors_total{gpu="0000:9a:00.0",type="uncorrected",scope="volatile"} 2' in text
    assert 'edge_agent_nic_carrier_changes_total{nic="eno1"} 10' in text
    assert 'edge_agent_nic_speed_ratio{nic="ens1f0np0"} 0.1' in text
    assert 'gpu="0000:ab:00.0"} ' not in text.split("edge_agent_gpu_temperature_celsius", 1)[1].split("# HELP")[0]
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (apt-get install prometheus)")
    proc = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_missing_tools_give_unknown_with_the_reason(failures: dict[str, Any]) -> None:
    case = failures["no-tools"]
    assert case["crashed"] is None and case["polls"] >= 1
    nvme, gpu = case["conditions"]["NvmeHealth"], case["conditions"]["GpuHealth"]
    assert (nvme["status"], nvme["reason"]) == ("Unknown", "NvmeCliMissing")
    assert nvme["message"] == "nvme (nvme-cli) not found on PATH; NVMe SMART logs cannot be read"
    assert (gpu["status"], gpu["reason"]) == ("Unknown", "NvidiaSmiMissing")
    assert case["conditions"]["NicHealth"]["status"] == "True"  # sysfs still reads


def test_hanging_tools_are_killed_at_the_timeout(failures: dict[str, Any]) -> None:
    case = failures["hang"]
    assert case["crashed"] is None and case["polls"] >= 1
    nvme, gpu = case["conditions"]["NvmeHealth"], case["conditions"]["GpuHealth"]
    assert (nvme["status"], nvme["reason"]) == ("Unknown", "NvmeCliTimeout")
    assert "did not answer within 0.5s" in nvme["message"]
    assert (gpu["status"], gpu["reason"]) == ("Unknown", "NvidiaSmiTimeout")


def test_garbage_and_devices_that_are_not_nvme(failures: dict[str, Any]) -> None:
    case = failures["garbage"]
    nvme, gpu = case["conditions"]["NvmeHealth"], case["conditions"]["GpuHealth"]
    assert nvme["status"] == "Unknown"
    reasons = {r["device"]: (r["unknown_reason"], r["unknown"]) for r in case["section"]["nvme"]}
    assert reasons["nvme0"][0] == "SmartLogGarbage"
    assert reasons["nvme1"] == (
        "NvmeCliFailed",
        "nvme exited 1 reading the SMART log of /dev/nvme1: smart log: Inappropriate ioctl for device",
    )
    assert reasons["nvme2"][0] == "NvmeCliFailed" and "No such file or directory" in reasons["nvme2"][1]
    assert (gpu["status"], gpu["reason"]) == ("Unknown", "NvidiaSmiGarbage")


def test_failing_nvidia_smi_leaves_nvme_verdicts_alone(failures: dict[str, Any]) -> None:
    case = failures["smi-fail"]
    assert case["conditions"]["GpuHealth"]["reason"] == "NvidiaSmiFailed"
    assert "couldn't communicate with the NVIDIA driver" in case["conditions"]["GpuHealth"]["message"]
    assert case["conditions"]["NvmeHealth"]["reason"] == "NvmeCriticalWarning"
