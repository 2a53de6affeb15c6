"""Run the umockdev harness (hwbed.py) in a child process and read its JSON."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.needs import need_tool, skip_or_fail

HERE = Path(__file__).resolve().parent
HWBED = HERE / "hwbed.py"
FIXTURES = HERE.parent / "fixtures"


def umockdev_ready() -> str | None:
    """Why umockdev tests cannot run here, or None when they can."""
    if shutil.which("umockdev-wrapper") is None:
        return "umockdev-wrapper not installed (apt-get install umockdev gir1.2-umockdev-1.0)"
    if not Path("/usr/lib/python3/dist-packages/gi").is_dir():
        return "python3-gi not installed (apt-get install python3-gi)"
    return None


def require_umockdev() -> None:
    """Skip where umockdev is missing; fail in CI, which installs it (make deps): a missing piece there is a failure."""
    why = umockdev_ready()
    if why:
        skip_or_fail(why)


def run_hwbed(*args: str, timeout: float = 60) -> Any:
    require_umockdev()
    proc = subprocess.run(
        ["umockdev-wrapper", sys.executable, str(HWBED), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert proc.returncode == 0, f"hwbed {args} failed:\n{proc.stderr[-3000:]}"
    return json.loads(proc.stdout)


def run_recording(name: str, script: str, scratch: Path, timeout: float = 60) -> Any:
    """``python tests/inventory/SCRIPT SCRATCH`` under umockdev-run on the recording
    tests/fixtures/NAME.umockdev (no GObject bindings needed); its stdout as JSON."""
    umockdev_run = need_tool("umockdev-run", "umockdev")
    argv = [umockdev_run, "-d", str(FIXTURES / f"{name}.umockdev"), "--", sys.executable, str(HERE / script)]
    proc = subprocess.run([*argv, str(scratch)], capture_output=True, text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, f"{script} on {name} failed:\n{proc.stderr[-3000:]}"
    return json.loads(proc.stdout)
