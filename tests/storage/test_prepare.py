"""The storage reconciler on real loop devices, real lvm2, mkfs, wipefs, blkid and mount(8)."""

from __future__ import annotations

import asyncio
import configparser
import json
import subprocess
from pathlib import Path

from agent.paths import Paths
from agent.storage.ledger import Entry, Ledger, new_lvm_uuid
from agent.storage.mountunit import unit_name
from agent.storage.prepare import StorageReconciler
from agent.sysexec import ProcessRunner
from tests.storage.loopbed import ENV, LoopBed, decision, digest, fs_plan, lvm_plan, sh


def blkid(dev: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in sh("blkid", "-p", "-o", "export", dev).splitlines())


def vg_report(vg: str) -> dict[str, str]:
    out = sh(
        "vgs", "--reportformat", "json", "--units", "b", "--nosuffix", "-o", "vg_name,vg_tags,pv_count,vg_size", vg
    )
    row: dict[str, str] = json.loads(out)["report"][0]["vg"][0]
    return row


def test_lvm_blank_namespaces_become_one_tagged_volume_group_and_are_recognised(
    bed: LoopBed, box: Path, runner: ProcessRunner
) -> None:
    vg = bed.vg("nvme")
    a, b = bed.loop(), bed.loop()
    plan = lvm_plan(decision(a, "SNA", vg=vg), decision(b, "SNB", vg=vg))
    rec = StorageReconciler(Paths(box), runner)

    status = asyncio.run(rec.reconcile(plan))

    assert [n.state for n in status.namespaces] == ["prepared", "prepared"], status
    row = vg_report(vg)
    assert row["vg_tags"] == "edge-agent" and row["pv_count"] == "2"
    assert all(n.target == vg and n.capacity_bytes and n.free_bytes == n.capacity_bytes for n in status.namespaces)
    before = sh("pvs", "--reportformat", "json", "-o", "pv_name,pv_uuid,vg_name", a, b)

    again = asyncio.run(StorageReconciler(Paths(box), runner).reconcile(plan))

    assert [n.state for n in again.namespaces] == ["prepared", "prepared"]
    assert all("tag edge-agent" in n.reason for n in again.namespaces), again
    assert sh("pvs", "--reportformat", "json", "-o", "pv_name,pv_uuid,vg_name", a, b) == before


def test_filesystem_mode_makes_xfs_and_a_mount_unit_that_mounts_it(
    bed: LoopBed, box: Path, runner: ProcessRunner
) -> None:
    dev = bed.loop(320)  # xfs wants 300 MiB
    d = decision(dev, "S3X 9/a")
    status = asyncio.run(StorageReconciler(Paths(box), runner).reconcile(fs_plan("xfs", d)))

    (ns,) = status.namespaces
    assert ns.state == "prepared", ns
    tags = blkid(dev)
    assert tags["TYPE"] == "xfs" and tags["LABEL"] == "edge-agent"
    name = unit_name(d.mountpoint)
    assert name == sh("systemd-escape", "--path", "--suffix=mount", d.mountpoint).strip()
    unit = configparser.ConfigParser(interpolation=None)
    unit.read(box / "etc/systemd/system" / name)
    assert unit["Mount"]["Where"] == "/var/lib/edge-agent/volumes/S3X_9_a-1"
    assert unit["Mount"]["What"] == f"/dev/disk/by-uuid/{tags['UUID']}" and unit["Mount"]["Type"] == "xfs"
    # mounted (by the unit) where local-path will put volumes, with real free space reported
    mounted = subprocess.run(
        ["findmnt", "-n", "-o", "SOURCE", str(box / d.mountpoint.lstrip("/"))], capture_output=True
    )
    assert mounted.stdout.decode().strip() == dev
    assert ns.capacity_bytes and ns.free_bytes and 0 < ns.free_bytes <= ns.capacity_bytes

    again = asyncio.run(StorageReconciler(Paths(box), runner).reconcile(fs_plan("xfs", d)))
    assert again.namespaces[0].state == "prepared" and "labelled edge-agent" in again.namespaces[0].reason
    assert (
        dict(line.split("=", 1) for line in sh("blkid", "-p", "-o", "export", dev).splitlines())["UUID"] == tags["UUID"]
    )


def test_ext4_is_made_when_asked(bed: LoopBed, box: Path, runner: ProcessRunner) -> None:
    dev = bed.loop()
    status = asyncio.run(StorageReconciler(Paths(box), runner).reconcile(fs_plan("ext4", decision(dev, "SE"))))
    assert status.namespaces[0].state == "prepared", status
    tags = blkid(dev)
    assert tags["TYPE"] == "ext4" and tags["LABEL"] == "edge-agent"


def test_a_foreign_volume_group_of_the_same_name_is_never_extended(
    bed: LoopBed, box: Path, runner: ProcessRunner
) -> None:
    vg = bed.vg("taken")
    theirs, mine = bed.loop(), bed.loop()
    subprocess.run(["vgcreate", vg, theirs], check=True, capture_output=True, env=ENV)
    before = digest(mine)
    status = asyncio.run(StorageReconciler(Paths(box), runner).reconcile(lvm_plan(decision(mine, "SM", vg=vg))))
    assert status.namespaces[0].state == "failed" and "without the edge-agent tag" in status.namespaces[0].reason
    assert digest(mine) == before


def test_a_device_that_is_gone_or_not_a_block_device_fails_with_the_reason(
    bed: LoopBed, box: Path, runner: ProcessRunner
) -> None:
    plain = box / "plain.img"
    plain.write_bytes(b"\0" * 4096)
    plan = lvm_plan(decision("/dev/edge-agent-test-missing", "SG", vg=bed.vg("g")), decision(str(plain), "SP", vg="x"))
    status = asyncio.run(StorageReconciler(Paths(box), runner).reconcile(plan))
    gone, regular = status.namespaces
    assert gone.state == "failed" and "No such file" in gone.reason
    assert regular.state == "failed" and "not a block device" in regular.reason
    assert plain.read_bytes() == b"\0" * 4096


def test_an_unfinished_pv_is_finished_even_after_the_device_was_renamed(
    bed: LoopBed, box: Path, runner: ProcessRunner
) -> None:
    """Killed between pvcreate and vgcreate, then a reboot swapped nvme0n1/nvme1n1: the UUID still says ours."""
    vg, dev = bed.vg("renamed"), bed.loop()
    pv_uuid = new_lvm_uuid()
    Ledger(Paths(box).state_dir / "storage.json").record("SR-1", Entry("/dev/nvme7n1", "SR", 1, pv_uuid, vg))
    sh("pvcreate", "--uuid", pv_uuid, "--norestorefile", dev)

    status = asyncio.run(StorageReconciler(Paths(box), runner).reconcile(lvm_plan(decision(dev, "SR", vg=vg))))

    assert status.namespaces[0].state == "prepared" and "not yet in a volume group" in status.namespaces[0].reason
    assert vg_report(vg)["vg_tags"] == "edge-agent"
