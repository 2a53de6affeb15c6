"""node_labels: a pure function of the inventory, NFD format, valid label values whatever the input."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from agent.inventory.labels import label_value, node_labels
from agent.model.inventory import Disk, Gpu, Inventory, Nic, NvmeController, NvmeNamespace, PciDevice

VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
NOW = datetime(2026, 1, 1, tzinfo=UTC)


@given(st.text())
def test_any_text_becomes_a_valid_label_value(text: str) -> None:
    value = label_value(text)
    assert len(value) <= 63
    assert VALUE.match(value), value


def test_label_value_keeps_what_it_can() -> None:
    assert label_value("NVIDIA H100 80GB HBM3") == "NVIDIA-H100-80GB-HBM3"
    assert label_value("[GH100] (rev a1)!") == "GH100-rev-a1"
    assert label_value("Ünïcode GPU™") == "Unicode-GPUTM"
    assert label_value("x" * 62 + "-.y") == "x" * 62


def gpu(name: str, vendor: str = "10de", cls: str = "030200", display_only: bool = False) -> Gpu:
    pci = PciDevice(address=f"0000:{len(name):02x}:00.0", class_code=cls, vendor_id=vendor)
    return Gpu(kind="pci", name=name, vendor_id=vendor, pci=pci, display_only=display_only)


def test_empty_box_has_counts_only() -> None:
    assert node_labels(Inventory(scanned_at=NOW)) == {
        "edge-agent.io/gpu.count": "0",
        "edge-agent.io/nvme.count": "0",
        "edge-agent.io/nvme.local-capacity-gb": "0",
    }


def test_nfd_pci_labels_only_for_default_classes() -> None:
    pci = (
        PciDevice(address="0000:01:00.0", class_code="030200", vendor_id="10de"),
        PciDevice(address="0000:02:00.0", class_code="0b4000", vendor_id="1234"),
        PciDevice(address="0000:03:00.0", class_code="120000", vendor_id="1da3"),
        PciDevice(address="0000:04:00.0", class_code="020000", vendor_id="15b3"),  # NIC: not labelled
        PciDevice(address="0000:05:00.0", class_code=None, vendor_id="8086"),  # unreadable class
    )
    labels = node_labels(Inventory(scanned_at=NOW, pci=pci))
    nfd = sorted(k for k in labels if k.startswith("feature.node.kubernetes.io/pci-"))
    assert nfd == [
        "feature.node.kubernetes.io/pci-0302_10de.present",
        "feature.node.kubernetes.io/pci-0b40_1234.present",
        "feature.node.kubernetes.io/pci-10de.present",
        "feature.node.kubernetes.io/pci-1200_1da3.present",
        "feature.node.kubernetes.io/pci-1234.present",
        "feature.node.kubernetes.io/pci-1da3.present",
    ]


def test_gpu_count_and_model_skip_bmc_display() -> None:
    inv = Inventory(
        scanned_at=NOW,
        gpus=(gpu("ASPEED Graphics Family", "1a03", "030000", True), gpu("NVIDIA L4"), gpu("NVIDIA L4")),
    )
    labels = node_labels(inv)
    assert labels["edge-agent.io/gpu.count"] == "2"
    assert labels["edge-agent.io/gpu.model"] == "NVIDIA-L4"


def test_storage_and_network_labels() -> None:
    local = NvmeController(
        name="nvme0",
        transport="pcie",
        namespaces=(NvmeNamespace(name="nvme0n1", size_bytes=2 * 10**12, remote=False, holds_root=True),),
    )
    remote = NvmeController(
        name="nvme1",
        transport="tcp",
        remote=True,
        namespaces=(NvmeNamespace(name="nvme1n1", size_bytes=9 * 10**12, remote=True, holds_root=False),),
    )
    nics = (
        Nic(name="eth0", kind="physical", physical=True, speed_mbps=25000, sriov_total_vfs=64, sriov_num_vfs=0),
        Nic(name="eth1", kind="physical", physical=True, speed_mbps=None),
        Nic(name="br0", kind="bridge", physical=False, speed_mbps=None),
    )
    labels = node_labels(Inventory(scanned_at=NOW, nvme=(local, remote), nics=nics))
    assert labels["feature.node.kubernetes.io/storage-nonrotationaldisk"] == "true"
    assert labels["feature.node.kubernetes.io/network-sriov.capable"] == "true"
    assert "feature.node.kubernetes.io/network-sriov.configured" not in labels
    assert labels["edge-agent.io/nvme.count"] == "1"
    assert labels["edge-agent.io/nvme.local-capacity-gb"] == "2000"
    assert labels["edge-agent.io/nic.max-speed-mbps"] == "25000"


def test_only_rotational_disks_are_not_nonrotational() -> None:
    hdd = Disk(name="sda", rotational=True)
    assert "feature.node.kubernetes.io/storage-nonrotationaldisk" not in node_labels(
        Inventory(scanned_at=NOW, disks=(hdd,))
    )
    ssd = Disk(name="sdb", rotational=False)
    assert (
        node_labels(Inventory(scanned_at=NOW, disks=(hdd, ssd)))["feature.node.kubernetes.io/storage-nonrotationaldisk"]
        == "true"
    )
