"""packaging/deb/build.sh refuses bad arguments before building anything, naming what was wrong."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.package.conftest import REPO

BUILD = REPO / "packaging/deb/build.sh"


def run_build(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(BUILD), *args], capture_output=True, text=True, timeout=60)


def test_a_wheels_directory_that_is_not_there_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-wheels"
    proc = run_build("--wheels", str(missing), "--out", str(tmp_path / "out"))
    assert proc.returncode != 0
    assert f"--wheels '{missing}' is not a directory" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_an_unknown_argument_is_named() -> None:
    proc = run_build("--outt", "x")
    assert proc.returncode != 0
    assert "unknown argument '--outt'" in proc.stderr


def test_help_describes_the_options() -> None:
    proc = run_build("--help")
    assert proc.returncode == 0
    assert "--wheels DIR" in proc.stdout and "--out DIR" in proc.stdout
