"""The disk image/disk.sh makes, read back with other tools than the ones that wrote it
(sfdisk --json, mtools, debugfs, qemu-img info), and its refusal of a tree check_tree rejects.

No VM is booted here; tests/vm/test_vm.py boots this disk.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from vmboxes import REPO

pytestmark = [pytest.mark.vm, pytest.mark.slow]

ESP_TYPE = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
ROOT_X86_64 = "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709"


MTOOLS_ENV = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}


def run(*argv: str) -> str:
    res = subprocess.run(argv, capture_output=True, text=True, env=MTOOLS_ENV, check=False)
    assert res.returncode == 0, f"{argv}: {res.stderr}"
    return res.stdout


def test_gpt_with_an_esp_and_a_root_partition(disk: Path) -> None:
    table = json.loads(run("sfdisk", "--json", str(disk)))["partitiontable"]
    assert table["label"] == "gpt"
    esp, root = table["partitions"]
    assert esp["type"] == ESP_TYPE and root["type"] == ROOT_X86_64
    assert esp["start"] * 512 == 1 << 20 and root["start"] == esp["start"] + esp["size"]
    info = json.loads(run("qemu-img", "info", "--output=json", str(disk.with_suffix(".qcow2"))))
    assert info["format"] == "qcow2" and info["virtual-size"] == disk.stat().st_size


def test_the_esp_boots_the_trees_kernel_with_systemd_boot(disk: Path, tree: Path) -> None:
    img = f"{disk}@@1M"
    listing = run("mdir", "-i", img, "-b", "-/", "::/").split()
    kernels = sorted(p.name for p in (tree / "boot").glob("vmlinuz-*"))
    assert "::/EFI/BOOT/BOOTX64.EFI" in listing
    assert f"::/{kernels[-1]}" in listing and f"::/initrd.img-{kernels[-1].removeprefix('vmlinuz-')}" in listing
    assert not any(p.lower().endswith("edge-agent.toml") for p in listing)  # no seed baked in
    efi = subprocess.run(
        ["mcopy", "-i", img, "::/EFI/BOOT/BOOTX64.EFI", "-"],
        capture_output=True, check=True, env=MTOOLS_ENV,
    ).stdout  # fmt: skip
    assert efi[:2] == b"MZ" and b"systemd-boot" in efi  # a PE image, systemd's boot loader
    entry = run("mtype", "-i", img, "::/loader/entries/edge-agent.conf")
    assert f"linux   /{kernels[-1]}" in entry and "root=PARTUUID=" in entry
    table = json.loads(run("sfdisk", "--json", str(disk)))["partitiontable"]
    root_uuid = table["partitions"][1]["uuid"].lower()
    assert f"root=PARTUUID={root_uuid} " in entry


def test_the_root_is_the_tree_with_boot_on_the_esp(disk: Path, tree: Path) -> None:
    table = json.loads(run("sfdisk", "--json", str(disk)))["partitiontable"]
    root = table["partitions"][1]
    rootfs = disk.parent / f".{disk.name}.root-check"
    try:
        subprocess.run(
            ["dd", f"if={disk}", f"of={rootfs}", "bs=512", f"skip={root['start']}", f"count={root['size']}",
             "conv=sparse", "status=none"],
            check=True,
        )  # fmt: skip
        fstab = run("debugfs", "-R", "cat /etc/fstab", str(rootfs))
        assert "/boot  vfat" in fstab and "x-systemd.growfs" in fstab
        assert run("debugfs", "-R", "cat /etc/machine-id", str(rootfs)).strip() == "uninitialized"
        boot = run("debugfs", "-R", "ls -p /boot", str(rootfs)).split()
        assert [e.split("/")[5] for e in boot if e.split("/")[5] not in (".", "..")] == []
        agent = run("debugfs", "-R", "stat /opt/edge-agent/venv/bin/agentd", str(rootfs))
        assert "Type: regular" in agent
        assert "File not found" in subprocess.run(
            ["debugfs", "-R", "stat /opt/edge-agent/venv/bin/edge-registrar", str(rootfs)],
            capture_output=True, text=True, check=False,
        ).stderr  # fmt: skip
    finally:
        rootfs.unlink(missing_ok=True)


def test_a_tree_check_tree_rejects_never_becomes_a_disk(tree: Path, tmp_path: Path) -> None:
    bad = tmp_path / "tree"
    subprocess.run(["cp", "-al", str(tree), str(bad)], check=True)  # hard links: only new files are added below
    key = bad / "var/lib/edge-agent/identity/key.pem"
    key.parent.mkdir(parents=True)
    key.write_text("-----BEGIN EC PRIVATE KEY-----\n" + "A" * 64 + "\n-----END EC PRIVATE KEY-----\n")
    out = tmp_path / "out"
    argv = ["bash", str(REPO / "image/disk.sh"), str(bad), "--out", str(out)]
    res = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert res.returncode != 0
    assert "/var/lib/edge-agent: identity or seed baked into the image" in res.stderr, res.stderr
    assert "not making a disk" in res.stderr
    assert not any(out.glob("*.raw")) and not any(out.glob("*.qcow2"))


def test_disk_sh_prints_only_the_disks_path(tree: Path, tmp_path: Path) -> None:
    """What `make image` and image builders read: stdout is the raw disk's path, nothing else."""
    out = tmp_path / "out"
    res = subprocess.run(["bash", str(REPO / "image/disk.sh"), str(tree), "--out", str(out)], capture_output=True,
                         text=True, check=False)  # fmt: skip
    assert res.returncode == 0, res.stderr
    (raw,) = out.glob("disk-test-*.raw")
    assert res.stdout.splitlines() == [str(raw)]
    assert raw.with_suffix(".qcow2").is_file()
