"""The agent never writes to a device that is not provably blank (checksummed before and after).

Each case makes a real loop device carry something (a filesystem, a partition
table, an LVM PV of another volume group, a mount), then runs the reconciler in
both modes against it: the device's bytes stay the same and the namespace is
reported as skipped with the reason.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from agent.model.storage import StoragePlan
from agent.paths import Paths
from agent.storage.prepare import StorageReconciler
from agent.sysexec import ProcessRunner
from tests.storage.loopbed import ENV, LoopBed, decision, digest, fs_plan, lvm_plan, sh


def with_ext4(bed: LoopBed, dev: str) -> str:
    sh("mkfs.ext4", "-q", "-L", "data", dev)
    return "ext4 signature"


def with_gpt(bed: LoopBed, dev: str) -> str:
    sh("sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", dev, stdin="label: gpt\n")
    return "gpt signature"


def with_partition(bed: LoopBed, dev: str) -> str:
    """A partition the kernel knows (partx adds it; the bed removes it by name afterwards)."""
    sh("sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", dev, stdin="label: gpt\n,\n")
    sh("partx", "-a", dev)
    name = Path(dev).name
    assert Path(f"/sys/class/block/{name}/{name}p1").exists()
    return f"has partitions ({name}p1)"


def with_other_vg(bed: LoopBed, dev: str) -> str:
    subprocess.run(["vgcreate", bed.vg("other"), dev], check=True, capture_output=True, env=ENV)
    return "LVM physical volume of volume group edgetest-"


def with_mount(bed: LoopBed, dev: str) -> str:
    # even one that looks like ours (label edge-agent) is refused while mounted elsewhere
    sh("mkfs.ext4", "-q", "-E", "lazy_itable_init=0,lazy_journal_init=0", "-L", "edge-agent", dev)
    bed.mount(dev, bed.tmp / "elsewhere", "-o", "ro")
    return "mounted at"


def with_ours_looking_xfs_other_uuid(bed: LoopBed, dev: str) -> str:
    """An unlabelled xfs whose UUID the ledger does not hold: someone else's, not ours to redo."""
    sh("mkfs.xfs", "-q", dev)
    return "xfs signature"


CASES: dict[str, Callable[[LoopBed, str], str]] = {
    "filesystem": with_ext4,
    "partition-table": with_gpt,
    "partitions": with_partition,
    "lvm-pv-of-another-vg": with_other_vg,
    "mounted": with_mount,
    "foreign-xfs": with_ours_looking_xfs_other_uuid,
}


@pytest.mark.parametrize("mode", ["lvm", "xfs", "ext4"])
@pytest.mark.parametrize("case", list(CASES))
def test_never_writes_to_a_device_that_is_not_blank(
    bed: LoopBed, box: Path, runner: ProcessRunner, case: str, mode: str
) -> None:
    dev = bed.loop(320)
    reason = CASES[case](bed, dev)
    before = digest(dev)
    plan: StoragePlan = (
        lvm_plan(decision(dev, "SX", vg=bed.vg("mine"))) if mode == "lvm" else fs_plan(mode, decision(dev, "SX"))
    )

    status = asyncio.run(StorageReconciler(Paths(box), runner).reconcile(plan))

    (ns,) = status.namespaces
    assert ns.state == "skipped", ns
    assert reason in ns.reason, ns.reason
    assert digest(dev) == before
    assert not list((box / "etc/systemd/system").glob("*.mount")) if (box / "etc").exists() else True
