"""Hardware inventory records (owned by the inventory collectors; data only).

Every record that reads hardware carries ``problems``: a map from the name of
a field that is null to the reason it could not be read (absent attribute,
permission denied, garbage, device removed mid-scan, tool timed out...). A
null field without an entry in ``problems`` simply does not apply (a PCIe
link width on an NVMe/TCP controller, say).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# the collectors' records (agent/inventory/records.py) are the same facts without pydantic
from agent.inventory.records import INVENTORY_SCHEMA, BootMode, GpuKind, NicKind, NvmeTransport


class _Record(BaseModel):
    # defer_build: validators are built on first use (the first scan), not when agentd imports this
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


class Observed(_Record):
    problems: dict[str, str] = Field(default_factory=dict, description="field name -> why that field is null")


class PciDevice(Observed):
    """One PCI function as sysfs and the udev hwdb describe it."""

    address: str = Field(description="domain:bus:device.function, e.g. 0000:3b:00.0")
    class_code: str | None = Field(None, description="6 hex digits: class, subclass, prog-if")
    vendor_id: str | None = Field(None, description="4 lower-case hex digits")
    device_id: str | None = None
    subsystem_vendor_id: str | None = None
    subsystem_device_id: str | None = None
    vendor_name: str | None = Field(None, description="udev hwdb name, when udev has one")
    device_name: str | None = None
    driver: str | None = None
    numa_node: int | None = None
    link_speed_gts: float | None = Field(None, description="current PCIe link speed, GT/s")
    link_width: int | None = Field(None, description="current PCIe link width, lanes")


class NvmeNamespace(Observed):
    name: str = Field(description="block device name, e.g. nvme0n1")
    nsid: int | None = None
    size_bytes: int | None = None
    logical_block_size: int | None = None
    physical_block_size: int | None = None
    wwid: str | None = None
    remote: bool = Field(description="fabric-attached (tcp, rdma, fc): not a local disk")
    holds_root: bool = Field(description="the root filesystem lives on this namespace")


class NvmeController(Observed):
    name: str = Field(description="controller name, e.g. nvme0")
    model: str | None = None
    serial: str | None = None
    firmware_rev: str | None = None
    transport: NvmeTransport | None = None
    remote: bool = False
    fabric_address: str | None = Field(None, description="traddr/trsvcid for fabric transports")
    subsystem_nqn: str | None = None
    pci: PciDevice | None = None
    namespaces: tuple[NvmeNamespace, ...] = ()


class Disk(Observed):
    """A whole local disk that is not an NVMe namespace (virtio, SATA/SAS, MMC, USB)."""

    name: str
    model: str | None = None
    vendor: str | None = None
    serial: str | None = None
    bus: str | None = Field(None, description="virtio, scsi, ata, usb, mmc, ...")
    size_bytes: int | None = None
    rotational: bool | None = None
    removable: bool | None = None
    holds_root: bool = False
    pci_address: str | None = None


class NvidiaDetails(_Record):
    """What nvidia-smi adds to an NVIDIA GPU."""

    name: str | None = None
    uuid: str | None = None
    memory_mib: int | None = None
    driver_version: str | None = None
    cuda_version: str | None = None
    mig_mode: str | None = Field(None, description="Enabled, Disabled, or N/A")


class Gpu(Observed):
    kind: GpuKind
    name: str = Field(description="best human name: nvidia-smi, else hwdb, else ids or compatible")
    vendor_id: str | None = None
    device_id: str | None = None
    vendor_name: str | None = None
    device_name: str | None = None
    driver: str | None = None
    pci: PciDevice | None = None
    platform_path: str | None = Field(None, description="sysfs path of a SoC GPU without PCI")
    compatible: str | None = Field(None, description="device-tree compatible of a SoC GPU")
    numa_node: int | None = None
    display_only: bool = Field(False, description="a BMC or emulated display adapter, not a compute GPU")
    drm_card: str | None = None
    drm_render: str | None = None
    nvidia: NvidiaDetails | None = None


class Nic(Observed):
    name: str
    kind: NicKind
    physical: bool
    bond_master: str | None = Field(None, description="the bond this interface is enslaved to")
    is_vf: bool = Field(False, description="an SR-IOV virtual function")
    driver: str | None = None
    pci_address: str | None = None
    numa_node: int | None = None
    mac: str | None = None
    mtu: int | None = None
    operstate: str | None = None
    speed_mbps: int | None = None
    duplex: str | None = None
    sriov_total_vfs: int | None = None
    sriov_num_vfs: int | None = None
    rdma_devices: tuple[str, ...] = ()
    addresses: tuple[str, ...] = ()
    default_route: bool = Field(False, description="holds a default route (IPv4 or IPv6)")


class System(Observed):
    machine_id: str | None = None
    vendor: str | None = None
    product: str | None = None
    serial: str | None = None
    board_vendor: str | None = None
    board_name: str | None = None
    cpu_model: str | None = None
    sockets: int | None = None
    cores: int | None = None
    threads: int | None = None
    memory_bytes: int | None = None
    kernel: str | None = None
    os_release: str | None = Field(None, description="PRETTY_NAME of os-release")
    boot_mode: BootMode | None = None
    architecture: str | None = None


class Tpm(Observed):
    """A TPM the kernel drives (agent/inventory/tpm.py)."""

    name: str = Field(description="tpm0, ...: /dev/<name>")
    version_major: int | None = Field(None, description="2 for a TPM 2.0")
    driver: str | None = None
    resource_manager: bool = Field(False, description="the kernel's /dev/tpmrmN is there")


class Inventory(_Record):
    schema_version: int = INVENTORY_SCHEMA
    scanned_at: datetime
    system: System = Field(default_factory=System)
    pci: tuple[PciDevice, ...] = ()
    nvme: tuple[NvmeController, ...] = ()
    disks: tuple[Disk, ...] = ()
    gpus: tuple[Gpu, ...] = ()
    nics: tuple[Nic, ...] = ()
    tpms: tuple[Tpm, ...] = ()
    problems: dict[str, str] = Field(default_factory=dict, description="collector -> why it could not run at all")


class InventorySummary(_Record):
    """What the inventory controller publishes as the ``inventory`` status section."""

    summary: str = Field(description="one line for humans")
    scanned_at: datetime
    gpus: int
    nvme_controllers: int
    nvme_local_namespaces: int
    nvme_local_bytes: int
    disks: int
    nics_physical: int
    fastest_nic_mbps: int | None
    unreadable_fields: int
    scans: int
    hotplug_events: int
    last_scan_seconds: float
    hotplug: Literal["udev", "kernel", "off", "unavailable"]
