"""The real collectors against a real recording of the VM tier's QEMU box
(tests/fixtures/recorded-qemu-vm.umockdev, made by ``make vm-record``: ``umockdev-record`` inside
the booted disk image, tests/vm/test_vm.py).

What the inventory says is checked against what QEMU was told (serials, namespaces, MACs, NIC
models, a TPM 2.0) and what ``ip`` and ``lsblk`` read in the VM at record time, stored beside the
recording in recorded-qemu-vm.facts.json; not against anything the collectors produced.
"""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.umockdev

NAME = "recorded-qemu-vm"  # the recording: the scanned and facts fixtures (conftest.py) read it


def test_nvme_controllers_and_namespaces_are_what_qemu_was_told(scanned: dict[str, Any], facts: dict[str, Any]) -> None:
    told = {c["serial"]: c for c in facts["qemu"]["nvme"]}
    got = {c["serial"]: c for c in scanned["nvme"]}
    assert sorted(got) == sorted(told)
    for serial, want in told.items():
        ctrl = got[serial]
        assert ctrl["transport"] == "pcie" and ctrl["pci"] is not None, ctrl
        sizes = sorted((ns["nsid"], ns["size_bytes"]) for ns in ctrl["namespaces"])
        assert sizes == [(i, mib << 20) for i, mib in enumerate(want["namespaces_mib"], start=1)], serial
        if want["nqn"]:  # QEMU 7.2 names the subsystem nqn.2019-08.org.qemu:<the nqn it was given>
            assert ctrl["subsystem_nqn"] == want["subsystem_nqn"] == f"nqn.2019-08.org.qemu:{want['nqn']}"
    lsblk = {b["name"]: b for b in facts["lsblk -J -b -d -o NAME,SIZE,TYPE,ROTA,SERIAL,SUBSYSTEMS"]}
    for ctrl in scanned["nvme"]:
        for ns in ctrl["namespaces"]:
            assert ns["size_bytes"] == lsblk[ns["name"]]["size"], ns["name"]


def test_nics_are_the_models_and_macs_qemu_was_given(scanned: dict[str, Any], facts: dict[str, Any]) -> None:
    told = {n["mac"]: n for n in facts["qemu"]["nics"]}
    physical = {n["mac"]: n for n in scanned["nics"] if n["physical"]}
    assert sorted(physical) == sorted(told)
    for mac, want in told.items():
        assert physical[mac]["driver"] == want["driver"], mac
    links = {i["ifname"]: i for i in facts["ip -j -d link"] if i["link_type"] != "loopback"}
    for nic in scanned["nics"]:
        assert (nic["mac"], nic["mtu"]) == (links[nic["name"]]["address"], links[nic["name"]]["mtu"]), nic["name"]


def test_the_root_disk_and_the_tpm(scanned: dict[str, Any], facts: dict[str, Any]) -> None:
    serials = {d["serial"]: d for d in scanned["disks"]}
    root = serials[facts["qemu"]["root_serial"]]
    assert root["bus"] == "virtio"
    (tpm,) = scanned["tpms"]
    assert facts["qemu"]["tpm"]["version"] == "2.0"
    assert (tpm["name"], tpm["version_major"], tpm["resource_manager"]) == ("tpm0", 2, True), tpm
    assert scanned["problems"] == {}
