"""Stopping a process a test started: SIGTERM, a grace period, then SIGKILL; and stopping what a
start left running when the start itself fails."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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


@contextmanager
def stopped_on_failure(stop: Callable[[], None]) -> Iterator[None]:
    """Run the block (a start of several processes); if it raises, ``stop`` before the error goes on,
    so that a half-started harness leaves nothing running."""
    try:
        yield
    except BaseException:
        stop()
        raise
