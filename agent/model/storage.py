"""Local NVMe for CSI: the ``[storage]`` config, the planner's per-namespace decisions, status (data only).

Off by default. ``lvm`` makes one volume group per device class (the names
TopoLVM's ``device-classes`` refer to); ``filesystem`` puts XFS or ext4 on each
namespace, mounted under /var/lib/edge-agent/volumes/<serial>-<nsid> by a
systemd mount unit (k3s's local-path ``default-local-storage-path``).
Only provably blank namespaces are ever written (agent/storage/probe.py).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

StorageMode = Literal["lvm", "filesystem"]
Filesystem = Literal["xfs", "ext4"]
Transport = Literal["pcie", "tcp", "rdma", "fc", "loop"]
FABRIC: frozenset[str] = frozenset({"tcp", "rdma", "fc"})
VOLUMES_DIR = "/var/lib/edge-agent/volumes"

_NAME = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_VG = re.compile(r"[A-Za-z0-9+_.][A-Za-z0-9+_.-]{0,126}")


def _local() -> list[Transport]:
    return ["pcie"]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DeviceSelector(_Frozen):
    """Which namespaces; every criterion that is set must hold (empty/0: any)."""

    model: str = Field("", description="controller model glob, e.g. 'SAMSUNG MZQL2*'")
    serial: str = Field("", description="controller serial glob")
    min_size_bytes: int = Field(0, ge=0)
    max_size_bytes: int = Field(0, ge=0, description="0: no upper bound")
    transport: list[Transport] = Field(
        default_factory=_local, description="fabric (tcp, rdma, fc) only when listed here"
    )
    numa_node: int = Field(-1, ge=-1, description="-1: any NUMA node")

    @model_validator(mode="after")
    def _sizes(self) -> DeviceSelector:
        if self.max_size_bytes and self.max_size_bytes < self.min_size_bytes:
            raise ValueError(f"max_size_bytes {self.max_size_bytes} is below min_size_bytes {self.min_size_bytes}")
        return self

    def describe(self) -> str:
        parts = [f"{k}={v}" for k, v in (("model", self.model), ("serial", self.serial)) if v]
        if self.min_size_bytes:
            parts.append(f"min_size_bytes={self.min_size_bytes}")
        if self.max_size_bytes:
            parts.append(f"max_size_bytes={self.max_size_bytes}")
        if self.numa_node >= 0:
            parts.append(f"numa_node={self.numa_node}")
        parts.append("transport=" + "|".join(self.transport))
        return ", ".join(parts)


class DeviceClass(_Frozen):
    """``lvm`` mode: one volume group, named in TopoLVM's ``device-classes``."""

    name: str = Field(description="TopoLVM device-class name (a DNS label)")
    volume_group: str = Field("", description="LVM volume group; empty: edge-<name>")
    select: DeviceSelector = Field(default_factory=DeviceSelector)
    default: bool = Field(False, description="TopoLVM's default device class")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME.fullmatch(v):
            raise ValueError(f"expected a DNS label (lower-case letters, digits, '-'), got {v!r}")
        return v

    @field_validator("volume_group")
    @classmethod
    def _vg(cls, v: str) -> str:
        if v and (not _VG.fullmatch(v) or v in (".", "..")):
            raise ValueError(f"expected an LVM name ([A-Za-z0-9+_.-], not starting with '-'), got {v!r}")
        return v

    @property
    def vg(self) -> str:
        return self.volume_group or f"edge-{self.name}"


class StorageSection(_Frozen):
    """``[storage]``: off unless enabled."""

    enabled: bool = False
    mode: StorageMode = "lvm"
    filesystem: Filesystem = Field("xfs", description="filesystem mode: xfs or ext4")
    select: DeviceSelector = Field(default_factory=DeviceSelector, description="namespaces taken at all")
    device_classes: list[DeviceClass] = Field(
        default_factory=list, description="lvm mode; empty: one class 'nvme' (volume group edge-nvme)"
    )
    command_timeout: float = Field(120.0, gt=0, description="seconds one pvcreate/vgcreate/mkfs may take")

    @field_validator("device_classes")
    @classmethod
    def _classes(cls, v: list[DeviceClass]) -> list[DeviceClass]:
        for what, values in (("name", [c.name for c in v]), ("volume group", [c.vg for c in v])):
            dup = sorted({n for n in values if values.count(n) > 1})
            if dup:
                raise ValueError(f"{what} {', '.join(dup)} used by more than one class")
        if sum(c.default for c in v) > 1:
            raise ValueError("more than one class has default = true")
        return v

    def classes(self) -> tuple[DeviceClass, ...]:
        every = DeviceSelector(transport=["pcie", "tcp", "rdma", "fc", "loop"])  # storage.select already chose
        return tuple(self.device_classes) or (DeviceClass(name="nvme", default=True, select=every),)


Action = Literal["prepare", "skip"]


class NamespaceDecision(_Frozen):
    """What the planner wants done with one namespace (before the on-disk probe)."""

    device: str = Field(description="block device path, e.g. /dev/nvme0n1")
    serial: str
    nsid: int
    model: str = ""
    size_bytes: int = 0
    action: Action
    reason: str = Field("", description="why skipped (selection), empty when to be prepared")
    device_class: str = Field("", description="lvm mode: the class; filesystem mode: empty")
    volume_group: str = ""
    mountpoint: str = Field("", description="filesystem mode: /var/lib/edge-agent/volumes/<serial>-<nsid>")


class StoragePlan(_Frozen):
    mode: StorageMode
    filesystem: Filesystem = "xfs"
    namespaces: tuple[NamespaceDecision, ...] = ()
    classes: tuple[DeviceClass, ...] = ()
    command_timeout: float = 120.0


NamespaceState = Literal["prepared", "skipped", "failed"]


class NamespaceStatus(_Frozen):
    """One namespace in ``agentctl status`` and /metrics."""

    device: str
    serial: str
    nsid: int
    state: NamespaceState
    reason: str = Field("", description="why skipped or failed; how it was recognised when prepared")
    target: str = Field("", description="volume group or mountpoint")
    capacity_bytes: int | None = None
    free_bytes: int | None = None


class StorageStatus(_Frozen):
    mode: StorageMode
    summary: str = Field("", description="one line for humans: counts per state")
    namespaces: tuple[NamespaceStatus, ...] = ()
