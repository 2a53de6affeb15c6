"""nvidia-smi through the subprocess seam: real stand-in programs, never a raise."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from agent.errors import CommandTimeout
from agent.inventory import nvidia
from agent.inventory.blockingexec import BlockingRunner
from agent.sysexec import ProcessRunner

STANDINS = Path(__file__).resolve().parent / "standins"


def runner(variant: str, tmp_path: Path) -> ProcessRunner:
    first = STANDINS / variant if variant != "none" else tmp_path
    return ProcessRunner(path=f"{first}:/usr/bin:/bin")


async def test_ok_parses_every_gpu(tmp_path: Path) -> None:
    res = await nvidia.query(runner("ok", tmp_path), timeout=5)
    assert res.problem is None
    assert sorted(res.by_address) == ["0000:18:00.0", "0000:2a:00.0", "0000:9a:00.0", "0000:ab:00.0"]
    d = res.by_address["0000:2a:00.0"]
    assert (d.name, d.memory_mib, d.driver_version, d.cuda_version) == (
        "NVIDIA H100 80GB HBM3",
        81559,
        "550.90.07",
        "12.4",
    )
    assert d.mig_mode == "Disabled"


@pytest.mark.parametrize(
    ("variant", "reason"),
    [
        ("none", "nvidia-smi not found on PATH"),
        ("fail", "nvidia-smi exited 9: NVIDIA-SMI has failed"),
        ("garbage", "nvidia-smi printed unparsable XML"),
    ],
)
async def test_trouble_is_a_reason(tmp_path: Path, variant: str, reason: str) -> None:
    res = await nvidia.query(runner(variant, tmp_path), timeout=5)
    assert res.by_address == {}
    assert res.problem is not None and res.problem.startswith(reason)


async def test_hung_nvidia_smi_is_killed(tmp_path: Path) -> None:
    started = time.monotonic()
    res = await nvidia.query(runner("hang", tmp_path), timeout=0.3)
    assert res.problem == "nvidia-smi did not answer within 0.3s and was killed"
    assert time.monotonic() - started < 30  # not the stand-in's 600 s


def test_bus_ids_in_any_spelling() -> None:
    xml = (
        "<nvidia_smi_log><gpu id='00000000:3B:00.0'><product_name>Tesla T4</product_name></gpu>"
        "<gpu id='0001:af:00.1'><product_name>A2</product_name></gpu><gpu id='junk'/></nvidia_smi_log>"
    )
    res = nvidia.parse_smi_xml(xml)
    assert sorted(res.by_address) == ["0000:3b:00.0", "0001:af:00.1"]


@pytest.mark.parametrize("variant", ["ok", "none", "fail", "garbage", "hang"])
async def test_the_one_shot_runner_gives_the_daemons_answer(tmp_path: Path, variant: str) -> None:
    daemon = await nvidia.query(runner(variant, tmp_path), timeout=0.3)
    one_shot = nvidia.query_blocking(BlockingRunner(runner(variant, tmp_path).path), timeout=0.3)
    assert one_shot == daemon


def gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_the_one_shot_timeout_kills_what_the_tool_started(tmp_path: Path) -> None:
    tool = tmp_path / "nvidia-smi"
    tool.write_text(f"#!/bin/sh\nsleep 600 &\necho $! > {tmp_path}/child\nwait\n")
    tool.chmod(0o755)
    started = time.monotonic()
    with pytest.raises(CommandTimeout):
        BlockingRunner(f"{tmp_path}:/usr/bin:/bin").run_blocking(nvidia.ARGV, timeout=0.5)
    assert time.monotonic() - started < 30
    child = int((tmp_path / "child").read_text())
    deadline = time.monotonic() + 5
    while not gone(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gone(child)  # the tool's own child went with it: nothing left holding the pipes
