"""edge-registrar run as a program, for the tests that drive its command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def registrar(state: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """``edge-registrar --state-dir STATE ARGS...``; with ``check`` it must exit 0."""
    proc = subprocess.run(
        [sys.executable, "-m", "agent.registrar", "--state-dir", str(state), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc
