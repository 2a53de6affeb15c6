"""Real loop devices and LVM for the storage tests; everything made is removed by name.

Loop devices need root and /dev/loop-control. Where they cannot exist the
tests skip with the reason; under CI (root, make deps) a missing piece fails.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from agent.model.storage import NamespaceDecision, StoragePlan
from agent.storage.select import volume_name
from tests.needs import skip_or_fail

STANDIN_BIN = Path(__file__).resolve().parent.parent / "standins" / "bin"
TOOLS = ("losetup", "wipefs", "blkid", "pvcreate", "vgcreate", "mkfs.xfs", "mkfs.ext4", "sfdisk", "mount")
ENV = {**os.environ, "LVM_SUPPRESS_FD_WARNINGS": "1"}


def loop_unavailable() -> str:
    if os.geteuid() != 0:
        return "loop devices need root"
    if not os.path.exists("/dev/loop-control"):
        return "no /dev/loop-control in this environment (container without loop devices)"
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        return f"missing tools: {', '.join(missing)} (make deps installs lvm2 xfsprogs util-linux)"
    return ""


def require_loop() -> None:
    why = loop_unavailable()
    if why:
        skip_or_fail(why)


def sh(*argv: str, stdin: str | None = None) -> str:
    r = subprocess.run(argv, input=stdin, capture_output=True, text=True, env=ENV, timeout=120)
    if r.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} exited {r.returncode}: {r.stderr.strip()}")
    return r.stdout


def digest(device: str) -> str:
    """sha256 of every byte of the device."""
    h = hashlib.sha256()
    with open(device, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class LoopBed:
    tmp: Path
    loops: list[str] = field(default_factory=list)
    vgs: list[str] = field(default_factory=list)
    mounts: list[Path] = field(default_factory=list)
    tag: str = field(default_factory=lambda: f"t{os.getpid()}{secrets.token_hex(3)}")

    def loop(self, size_mb: int = 64) -> str:
        img = self.tmp / f"disk{len(self.loops)}.img"
        with open(img, "wb") as f:
            f.truncate(size_mb << 20)
        dev = sh("losetup", "--find", "--show", str(img)).strip()
        self.loops.append(dev)
        return dev

    def vg(self, name: str) -> str:
        """A volume group name unique to this test (other engineers share the machine's LVM)."""
        vg = f"edgetest-{self.tag}-{name}"
        self.vgs.append(vg)
        return vg

    def mount(self, device: str, where: Path, *opts: str) -> None:
        where.mkdir(parents=True, exist_ok=True)
        sh("mount", *opts, device, str(where))
        self.mounts.append(where)

    def cleanup(self) -> None:
        with open("/proc/self/mountinfo") as f:  # ours, and those the stand-in systemctl made under the box
            under = [line.split()[4] for line in f if line.split()[4].startswith(str(self.tmp))]
        for where in [*reversed(under), *map(str, reversed(self.mounts))]:
            subprocess.run(["umount", where], capture_output=True)
        for vg in self.vgs:
            subprocess.run(["vgremove", "-f", vg], capture_output=True, env=ENV)
        for dev in self.loops:
            subprocess.run(["pvremove", "-ff", "-y", dev], capture_output=True, env=ENV)
            subprocess.run(["partx", "-d", dev], capture_output=True)  # no partition node outlives the test
            subprocess.run(["losetup", "-d", dev], capture_output=True)


def decision(
    device: str, serial: str, *, vg: str = "", mountpoint: str = "", size: int = 64 << 20
) -> NamespaceDecision:
    return NamespaceDecision(
        device=device,
        serial=serial,
        nsid=1,
        model="Loop NVMe",
        size_bytes=size,
        action="prepare",
        device_class="nvme" if vg else "",
        volume_group=vg,
        mountpoint=mountpoint or ("" if vg else f"/var/lib/edge-agent/volumes/{volume_name(serial, 1)}"),
    )


def lvm_plan(*decisions: NamespaceDecision) -> StoragePlan:
    return StoragePlan(mode="lvm", namespaces=decisions, command_timeout=60)


def fs_plan(fs: str, *decisions: NamespaceDecision) -> StoragePlan:
    return StoragePlan(mode="filesystem", filesystem=fs, namespaces=decisions, command_timeout=60)  # type: ignore[arg-type]
