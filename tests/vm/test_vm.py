"""The disk image as a real box under QEMU: enrollment, inventory, hotplug, reboot, a second box.

Two VMs, one at a time (each TCG boot is minutes on 2 cores), many checks in each:
- ``box_a``: seed as an SMBIOS type 11 credential; enrolls, node Ready, the inventory is what
  QEMU was told, an NVMe hotplug and unplug, a umockdev recording of its devices, a reboot.
- ``box_b``: the same image, seed as /edge-agent.toml on the ESP (the boot partition); its own
  identity.
The tests of a module share its VM and run in file order.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from guestview import agentctl_json, condition, status_text, wait_enrolled_and_ready, wait_for
from nspawnfigure import nspawn_enrolled_and_ready
from qemu import Hardware, Vm
from vmboxes import REPO, Vms
from vmregistrar import Registrar

pytestmark = [pytest.mark.vm, pytest.mark.slow]

K3S_DROPIN = "/etc/rancher/k3s/config.yaml.d/50-edge-agent.yaml"
HOTPLUG_SERIAL = "EDGENVMEHOT1"
FIXTURES = REPO / "tests" / "fixtures"
RECORDING = "recorded-qemu-vm"
RECORD_PATHS = " ".join(
    f"/sys/{d}/*" for d in ("class/net", "block", "bus/pci/devices", "class/nvme", "class/tpm", "class/tpmrm")
)


class Box:
    def __init__(self, vm: Vm) -> None:
        self.vm = vm
        self.status: dict[str, Any] = {}
        self.first_identity: dict[str, str] = {}  # read once enrolled, for comparing with other boxes
        self.node_ready_s = 0.0  # qemu start -> node Ready of its first boot

    def inventory(self) -> dict[str, Any]:
        doc = agentctl_json(self.vm, "inventory")
        assert doc is not None, status_text(self.vm)
        return doc

    def identity(self) -> dict[str, str]:
        key = self.vm.sh("cat", "/var/lib/edge-agent/identity/key.pem").stdout
        return {
            "machine_id": self.vm.sh("cat", "/etc/machine-id").stdout.strip(),
            "key_sha256": hashlib.sha256(key.encode()).hexdigest() if key else "",
            "hostname": self.vm.sh("hostname").stdout.strip(),
        }


def registrar_nodes(registrar: Registrar, site: str) -> list[dict[str, Any]]:
    return [n for n in registrar.nodes() if n["site"] == site]


@pytest.fixture(scope="module")
def box_a(vms: Vms, registrar: Registrar) -> Box:
    vm = vms.boot("box-a", credential=registrar.seed("vm-a"))
    box = Box(vm)
    box.status, tl = wait_enrolled_and_ready(vm)
    box.first_identity = box.identity()
    print("\n" + tl.line("box-a, TCG, seed as SMBIOS credential"))
    return box


def test_box_a_enrolls_from_the_smbios_credential(box_a: Box, registrar: Registrar) -> None:
    assert condition(box_a.status, "Enrolled") == "True" and condition(box_a.status, "NodeReady") == "True"
    (node,) = registrar_nodes(registrar, "vm-a")
    assert node["state"] == "approved", node
    # systemd 252 imported the SMBIOS type 11 string; the unit got it through LoadCredential=
    creds = box_a.vm.sh("ls", "/run/credentials/@system").stdout.split()
    assert "edge-agent.seed" in creds
    kept = box_a.vm.sh("cat", "/var/lib/edge-agent/seed.toml").stdout
    assert 'site = "vm-a"' in kept and "bootstrap_token" not in kept  # enrolled: token forgotten


def test_first_boot_asked_nothing_and_the_root_grew(box_a: Box) -> None:
    vm = box_a.vm
    # no console input was ever given (stdin is /dev/null, the console a file): the boot above
    # reaching enrollment is the proof; systemd-firstboot ran and found everything preset
    assert vm.sh("systemctl", "show", "-P", "Result", "systemd-firstboot.service").stdout.strip() == "success"
    assert vm.sh("systemctl", "is-system-running").stdout.strip() == "running"
    root_bytes = int(vm.sh("findmnt", "-n", "-b", "-o", "SIZE", "/").stdout.strip())
    image_bytes = vm.disk_image.stat().st_size
    assert root_bytes > image_bytes, (root_bytes, image_bytes)  # grew into the 4 GiB disk at first boot
    boot = vm.sh("findmnt", "-n", "-o", "FSTYPE,SOURCE", "/boot").stdout.split()
    assert boot[0] == "vfat", boot  # the ESP is the boot partition


def test_inventory_is_what_qemu_was_told(box_a: Box) -> None:
    hw: Hardware = box_a.vm.hw
    doc = box_a.inventory()
    inv = doc["inventory"]
    ctrls = {c["serial"]: c for c in inv["nvme"]}
    assert sorted(ctrls) == sorted(c.serial for c in hw.nvme)
    for want in hw.nvme:
        got = ctrls[want.serial]
        assert got["transport"] == "pcie"
        sizes = sorted((ns["nsid"], ns["size_bytes"]) for ns in got["namespaces"])
        assert sizes == [(i, mib << 20) for i, mib in enumerate(want.namespaces_mib, start=1)], got
        if want.nqn:
            assert got["subsystem_nqn"] == want.subsystem_nqn
    (root,) = [d for d in inv["disks"] if d["holds_root"]]
    assert (root["serial"], root["bus"]) == (hw.root_serial, "virtio")
    nics = {n["mac"]: n for n in inv["nics"] if n["physical"]}
    assert sorted(nics) == sorted(n.mac for n in hw.nics)
    for want_nic in hw.nics:
        assert nics[want_nic.mac]["driver"] == want_nic.driver
    assert nics["52:54:00:ed:00:02"]["speed_mbps"] == 1000  # e1000e reports its link speed
    (tpm,) = inv["tpms"]
    assert (tpm["name"], tpm["version_major"], tpm["resource_manager"]) == ("tpm0", 2, True), tpm
    assert doc["labels"]["edge-agent.io/nvme.count"] == str(len(hw.nvme))


def _labels_file(vm: Vm) -> str:
    return vm.sh("cat", K3S_DROPIN).stdout


def test_nvme_hotplug_shows_in_agentctl_and_node_labels(box_a: Box) -> None:
    vm = box_a.vm
    before = len(vm.hw.nvme)
    img = vm.dir / "hotplug.img"
    with img.open("wb") as f:
        f.truncate(64 << 20)
    vm.qmp("blockdev-add", **{"node-name": "hp0", "driver": "raw", "file": {"driver": "file", "filename": str(img)}})
    t0 = time.monotonic()
    vm.qmp("device_add", driver="nvme", id="hpnvme", bus="rp1", serial=HOTPLUG_SERIAL, drive="hp0")

    def plugged() -> dict[str, Any] | None:
        doc = box_a.inventory()
        serials = {c["serial"] for c in doc["inventory"]["nvme"]}
        return doc if HOTPLUG_SERIAL in serials else None

    doc = wait_for(
        "the hotplugged NVMe in agentctl inventory", plugged, 60, lambda: json.dumps(box_a.inventory())[:3000]
    )
    print(f"\n[hotplug] device_add -> agentctl inventory shows it: {time.monotonic() - t0:.1f}s")
    assert doc["labels"]["edge-agent.io/nvme.count"] == str(before + 1)
    wait_for(
        "the node labels (k3s drop-in) to count the hotplugged NVMe",
        lambda: f"edge-agent.io/nvme.count={before + 1}" in _labels_file(vm),
        90,
        lambda: _labels_file(vm),
    )

    vm.qmp("device_del", id="hpnvme")

    def unplugged() -> dict[str, Any] | None:
        doc = box_a.inventory()
        serials = {c["serial"] for c in doc["inventory"]["nvme"]}
        return doc if HOTPLUG_SERIAL not in serials else None

    doc = wait_for("the unplugged NVMe gone from agentctl inventory", unplugged, 60, lambda: "still listed")
    assert doc["labels"]["edge-agent.io/nvme.count"] == str(before)
    wait_for(
        "the node labels to drop the unplugged NVMe",
        lambda: f"edge-agent.io/nvme.count={before}" in _labels_file(vm),
        90,
        lambda: _labels_file(vm),
    )
    vm.qmp("blockdev-del", **{"node-name": "hp0"})


def test_umockdev_recording_of_the_vm(box_a: Box) -> None:
    """Record the VM's devices for the umockdev tier (tests/inventory/test_recorded.py), with
    what QEMU was told and what other tools read as its facts."""
    vm = box_a.vm
    t0 = time.monotonic()
    rec = vm.sh("sh", "-c", f"umockdev-record {RECORD_PATHS}", timeout=300)
    assert rec.returncode == 0, rec.stderr
    print(f"\n[umockdev] umockdev-record in the VM: {time.monotonic() - t0:.1f}s, {len(rec.stdout)} bytes")
    assert f"S: {HOTPLUG_SERIAL}" not in rec.stdout  # taken after the unplug
    hw = vm.hw
    facts = {
        "what": f"facts about the QEMU VM at the time {RECORDING}.umockdev was recorded: what QEMU was told, "
        "and what other tools than the agent's collectors read",
        "recorded": f"{time.strftime('%Y-%m-%d')}, QEMU q35 TCG, kernel {vm.sh('uname', '-r').stdout.strip()}",
        "record_command": f"umockdev-record {RECORD_PATHS}",
        "qemu": {
            "root_serial": hw.root_serial,
            "nvme": [
                {
                    "serial": c.serial,
                    "namespaces_mib": list(c.namespaces_mib),
                    "nqn": c.nqn,
                    "subsystem_nqn": c.subsystem_nqn,
                }
                for c in hw.nvme
            ],
            "nics": [{"model": n.model, "mac": n.mac, "driver": n.driver} for n in hw.nics],
            "tpm": {"device": "tpm-tis", "version": "2.0"},
        },
        "ip -j -d link": json.loads(vm.sh("ip", "-j", "-d", "link").stdout),
        "lsblk -J -b -d -o NAME,SIZE,TYPE,ROTA,SERIAL,SUBSYSTEMS": json.loads(
            vm.sh("lsblk", "-J", "-b", "-d", "-o", "NAME,SIZE,TYPE,ROTA,SERIAL,SUBSYSTEMS").stdout
        )["blockdevices"],
    }
    out = vm.dir / f"{RECORDING}.umockdev"
    out.write_text(rec.stdout)
    (vm.dir / f"{RECORDING}.facts.json").write_text(json.dumps(facts, indent=1) + "\n")
    for c in hw.nvme:
        assert f"A: serial={c.serial}" in rec.stdout, c.serial
    if os.environ.get("EDGE_AGENT_VM_RECORD") == "1":  # make vm-record: refresh the fixture
        shutil.copyfile(out, FIXTURES / out.name)
        shutil.copyfile(vm.dir / f"{RECORDING}.facts.json", FIXTURES / f"{RECORDING}.facts.json")


def test_reboot_keeps_the_identity(box_a: Box, registrar: Registrar) -> None:
    vm = box_a.vm
    before = box_a.identity()
    assert before == box_a.first_identity
    assert before["key_sha256"] and len(before["machine_id"]) == 32
    boot_id = vm.sh("cat", "/proc/sys/kernel/random/boot_id").stdout.strip()
    # answered before it happens: the channel goes down with the guest
    vm.sh("systemd-run", "--on-active=2", "--timer-property=AccuracySec=100ms", "systemctl", "reboot")
    vm.wait_powered_off(180)  # -no-reboot: the reset ends QEMU, which starts again on the same disk, NVRAM, TPM
    vm.start()
    _doc, tl = wait_enrolled_and_ready(vm)
    print("\n" + tl.line("box-a after `systemctl reboot` (a new QEMU on the same disk)"))
    assert vm.sh("cat", "/proc/sys/kernel/random/boot_id").stdout.strip() != boot_id  # it did reboot
    assert box_a.identity() == before
    assert vm.sh("systemctl", "show", "-P", "ConditionResult", "systemd-firstboot.service").stdout.strip() == "no"
    (node,) = registrar_nodes(registrar, "vm-a")  # the same node, not a second enrollment
    assert node["state"] == "approved"


@pytest.fixture(scope="module")
def box_b(box_a: Box, vms: Vms, registrar: Registrar) -> Box:
    """Booted after box_a is done (vms.boot stops the running VM first)."""
    vm = vms.boot("box-b", boot_seed=registrar.seed("vm-b"))
    box = Box(vm)
    box.status, tl = wait_enrolled_and_ready(vm)
    box.node_ready_s = tl.node_ready
    print("\n" + tl.line("box-b, TCG, seed on the boot partition"))
    return box


def test_second_box_from_the_same_image_gets_its_own_identity(box_a: Box, box_b: Box, registrar: Registrar) -> None:
    a = box_a.first_identity
    b = box_b.identity()
    assert b["machine_id"] != a["machine_id"] and b["key_sha256"] != a["key_sha256"]
    (node_a,) = registrar_nodes(registrar, "vm-a")
    (node_b,) = registrar_nodes(registrar, "vm-b")
    assert node_a["node_id"] != node_b["node_id"] and node_a["key_fingerprint"] != node_b["key_fingerprint"]
    assert node_b["state"] == "approved"


def test_boot_partition_seed_is_taken_off_the_esp(box_b: Box) -> None:
    vm = box_b.vm
    assert vm.sh("test", "-e", "/boot/edge-agent.toml").returncode == 1  # the plaintext token is gone
    kept = vm.sh("stat", "-c", "%a", "/var/lib/edge-agent/seed.toml").stdout.strip()
    assert kept == "600"
    assert 'site = "vm-b"' in vm.sh("cat", "/var/lib/edge-agent/seed.toml").stdout
    creds = vm.sh("ls", "/run/credentials/@system").stdout.split()
    assert "edge-agent.seed" not in creds  # this box had no credential: the ESP file did it


HARDWARE_DROPIN = """\
# the data port (e1000e, on QEMU's 10.0.3.0/24) is the node's network; the blank namespaces of the
# second controller become ext4 volumes for local-path
[network]
selectors = [{ cidr = "10.0.3.0/24" }]

[storage]
enabled = true
mode = "filesystem"
filesystem = "ext4"
select = { serial = "EDGENVME0002" }
"""


def test_the_hardware_decides_the_node_address_and_prepares_blank_nvme(box_b: Box) -> None:
    """Issue 12 on real drivers: two NIC models, QEMU's blank NVMe namespaces, a real kernel."""
    vm = box_b.vm
    nics = {n["driver"]: n["name"] for n in box_b.inventory()["inventory"]["nics"] if n["physical"]}
    untouched = vm.sh("sh", "-c", "blkid -p /dev/disk/by-id/nvme-*EDGENVME0001* || true").stdout
    dropin = "/etc/edge-agent/agent.toml.d/60-hw.toml"
    assert vm.sh("mkdir", "-p", "/etc/edge-agent/agent.toml.d").returncode == 0
    assert vm.sh("sh", "-c", f"cat > {dropin} <<'EOF'\n{HARDWARE_DROPIN}EOF").returncode == 0
    assert vm.sh("systemctl", "reload", "edge-agent").returncode == 0

    def decided() -> dict[str, Any] | None:
        doc = agentctl_json(vm, "status")
        if doc is None:
            return None
        sections = doc["sections"]
        storage = sections.get("storage") or {}
        states = [ns["state"] for ns in storage.get("namespaces", [])]
        chosen = (sections.get("network") or {}).get("state") == "chosen"
        return doc if chosen and states and all(s != "failed" for s in states) and "prepared" in states else None

    doc = wait_for("the address chosen and the volumes prepared", decided, 300, lambda: status_text(vm))
    chosen = doc["sections"]["network"]["chosen"]
    assert (chosen["interface"], chosen["internal"]) == (nics["e1000e"], ["10.0.3.15"]), chosen
    prepared = [ns for ns in doc["sections"]["storage"]["namespaces"] if ns["state"] == "prepared"]
    assert sorted((ns["serial"], ns["nsid"]) for ns in prepared) == [("EDGENVME0002", 1), ("EDGENVME0002", 2)]
    for ns in prepared:
        where = f"/var/lib/edge-agent/volumes/EDGENVME0002-{ns['nsid']}"
        assert vm.sh("findmnt", "-n", "-o", "FSTYPE", where).stdout.strip() == "ext4"
        assert 'LABEL="edge-agent"' in vm.sh("blkid", ns["device"]).stdout
    # the other controller was not selected: not a byte written to it
    assert vm.sh("sh", "-c", "blkid -p /dev/disk/by-id/nvme-*EDGENVME0001* || true").stdout == untouched

    def node_ip() -> list[str] | None:  # the runtime renders on its next pass after the storage pass
        doc = yaml.safe_load(vm.sh("cat", "/etc/rancher/k3s/config.yaml").stdout)  # read by PyYAML on the host
        return doc.get("node-ip") if isinstance(doc, dict) else None

    assert wait_for("node-ip in config.yaml", node_ip, 120, lambda: status_text(vm)) == ["10.0.3.15"]
    text = status_text(vm)
    assert f"10.0.3.15 on {nics['e1000e']}, by network.selectors.0 (cidr=10.0.3.0/24)" in text


def test_boot_figures_beside_nspawn(box_b: Box, vms: Vms, workdir: Path, tree: Path) -> None:
    """The nspawn figure of the same tree, measured in this run, beside the VM boots printed above."""
    for vm in vms.made:  # one thing at a time on 2 cores
        vm.stop()
    took = nspawn_enrolled_and_ready(tree, workdir, REPO)
    print(f"\n[boot] beside it: nspawn, same tree, host kernel: container start -> enrolled and node Ready {took:.1f}s")
    print(f"[boot] VM box-b start -> node Ready / nspawn: {box_b.node_ready_s / took:.1f}x")
    assert took > 0
