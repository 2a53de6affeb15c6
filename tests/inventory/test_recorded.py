"""The real collectors against real recordings: ``umockdev-record`` of real machines' PCI functions,
block devices and net interfaces (tests/fixtures/recorded-*.umockdev):

- ``recorded-firecracker-vm``: a Firecracker VM; its facts are what ``lspci -mm -n -D``,
  ``ip -j -d link`` and ``lsblk -J -b`` read at record time.
- ``recorded-qemu-vm``: the VM tier's QEMU box (made by ``make vm-record``: ``umockdev-record``
  inside the booted disk image, tests/vm/test_vm.py); its facts are what QEMU was told (serials,
  namespaces, MACs, NIC models, a TPM 2.0) and what ``ip`` and ``lsblk`` read in the VM.

What the inventory says is checked against those facts, stored beside each recording in
``<recording>.facts.json``, never against anything the collectors produced. What every recording
must satisfy is one test parametrised over all of them; what only one machine has is tested on it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from .umockbed import FIXTURES, run_recording

pytestmark = pytest.mark.umockdev

FIRECRACKER = "recorded-firecracker-vm"
QEMU = "recorded-qemu-vm"


def on(*names: str) -> pytest.MarkDecorator:
    """Run the test on the scan of each named recording (the ``recording`` fixture)."""
    return pytest.mark.parametrize("recording", names, indirect=True)


@dataclass(frozen=True)
class Recording:
    scanned: dict[str, Any]  # the inventory the real collectors made of the recording
    facts: dict[str, Any]  # what other tools said about the same machine at record time


@pytest.fixture(scope="module")
def recording(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Recording:
    """``recordscan.py`` under ``umockdev-run -d`` on tests/fixtures/<name>.umockdev (once per recording)."""
    name: str = request.param
    scanned = run_recording(name, "recordscan.py", tmp_path_factory.mktemp(name))
    return Recording(scanned, json.loads((FIXTURES / f"{name}.facts.json").read_text()))


@on(FIRECRACKER, QEMU)
def test_nics_match_ip_link(recording: Recording) -> None:
    links = {i["ifname"]: i for i in recording.facts["ip -j -d link"] if i["link_type"] != "loopback"}
    nics = {n["name"]: n for n in recording.scanned["nics"]}
    assert sorted(nics) == sorted(links)
    for name, link in links.items():
        nic = nics[name]
        assert (nic["mac"], nic["mtu"]) == (link["address"], link["mtu"]), name
        assert nic["physical"] is (link.get("parentbus") is not None), name


@on(FIRECRACKER, QEMU)
def test_the_scan_of_a_recording_has_no_problems(recording: Recording) -> None:
    assert recording.scanned["problems"] == {}


@on(FIRECRACKER)
def test_every_pci_function_lspci_saw_with_its_ids(recording: Recording) -> None:
    want = {p["slot"]: (p["class"], p["vendor"], p["device"]) for p in recording.facts["lspci -mm -n -D"]}
    got = {p["address"]: (p["class_code"][:4], p["vendor_id"], p["device_id"]) for p in recording.scanned["pci"]}
    assert got == want


@on(FIRECRACKER)
def test_eth0_is_virtio_net_on_the_ethernet_function(recording: Recording) -> None:
    eth0 = next(n for n in recording.scanned["nics"] if n["name"] == "eth0")
    ethernet = [p["slot"] for p in recording.facts["lspci -mm -n -D"] if p["class"] == "0200"]
    assert eth0["driver"] == "virtio_net" and [eth0["pci_address"]] == ethernet


@on(FIRECRACKER)
def test_disks_are_the_block_devices_on_a_bus(recording: Recording) -> None:
    blocks = recording.facts["lsblk -J -b -d -o NAME,SIZE,TYPE,ROTA,SUBSYSTEMS"]
    on_bus = {b["name"]: b for b in blocks if b["type"] == "disk" and b["subsystems"] != "block"}
    disks = {d["name"]: d for d in recording.scanned["disks"]}
    assert sorted(disks) == sorted(on_bus)  # zram and loop devices are not disks of the box
    for name, b in on_bus.items():
        assert (disks[name]["size_bytes"], disks[name]["rotational"]) == (b["size"], b["rota"]), name
        assert disks[name]["bus"] == b["subsystems"].split(":")[1]


@on(FIRECRACKER)
def test_no_gpu_or_nvme_where_lspci_saw_none(recording: Recording) -> None:
    classes = {p["class"] for p in recording.facts["lspci -mm -n -D"]}
    assert not any(c.startswith("03") for c in classes) and "0108" not in classes
    assert recording.scanned["gpus"] == [] and recording.scanned["nvme"] == []


@on(QEMU)
def test_nvme_controllers_and_namespaces_are_what_qemu_was_told(recording: Recording) -> None:
    told = {c["serial"]: c for c in recording.facts["qemu"]["nvme"]}
    got = {c["serial"]: c for c in recording.scanned["nvme"]}
    assert sorted(got) == sorted(told)
    for serial, want in told.items():
        ctrl = got[serial]
        assert ctrl["transport"] == "pcie" and ctrl["pci"] is not None, ctrl
        sizes = sorted((ns["nsid"], ns["size_bytes"]) for ns in ctrl["namespaces"])
        assert sizes == [(i, mib << 20) for i, mib in enumerate(want["namespaces_mib"], start=1)], serial
        if want["nqn"]:  # QEMU 7.2 names the subsystem nqn.2019-08.org.qemu:<the nqn it was given>
            assert ctrl["subsystem_nqn"] == want["subsystem_nqn"] == f"nqn.2019-08.org.qemu:{want['nqn']}"
    lsblk = {b["name"]: b for b in recording.facts["lsblk -J -b -d -o NAME,SIZE,TYPE,ROTA,SERIAL,SUBSYSTEMS"]}
    for ctrl in recording.scanned["nvme"]:
        for ns in ctrl["namespaces"]:
            assert ns["size_bytes"] == lsblk[ns["name"]]["size"], ns["name"]


@on(QEMU)
def test_nics_are_the_models_and_macs_qemu_was_given(recording: Recording) -> None:
    told = {n["mac"]: n for n in recording.facts["qemu"]["nics"]}
    physical = {n["mac"]: n for n in recording.scanned["nics"] if n["physical"]}
    assert sorted(physical) == sorted(told)
    for mac, want in told.items():
        assert physical[mac]["driver"] == want["driver"], mac


@on(QEMU)
def test_the_root_disk_and_the_tpm(recording: Recording) -> None:
    serials = {d["serial"]: d for d in recording.scanned["disks"]}
    root = serials[recording.facts["qemu"]["root_serial"]]
    assert root["bus"] == "virtio"
    (tpm,) = recording.scanned["tpms"]
    assert recording.facts["qemu"]["tpm"]["version"] == "2.0"
    assert (tpm["name"], tpm["version_major"], tpm["resource_manager"]) == ("tpm0", 2, True), tpm
