"""The inventory of the machine the tests run on, checked against sysfs read independently.

On the development VM (virtio disk and NIC, no GPU, no NVMe) this says: the
virtio disk holding / is found, the virtio NIC is found, and there is no GPU.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent.inventory.collect import Collector
from agent.inventory.scan import Scanner
from agent.model.inventory import Inventory
from agent.sysexec import ProcessRunner

SYS = Path("/sys")


@pytest.fixture(scope="module")
def inv() -> Inventory:
    return Scanner(Collector(), ProcessRunner()).scan_hardware()


def real_disks() -> set[str]:
    out = set()
    for name in os.listdir(SYS / "class/block"):
        target = os.path.realpath(SYS / "class/block" / name)
        if "/devices/virtual/" not in target and (Path(target) / "partition").exists() is False:
            out.add(name)
    return {n for n in out if not n.startswith("nvme") or "c" not in n[4:]}


def test_disks_and_namespaces_match_sysfs(inv: Inventory) -> None:
    found = {d.name for d in inv.disks} | {ns.name for c in inv.nvme for ns in c.namespaces}
    assert found == real_disks()
    assert inv.problems == {}


def test_root_disk_is_found(inv: Inventory) -> None:
    holders = [d.name for d in inv.disks if d.holds_root]
    holders += [ns.name for c in inv.nvme for ns in c.namespaces if ns.holds_root]
    if os.major(os.stat("/").st_dev) == 0:
        pytest.skip("root is on a virtual filesystem (overlay, tmpfs): no disk holds it")
    assert len(holders) == 1


def test_physical_nics_match_sysfs(inv: Inventory) -> None:
    physical = {n for n in os.listdir(SYS / "class/net") if (SYS / "class/net" / n / "device").exists()}
    assert {n.name for n in inv.nics if n.physical} == physical


def test_gpus_match_pci_display_class(inv: Inventory) -> None:
    display = set()
    for addr in os.listdir(SYS / "bus/pci/devices"):
        cls = (SYS / "bus/pci/devices" / addr / "class").read_text().strip()
        if cls[:6] in ("0x0300", "0x0302", "0x0380"):
            display.add(addr)
    assert {g.pci.address for g in inv.gpus if g.pci} == display


def test_system_facts(inv: Inventory) -> None:
    s = inv.system
    assert s.kernel == os.uname().release and s.architecture == os.uname().machine
    assert s.threads == os.cpu_count()
    assert s.memory_bytes and s.memory_bytes > 0
    assert s.cpu_model
    assert s.boot_mode == ("uefi" if (SYS / "firmware/efi").is_dir() else "bios")


@pytest.mark.skipif(not (SYS / "bus/virtio/devices").is_dir(), reason="not a virtio VM")
def test_virtio_vm_development_box(inv: Inventory) -> None:
    """The development VM: a virtio disk holding /, a virtio NIC, no GPU and no NVMe."""
    virtio_disks = [d for d in inv.disks if d.bus == "virtio"]
    assert virtio_disks and any(d.holds_root for d in virtio_disks)
    assert all(d.size_bytes and d.pci_address for d in virtio_disks)
    virtio_nics = [n for n in inv.nics if n.driver == "virtio_net"]
    assert virtio_nics and all(n.physical and n.mac and n.mtu for n in virtio_nics)
    assert inv.gpus == ()
    assert inv.nvme == ()


def test_a_failing_collector_does_not_stop_the_scan() -> None:
    def broken() -> dict[str, tuple[str, ...]]:
        raise RuntimeError("netlink unavailable")

    inv = Scanner(Collector(addresses=broken), ProcessRunner()).scan_hardware()
    assert inv.problems == {"nics": "collector failed: RuntimeError: netlink unavailable"}
    assert inv.system.kernel == os.uname().release  # the rest of the scan is there
    assert all(n.addresses == () for n in inv.nics)
