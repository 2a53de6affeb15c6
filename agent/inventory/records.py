"""What the collectors produce: plain immutable records, standard library only.

One named tuple per record of the ``Inventory`` model (agent/model/inventory.py),
with the same field names. The collectors build these, so a one-shot scan
(``agentctl inventory --local``) needs neither pydantic nor asyncio; the daemon
validates them into the pydantic model (agent/inventory/scan.py), and
:mod:`agent.inventory.document` turns them into the JSON that model dumps.
tests/inventory/test_records.py keeps the two in step.

No field has a default: a collector states every value of its record, so a
record is the whole document by itself, and the defaults (and descriptions)
live in one place, the model. ``problems`` maps the name of a null field to
the reason it could not be read. Named tuples, not dataclasses: a one-shot process
builds these classes at every start, and ten frozen dataclasses cost it ~15 ms. For the
same reason the annotations are evaluated here (no ``from __future__ import annotations``):
as strings, NamedTuple would compile each one into a ForwardRef, ~100 compiles.
"""

from datetime import datetime
from typing import Any, Literal, NamedTuple

INVENTORY_SCHEMA = 1

NvmeTransport = Literal["pcie", "tcp", "rdma", "fc", "loop"]
BootMode = Literal["uefi", "bios"]
NicKind = Literal["physical", "virtual", "bridge", "bond", "vlan", "veth", "loopback", "tunnel"]
GpuKind = Literal["pci", "platform"]


class PciDevice(NamedTuple):
    problems: dict[str, str]
    address: str
    class_code: str | None
    vendor_id: str | None
    device_id: str | None
    subsystem_vendor_id: str | None
    subsystem_device_id: str | None
    vendor_name: str | None
    device_name: str | None
    driver: str | None
    numa_node: int | None
    link_speed_gts: float | None
    link_width: int | None


class NvmeNamespace(NamedTuple):
    problems: dict[str, str]
    name: str
    nsid: int | None
    size_bytes: int | None
    logical_block_size: int | None
    physical_block_size: int | None
    wwid: str | None
    remote: bool
    holds_root: bool


class NvmeController(NamedTuple):
    problems: dict[str, str]
    name: str
    model: str | None
    serial: str | None
    firmware_rev: str | None
    transport: NvmeTransport | None
    remote: bool
    fabric_address: str | None
    subsystem_nqn: str | None
    pci: PciDevice | None
    namespaces: tuple[NvmeNamespace, ...]


class Disk(NamedTuple):
    problems: dict[str, str]
    name: str
    model: str | None
    vendor: str | None
    serial: str | None
    bus: str | None
    size_bytes: int | None
    rotational: bool | None
    removable: bool | None
    holds_root: bool
    pci_address: str | None


class NvidiaDetails(NamedTuple):
    name: str | None
    uuid: str | None
    memory_mib: int | None
    driver_version: str | None
    cuda_version: str | None
    mig_mode: str | None


class Gpu(NamedTuple):
    problems: dict[str, str]
    kind: GpuKind
    name: str
    vendor_id: str | None
    device_id: str | None
    vendor_name: str | None
    device_name: str | None
    driver: str | None
    pci: PciDevice | None
    platform_path: str | None
    compatible: str | None
    numa_node: int | None
    display_only: bool
    drm_card: str | None
    drm_render: str | None
    nvidia: NvidiaDetails | None


class Nic(NamedTuple):
    problems: dict[str, str]
    name: str
    kind: NicKind
    physical: bool
    bond_master: str | None
    is_vf: bool
    driver: str | None
    pci_address: str | None
    numa_node: int | None
    mac: str | None
    mtu: int | None
    operstate: str | None
    speed_mbps: int | None
    duplex: str | None
    sriov_total_vfs: int | None
    sriov_num_vfs: int | None
    rdma_devices: tuple[str, ...]
    addresses: tuple[str, ...]
    default_route: bool


class System(NamedTuple):
    problems: dict[str, str]
    machine_id: str | None
    vendor: str | None
    product: str | None
    serial: str | None
    board_vendor: str | None
    board_name: str | None
    cpu_model: str | None
    sockets: int | None
    cores: int | None
    threads: int | None
    memory_bytes: int | None
    kernel: str | None
    os_release: str | None
    boot_mode: BootMode | None
    architecture: str | None


class Tpm(NamedTuple):
    problems: dict[str, str]
    name: str
    version_major: int | None
    driver: str | None
    resource_manager: bool


class Inventory(NamedTuple):
    schema_version: int
    scanned_at: datetime
    system: System
    pci: tuple[PciDevice, ...]
    nvme: tuple[NvmeController, ...]
    disks: tuple[Disk, ...]
    gpus: tuple[Gpu, ...]
    nics: tuple[Nic, ...]
    tpms: tuple[Tpm, ...]
    problems: dict[str, str]


def unknown_system(problems: dict[str, str]) -> System:
    """The system record of a scan whose system collector failed as a whole: every fact null."""
    nothing: dict[str, Any] = {name: None for name in System._fields if name != "problems"}
    return System(problems=problems, **nothing)
