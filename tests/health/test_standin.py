"""The nvme stand-in answers like nvme-cli 2.x does (checked against the real program when installed)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

STANDIN = Path(__file__).resolve().parent / "standins/ok/nvme"
REAL = shutil.which("nvme", path="/usr/sbin:/usr/bin:/sbin:/bin")


def _standin(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NVME_SMART_DIR": str(tmp)}
    return subprocess.run([str(STANDIN), *args], capture_output=True, text=True, env=env, check=False)


@pytest.mark.skipif(REAL is None, reason="nvme-cli not installed (apt-get install nvme-cli)")
def test_missing_device_node_like_nvme_cli(tmp_path: Path) -> None:
    assert REAL is not None
    real = subprocess.run([REAL, "smart-log", "/dev/nvme97", "-o", "json"], capture_output=True, text=True, check=False)
    fake = _standin(tmp_path, "smart-log", "/dev/nvme97", "-o", "json")
    assert (fake.returncode, fake.stdout) == (real.returncode, real.stdout)
    assert fake.stderr.splitlines()[0] == real.stderr.splitlines()[0] == "/dev/nvme97: No such file or directory"
    assert fake.stderr.split("\n\n")[0] in re.sub(r"\x1b\[[0-9;]*m", "", real.stderr)  # nvme-cli prints bold


@pytest.mark.skipif(REAL is None, reason="nvme-cli not installed (apt-get install nvme-cli)")
def test_a_device_that_is_not_nvme_like_nvme_cli(tmp_path: Path) -> None:
    assert REAL is not None
    real = subprocess.run([REAL, "smart-log", "/dev/null", "-o", "json"], capture_output=True, text=True, check=False)
    (tmp_path / "null.notnvme").write_text("")
    fake = _standin(tmp_path, "smart-log", "/dev/null", "-o", "json")
    assert (fake.returncode, fake.stdout, fake.stderr) == (real.returncode, real.stdout, real.stderr)


def test_prints_the_recorded_log(tmp_path: Path) -> None:
    (tmp_path / "nvme0.json").write_text(json.dumps({"critical_warning": 0, "temperature": 310}))
    out = _standin(tmp_path, "smart-log", "/dev/nvme0", "--output-format=json")
    assert out.returncode == 0 and json.loads(out.stdout)["temperature"] == 310


ETHTOOL = Path(__file__).resolve().parent / "standins/ok/ethtool"
REAL_ETHTOOL = shutil.which("ethtool", path="/usr/sbin:/usr/bin:/sbin:/bin")


@pytest.mark.skipif(REAL_ETHTOOL is None, reason="ethtool not installed (apt-get install ethtool)")
def test_ethtool_standin_answers_a_missing_port_like_ethtool(tmp_path: Path) -> None:
    assert REAL_ETHTOOL is not None
    real = subprocess.run([REAL_ETHTOOL, "nosuch0"], capture_output=True, text=True, check=False)
    env = {**os.environ, "ETHTOOL_DIR": str(tmp_path)}
    fake = subprocess.run([str(ETHTOOL), "nosuch0"], capture_output=True, text=True, env=env, check=False)
    assert (fake.returncode, fake.stdout) == (real.returncode, real.stdout) == (75, "No data available\n")
