"""Stopping a process a test started: SIGTERM, a grace period, then SIGKILL."""

from __future__ import annotations

import signal
import subprocess
from typing import Any


def stop_process(proc: subprocess.Popen[Any], grace: float = 10.0) -> int:
    """End ``proc`` (SIGTERM; SIGKILL after ``grace`` seconds) and return its exit status.

    A process that has already exited is only reaped."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode
