"""SIGKILL during preparation leaves a blank device or one the next start recognises and completes.

The reconciler runs in its own process on a real loop device; once it has
recorded its intent (the ledger appears, just before the first destructive
command) the test waits a little and SIGKILLs it and every process it started
(pvcreate, mkfs, ...). The device must then be blank, ours to finish, or ours
and complete — never "someone else's" — and the next run must end prepared.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from agent.paths import Paths
from agent.storage.prepare import StorageReconciler
from agent.sysexec import ProcessRunner
from tests.storage.loopbed import LoopBed, decision, fs_plan, lvm_plan, sh

REPO = Path(__file__).resolve().parents[2]


def kill_tree(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the reconciler and everything it started, as systemd does to a unit's cgroup. It is stopped
    first, so no program it is starting at that moment escapes the list."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGSTOP)
    try:
        family = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        family = []
    for p in family:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()
    psutil.wait_procs(family, timeout=30)
    proc.wait(timeout=30)


def start(box: Path, mode: str, dev: str, vg: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "tests.storage.prepare_child", str(box), mode, dev, "SK", *([vg] if vg else [])]
    return subprocess.Popen(
        argv, cwd=REPO, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


@pytest.mark.parametrize("delay", [0.0, 0.01, 0.05, 0.12, 0.3])
@pytest.mark.parametrize("mode", ["lvm", "xfs", "ext4"])
def test_sigkill_mid_preparation_never_leaves_a_half_made_device(
    bed: LoopBed, box: Path, runner: ProcessRunner, mode: str, delay: float
) -> None:
    dev = bed.loop(320)
    vg = bed.vg("k") if mode == "lvm" else ""
    ledger = box / "var/lib/edge-agent/storage.json"
    child = start(box, mode, dev, vg)
    deadline = time.monotonic() + 60
    while not ledger.exists() and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.001)
    assert ledger.exists(), child.communicate()
    time.sleep(delay)
    kill_tree(child)

    plan = lvm_plan(decision(dev, "SK", vg=vg)) if mode == "lvm" else fs_plan(mode, decision(dev, "SK"))
    rec = StorageReconciler(Paths(box), runner)
    verdict = asyncio.run(rec.verdict(plan, plan.namespaces[0]))
    assert verdict.kind in ("blank", "resume", "ours"), verdict
    print(f"killed {mode} after {delay}s: {verdict.kind}")

    status = asyncio.run(rec.reconcile(plan))
    assert status.namespaces[0].state == "prepared", status
    if mode == "lvm":
        assert sh("vgs", "--noheadings", "-o", "vg_tags", vg).strip() == "edge-agent"
    else:
        tags = dict(line.split("=", 1) for line in sh("blkid", "-p", "-o", "export", dev).splitlines())
        assert tags["TYPE"] == mode and tags["LABEL"] == "edge-agent"


def test_sigkill_at_the_mount_unit_step_is_finished_next_start(bed: LoopBed, box: Path, runner: ProcessRunner) -> None:
    """The stand-in systemctl kills its caller at `systemctl enable`: filesystem complete, unit not started."""
    dev = bed.loop(320)
    child = start(box, "xfs", dev, "", {"EDGE_STANDIN_KILL_CALLER": "systemctl:enable", "EDGE_STANDIN_ROOT": str(box)})
    child.wait(timeout=120)
    assert child.returncode == -9
    plan = fs_plan("xfs", decision(dev, "SK"))
    rec = StorageReconciler(Paths(box), runner)
    assert asyncio.run(rec.verdict(plan, plan.namespaces[0])).kind == "ours"
    status = asyncio.run(rec.reconcile(plan))
    assert status.namespaces[0].state == "prepared" and status.namespaces[0].free_bytes, status
