"""The real collectors against a real recording: ``umockdev-record`` of a Firecracker VM's PCI
functions, block devices and net interfaces (tests/fixtures/recorded-firecracker-vm.umockdev).

What the inventory says is checked against facts read at record time by other tools
(``lspci -mm -n -D``, ``ip -j -d link``, ``lsblk -J -b``), stored beside the recording in
recorded-firecracker-vm.facts.json — not against anything the collectors produced.
"""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.umockdev

NAME = "recorded-firecracker-vm"  # the recording: the scanned and facts fixtures (conftest.py) read it


def test_every_pci_function_lspci_saw_with_its_ids(scanned: dict[str, Any], facts: dict[str, Any]) -> None:
    want = {p["slot"]: (p["class"], p["vendor"], p["device"]) for p in facts["lspci -mm -n -D"]}
    got = {p["address"]: (p["class_code"][:4], p["vendor_id"], p["device_id"]) for p in scanned["pci"]}
    assert got == want
    assert scanned["problems"] == {}


def test_nics_match_ip_link(scanned: dict[str, Any], facts: dict[str, Any]) -> None:
    links = {i["ifname"]: i for i in facts["ip -j -d link"] if i["link_type"] != "loopback"}
    nics = {n["name"]: n for n in scanned["nics"]}
    assert sorted(nics) == sorted(links)
    for name, link in links.items():
        nic = nics[name]
        assert (nic["mac"], nic["mtu"]) == (link["address"], link["mtu"]), name
        assert nic["physical"] is (link.get("parentbus") is not None), name
    eth0 = nics["eth0"]  # virtio-net on the PCI function lspci lists as an Ethernet controller (0200)
    ethernet = [p["slot"] for p in facts["lspci -mm -n -D"] if p["class"] == "0200"]
    assert eth0["driver"] == "virtio_net" and [eth0["pci_address"]] == ethernet


def test_disks_are_the_block_devices_on_a_bus(scanned: dict[str, Any], facts: dict[str, Any]) -> None:
    blocks = facts["lsblk -J -b -d -o NAME,SIZE,TYPE,ROTA,SUBSYSTEMS"]
    on_bus = {b["name"]: b for b in blocks if b["type"] == "disk" and b["subsystems"] != "block"}
    disks = {d["name"]: d for d in scanned["disks"]}
    assert sorted(disks) == sorted(on_bus)  # zram and loop devices are not disks of the box
    for name, b in on_bus.items():
        assert (disks[name]["size_bytes"], disks[name]["rotational"]) == (b["size"], b["rota"]), name
        assert disks[name]["bus"] == b["subsystems"].split(":")[1]


def test_no_gpu_or_nvme_where_lspci_saw_none(scanned: dict[str, Any], facts: dict[str, Any]) -> None:
    classes = {p["class"] for p in facts["lspci -mm -n -D"]}
    assert not any(c.startswith("03") for c in classes) and "0108" not in classes
    assert scanned["gpus"] == [] and scanned["nvme"] == []
