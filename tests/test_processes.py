"""The stop every harness uses for the processes it starts: SIGTERM, then SIGKILL after the grace period."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from tests.processes import stop_process, stopped_on_failure


def child(code: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-c", f"import signal, sys, time\n{code}\nprint('up', flush=True)\ntime.sleep(60)"],
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stdout.readline() == b"up\n"  # its handlers are installed
    return proc


def test_a_process_that_honours_sigterm_ends_with_it() -> None:
    assert stop_process(child(""), grace=10) == -signal.SIGTERM


def test_a_process_that_ignores_sigterm_is_killed_after_the_grace_period() -> None:
    proc = child("signal.signal(signal.SIGTERM, signal.SIG_IGN)")
    t0 = time.monotonic()
    assert stop_process(proc, grace=0.5) == -signal.SIGKILL
    assert 0.5 <= time.monotonic() - t0 < 10


def test_a_process_that_already_exited_keeps_its_status() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    proc.wait()
    assert stop_process(proc) == 3


def test_a_failed_start_stops_what_it_started_and_the_error_goes_on() -> None:
    stopped: list[str] = []
    with pytest.raises(RuntimeError, match="no port"), stopped_on_failure(lambda: stopped.append("stop")):
        raise RuntimeError("no port")
    assert stopped == ["stop"]
    with stopped_on_failure(lambda: stopped.append("again")):
        pass  # a start that succeeds leaves its processes running
    assert stopped == ["stop"]
