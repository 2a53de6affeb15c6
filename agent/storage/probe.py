"""Is a block device provably blank? What signatures does it carry? (read-only)

Blank means all of: no partitions, no holders (device-mapper, md, bcache...),
not mounted and not swap (itself or a partition), and no signature found by
``wipefs --no-act`` nor by ``blkid -p`` (the low-level probe, which ignores the
blkid cache). Nothing here writes to a device.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from agent.errors import CommandFailed
from agent.sysexec import Runner


@dataclass(frozen=True)
class Signature:
    type: str
    uuid: str = ""
    label: str = ""


@dataclass(frozen=True)
class PhysicalVolume:
    uuid: str
    vg: str
    vg_tags: tuple[str, ...]
    size_bytes: int
    free_bytes: int


@dataclass(frozen=True)
class Probe:
    device: str
    in_use: str = ""
    signatures: tuple[Signature, ...] = ()
    pv: PhysicalVolume | None = None

    @property
    def blank(self) -> bool:
        return not self.in_use and not self.signatures


def _devnum(device: str) -> tuple[int, int]:
    st = os.stat(device)
    if not stat.S_ISBLK(st.st_mode):
        raise ValueError(f"{device} is not a block device")
    return os.major(st.st_rdev), os.minor(st.st_rdev)


def in_use(device: str, sys_root: Path = Path("/sys"), proc: Path = Path("/proc")) -> str:
    """Why ``device`` is in use (partitions, holders, mounts, swap), or ''. Raises OSError/ValueError
    when it is missing or not a block device (the namespace then shows as failed, with the reason)."""
    major, minor = _devnum(device)
    block = sys_root / "dev" / "block" / f"{major}:{minor}"
    name = os.path.basename(os.path.realpath(block))
    parts = sorted(p.name for p in block.iterdir() if (p / "partition").exists()) if block.is_dir() else []
    if parts:
        return f"has partitions ({', '.join(parts)})"
    holders = sorted(os.listdir(block / "holders")) if (block / "holders").is_dir() else []
    if holders:
        return f"in use by {', '.join(holders)} (/sys/block/{name}/holders)"
    for line in (proc / "self" / "mountinfo").read_text().splitlines():
        fields = line.split()
        if len(fields) > 4 and fields[2] == f"{major}:{minor}":
            return f"mounted at {fields[4]}"
    for line in (proc / "swaps").read_text().splitlines()[1:]:
        path = line.split()[0] if line.split() else ""
        try:
            if path and _devnum(path) == (major, minor):
                return "in use as swap"
        except (OSError, ValueError):
            continue
    return ""


async def signatures(runner: Runner, device: str, timeout: float) -> tuple[Signature, ...]:
    """Every signature wipefs and blkid's low-level probe see (either one is enough to refuse)."""
    out: dict[tuple[str, str], Signature] = {}
    wipefs = await runner.run(["wipefs", "--no-act", "--json", device], timeout=timeout)
    doc = json.loads(wipefs.stdout) if wipefs.stdout.strip() else {"signatures": []}
    for sig in doc.get("signatures", []):
        s = Signature(str(sig.get("type") or "unknown"), str(sig.get("uuid") or ""), str(sig.get("label") or ""))
        out[(s.type, s.uuid)] = s
    blkid = await runner.run(["blkid", "-p", "-o", "export", device], timeout=timeout, check=False)
    if blkid.returncode not in (0, 2):  # 2: nothing found
        raise CommandFailed(blkid.argv, blkid.returncode, blkid.stdout, blkid.stderr)
    tags = dict(line.split("=", 1) for line in blkid.stdout.splitlines() if "=" in line)
    kind = tags.get("TYPE") or tags.get("PTTYPE")
    if kind:
        uuid = tags.get("UUID", "") if "TYPE" in tags else tags.get("PTUUID", "")
        key = (kind, uuid)
        if key not in out:
            out[key] = Signature(kind, uuid, tags.get("LABEL", "").replace("\\ ", " "))
    return tuple(sorted(out.values(), key=lambda s: (s.type, s.uuid)))


async def physical_volume(runner: Runner, device: str, timeout: float) -> PhysicalVolume | None:
    """The LVM view of ``device`` when it is a PV, else None."""
    argv = ["pvs", "--reportformat", "json", "--units", "b", "--nosuffix"]
    argv += ["-o", "pv_uuid,vg_name,vg_tags,pv_size,pv_free", device]
    try:
        result = await runner.run(argv, timeout=timeout)
    except CommandFailed:
        return None
    rows = [pv for rep in json.loads(result.stdout).get("report", []) for pv in rep.get("pv", [])]
    if not rows:
        return None
    row = rows[0]
    return PhysicalVolume(
        uuid=row.get("pv_uuid", ""),
        vg=row.get("vg_name", ""),
        vg_tags=tuple(t for t in row.get("vg_tags", "").split(",") if t),
        size_bytes=int(row.get("pv_size") or 0),
        free_bytes=int(row.get("pv_free") or 0),
    )


async def probe(
    runner: Runner, device: str, timeout: float, sys_root: Path = Path("/sys"), proc: Path = Path("/proc")
) -> Probe:
    """Everything needed to decide whether ``device`` may be written. Raises ExecError when a tool fails."""
    busy = in_use(device, sys_root, proc)
    sigs = await signatures(runner, device, timeout)
    pv = None
    if any(s.type == "LVM2_member" for s in sigs):
        pv = await physical_volume(runner, device, timeout)
    return Probe(device, busy, sigs, pv)
