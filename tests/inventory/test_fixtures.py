"""The real collectors against the generated device trees of trees.py (umockdev)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from .umockbed import run_hwbed

pytestmark = pytest.mark.umockdev
NFD = "feature.node.kubernetes.io/"


def inv(scans: dict[str, Any], name: str) -> dict[str, Any]:
    return scans[name]["inventory"]  # type: ignore[no-any-return]


def by_name(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {i["name"]: i for i in items}


def test_gpu_server_gpus_enriched_by_nvidia_smi(scans: dict[str, Any]) -> None:
    gpus = inv(scans, "gpu-server:ok")["gpus"]
    nvidia = [g for g in gpus if g["vendor_id"] == "10de"]
    assert [g["pci"]["address"] for g in nvidia] == ["0000:18:00.0", "0000:2a:00.0", "0000:9a:00.0", "0000:ab:00.0"]
    first = nvidia[0]
    assert first["name"] == "NVIDIA H100 80GB HBM3"
    assert first["device_id"] == "2330" and first["driver"] == "nvidia"
    assert first["pci"]["class_code"] == "030200"
    assert first["pci"]["link_speed_gts"] == 32.0 and first["pci"]["link_width"] == 16
    assert [g["numa_node"] for g in nvidia] == [0, 0, 1, 1]
    assert first["nvidia"] == {
        "name": "NVIDIA H100 80GB HBM3",
        "uuid": "GPU-6a1b2c3d-0000-1111-2222-333344445555",
        "memory_mib": 81559,
        "driver_version": "550.90.07",
        "cuda_version": "12.4",
        "mig_mode": "Enabled",
    }
    assert nvidia[3]["nvidia"]["mig_mode"] is None  # N/A
    bmc = [g for g in gpus if g["vendor_id"] == "1a03"]
    assert len(bmc) == 1 and bmc[0]["display_only"] and bmc[0]["drm_card"] == "card0"
    assert bmc[0]["drm_render"] is None


def test_gpu_server_nvme_namespaces_and_root(scans: dict[str, Any]) -> None:
    nvme = by_name(inv(scans, "gpu-server:ok")["nvme"])
    assert sorted(nvme) == ["nvme0", "nvme1", "nvme2"]
    assert [len(nvme[c]["namespaces"]) for c in ("nvme0", "nvme1", "nvme2")] == [1, 2, 3]
    n0 = nvme["nvme0"]
    assert n0["model"] == "SAMSUNG MZQL23T8HCLS-00A07"  # padding stripped
    assert n0["serial"] == "S64HNE0T512345" and n0["firmware_rev"] == "GDC5602Q"
    assert n0["transport"] == "pcie" and not n0["remote"]
    assert n0["pci"]["address"] == "0000:c1:00.0" and n0["pci"]["numa_node"] == 1
    assert n0["pci"]["link_width"] == 4
    ns = n0["namespaces"][0]
    assert ns["holds_root"] and ns["size_bytes"] == 3840755982336
    assert ns["logical_block_size"] == 512 and ns["nsid"] == 1
    others = [ns for c in ("nvme1", "nvme2") for ns in nvme[c]["namespaces"]]
    assert not any(ns["holds_root"] for ns in others)
    assert [ns["nsid"] for ns in nvme["nvme2"]["namespaces"]] == [1, 2, 3]


def test_gpu_server_nics(scans: dict[str, Any]) -> None:
    nics = by_name(inv(scans, "gpu-server:ok")["nics"])
    assert "lo" not in nics
    pf = nics["ens1f0np0"]
    assert pf["kind"] == "physical" and pf["physical"] and not pf["is_vf"]
    assert pf["driver"] == "mlx5_core" and pf["pci_address"] == "0000:4b:00.0"
    assert pf["speed_mbps"] == 100000 and pf["duplex"] == "full" and pf["mtu"] == 9000
    assert (pf["sriov_total_vfs"], pf["sriov_num_vfs"]) == (8, 2)
    assert pf["rdma_devices"] == ["mlx5_0"] and pf["numa_node"] == 0
    assert nics["ens1f0v0"]["is_vf"] and nics["ens1f0v1"]["is_vf"]
    assert nics["eno1"]["bond_master"] == "bond0" and nics["eno2"]["bond_master"] == "bond0"
    assert nics["eno1"]["physical"] and nics["eno1"]["speed_mbps"] == 10000
    kinds = {n: nics[n]["kind"] for n in ("bond0", "bond0.100", "cni0", "veth1a2b3c4d")}
    assert kinds == {"bond0": "bond", "bond0.100": "vlan", "cni0": "bridge", "veth1a2b3c4d": "veth"}
    assert not any(nics[n]["physical"] for n in kinds)
    assert nics["veth1a2b3c4d"]["bond_master"] is None  # enslaved to a bridge, not a bond


def test_gpu_server_system(scans: dict[str, Any]) -> None:
    system = inv(scans, "gpu-server:ok")["system"]
    assert system["vendor"] == "Supermicro" and system["product"] == "SYS-421GE-TNRT"
    assert system["serial"] == "S4210GE0A1B2C3" and system["board_name"] == "X13DEG-OAD"
    assert (system["sockets"], system["cores"], system["threads"]) == (2, 8, 16)
    assert system["memory_bytes"] == 2_113_929_216 * 1024
    assert system["boot_mode"] == "uefi" and system["architecture"] == "x86_64"
    assert system["machine_id"] == "5b0e3b8f2d1c4a6e9f7a8b9c0d1e2f30"
    assert system["os_release"] == "Debian GNU/Linux 12 (bookworm)"
    assert system["problems"] == {}


def test_gpu_server_labels(scans: dict[str, Any]) -> None:
    labels = scans["gpu-server:ok"]["labels"]
    assert labels == {
        f"{NFD}pci-0302_10de.present": "true",
        f"{NFD}pci-10de.present": "true",
        f"{NFD}pci-0300_1a03.present": "true",
        f"{NFD}pci-1a03.present": "true",
        f"{NFD}storage-nonrotationaldisk": "true",
        f"{NFD}network-sriov.capable": "true",
        f"{NFD}network-sriov.configured": "true",
        "edge-agent.io/gpu.count": "4",
        "edge-agent.io/gpu.model": "NVIDIA-H100-80GB-HBM3",
        "edge-agent.io/nvme.count": "3",
        "edge-agent.io/nvme.local-capacity-gb": "13352",
        "edge-agent.io/nic.max-speed-mbps": "100000",
    }


@pytest.mark.parametrize(
    ("variant", "reason"),
    [
        ("none", "nvidia-smi not found on PATH; udev facts only"),
        ("fail", "nvidia-smi exited 9: NVIDIA-SMI has failed because it couldn't communicate"),
        ("hang", "nvidia-smi did not answer within 0.5s and was killed"),
        ("garbage", "nvidia-smi printed unparsable XML"),
    ],
)
def test_nvidia_smi_trouble_degrades_to_udev_facts(scans: dict[str, Any], variant: str, reason: str) -> None:
    gpus = [g for g in inv(scans, f"gpu-server:{variant}")["gpus"] if g["vendor_id"] == "10de"]
    assert len(gpus) == 4
    for g in gpus:
        assert g["nvidia"] is None
        assert g["problems"]["nvidia"].startswith(reason)
        assert g["name"] == "NVIDIA GH100 [H100 SXM5 80GB]"  # hwdb name stays
    assert scans[f"gpu-server:{variant}"]["labels"]["edge-agent.io/gpu.count"] == "4"


def test_edge_box_igpu_and_single_nvme(scans: dict[str, Any]) -> None:
    i = inv(scans, "edge-x86")
    [gpu] = i["gpus"]
    assert gpu["name"] == "Intel Alder Lake-P GT2 [Iris Xe Graphics]"
    assert (gpu["driver"], gpu["drm_card"], gpu["drm_render"]) == ("i915", "card0", "renderD128")
    assert not gpu["display_only"]
    [ctrl] = i["nvme"]
    assert ctrl["model"] == "Samsung SSD 980 PRO 1TB" and ctrl["namespaces"][0]["holds_root"]
    [nic] = [n for n in i["nics"] if n["physical"]]
    assert (nic["name"], nic["driver"], nic["speed_mbps"]) == ("enp86s0", "igc", 2500)
    labels = scans["edge-x86"]["labels"]
    assert labels[f"{NFD}pci-0300_8086.present"] == "true"
    assert labels["edge-agent.io/gpu.model"] == "Intel-Alder-Lake-P-GT2-Iris-Xe-Graphics"
    assert labels["edge-agent.io/nvme.local-capacity-gb"] == "1000"


def test_amd_box_gpus_accelerator_and_sata(scans: dict[str, Any]) -> None:
    i = inv(scans, "amd-gpu")
    compute = [g for g in i["gpus"] if not g["display_only"]]
    assert [g["pci"]["class_code"] for g in compute] == ["038000", "038000", "030000"]
    assert all(g["driver"] == "amdgpu" and g["drm_render"] for g in compute)
    disks = by_name(i["disks"])
    assert disks["sda"]["holds_root"] and disks["sda"]["rotational"] is False and disks["sda"]["bus"] == "ata"
    assert disks["sdb"]["rotational"] is True and disks["sdb"]["model"] == "ST16000NM001G-2KK103"
    nics = by_name(i["nics"])
    assert nics["enp65s0f1np1"]["speed_mbps"] is None  # link down
    assert "no link" in nics["enp65s0f1np1"]["problems"]["speed_mbps"]
    labels = scans["amd-gpu"]["labels"]
    for key in ("pci-0380_1002", "pci-0300_1002", "pci-1200_1da3", "pci-1002", "pci-1da3"):
        assert labels[f"{NFD}{key}.present"] == "true"
    assert labels["edge-agent.io/gpu.count"] == "3"
    assert labels["edge-agent.io/gpu.model"] == "AMD-Aldebaran-MI200-Instinct-MI210"
    assert labels["edge-agent.io/nic.max-speed-mbps"] == "25000"


def test_arm_board_soc_gpu_without_pci(scans: dict[str, Any]) -> None:
    i = inv(scans, "arm-jetson")
    [gpu] = i["gpus"]  # the display-only DRM card (no render node) is not a GPU
    assert gpu["kind"] == "platform" and gpu["pci"] is None
    assert gpu["compatible"] == "nvidia,ga10b" and gpu["name"] == "NVIDIA Orin GPU (ga10b)"
    assert gpu["driver"] == "gk20a"
    system = i["system"]
    assert system["product"] == "NVIDIA Jetson AGX Orin Developer Kit"
    assert system["vendor"] is None and system["problems"]["vendor"] == "no DMI table (device-tree system)"
    assert system["architecture"] == "aarch64" and system["cpu_model"] == "ARM Cortex-A78AE"
    [disk] = i["disks"]
    assert (disk["name"], disk["bus"], disk["holds_root"]) == ("mmcblk0", "mmc", True)
    [nic] = i["nics"]
    assert nic["physical"] and nic["pci_address"] is None and nic["driver"] == "nvethernet"
    labels = scans["arm-jetson"]["labels"]
    assert not any(k.startswith(f"{NFD}pci-") for k in labels)
    assert labels["edge-agent.io/gpu.count"] == "1"


def test_nvme_over_tcp_is_remote(scans: dict[str, Any]) -> None:
    nvme = by_name(inv(scans, "nvme-tcp")["nvme"])
    local, path1, path2 = nvme["nvme0"], nvme["nvme1"], nvme["nvme2"]
    assert not local["remote"] and local["namespaces"][0]["holds_root"]
    assert path1["transport"] == "tcp" and path1["remote"] and path1["pci"] is None
    assert path1["fabric_address"].startswith("traddr=10.20.0.11,trsvcid=4420")
    assert [ns["name"] for ns in path1["namespaces"]] == ["nvme1n1", "nvme1n2"]
    assert all(ns["remote"] for ns in path1["namespaces"])
    assert path2["namespaces"] == []  # second path to the same namespaces
    assert path1["subsystem_nqn"] == "nqn.2024-01.io.edge-agent:array-1"
    labels = scans["nvme-tcp"]["labels"]
    assert labels["edge-agent.io/nvme.count"] == "1"
    assert labels["edge-agent.io/nvme.local-capacity-gb"] == "3840"  # remote 6 TB not counted


def test_vm_with_virtio_only(scans: dict[str, Any]) -> None:
    i = inv(scans, "vm-virtio")
    assert i["gpus"] == [] and i["nvme"] == []
    [disk] = i["disks"]
    assert (disk["name"], disk["bus"], disk["holds_root"]) == ("vda", "virtio", True)
    assert disk["pci_address"] == "0000:00:04.0"
    [nic] = i["nics"]
    assert (nic["name"], nic["driver"], nic["kind"]) == ("eth0", "virtio_net", "physical")
    assert nic["speed_mbps"] is None and "speed_mbps" in nic["problems"]
    assert i["system"]["boot_mode"] == "bios"
    assert scans["vm-virtio"]["labels"]["edge-agent.io/gpu.count"] == "0"


def test_garbage_attributes_become_null_with_reasons(scans: dict[str, Any]) -> None:
    i = inv(scans, "garbage")
    assert i["problems"] == {}  # no collector failed as a whole
    system = i["system"]
    assert system["product"] is None and system["problems"]["product"] == "product_name: not valid UTF-8"
    assert system["problems"]["serial"] == "product_serial: empty"
    assert system["problems"]["board_vendor"] == "board_vendor: empty"
    assert system["problems"]["machine_id"] == "etc/machine-id: not 32 lower-case hex digits"
    assert system["problems"]["memory_bytes"] == "proc/meminfo: no MemTotal line"
    assert system["problems"]["os_release"] == "etc/os-release: no PRETTY_NAME"
    assert system["sockets"] is None and system["threads"] == 1
    [ctrl] = i["nvme"]
    assert ctrl["problems"] == {
        "model": "model: not valid UTF-8",
        "serial": "serial: empty",
        "firmware_rev": "firmware_rev: larger than 4096 bytes",
    }
    ns = ctrl["namespaces"][0]
    assert ns["size_bytes"] is None and ns["problems"]["size_bytes"] == "size: not an integer: 'lots'"
    assert ns["problems"]["nsid"] == "nsid: absent"
    pci = {p["address"]: p for p in i["pci"]}
    assert pci["0000:01:00.0"]["problems"]["numa_node"] == "numa_node: not an integer: 'banana'"
    assert pci["0000:01:00.0"]["link_speed_gts"] is None  # "Unknown" link: null, not garbage
    assert pci["0000:02:00.0"]["vendor_id"] is None
    assert pci["0000:02:00.0"]["problems"]["vendor_id"] == "vendor: 0x10de0 does not fit 4 hex digits"
    [nic] = i["nics"]
    assert nic["problems"]["speed_mbps"] == "speed: not an integer: 'fast'"
    assert nic["problems"]["operstate"] == "operstate: contains control characters"
    labels = scans["garbage"]["labels"]
    for value in labels.values():
        assert len(value) <= 63


def test_device_removed_mid_scan() -> None:
    out = run_hwbed("vanish")
    assert out["pci"]["vendor_id"] is None
    assert out["pci"]["problems"]["vendor_id"] == "vendor: device removed during scan"
    assert out["nic"]["problems"]["mtu"] == "mtu: device removed during scan"


def test_hotplug_follows_uevents() -> None:
    out = run_hwbed("hotplug")
    steps = {s["step"]: s for s in out["steps"]}
    assert steps["start"]["labels"]["edge-agent.io/gpu.count"] == "4"
    for name in ("add gpu", "add nvme", "add nic", "remove gpu", "remove nic"):
        assert steps[name]["seconds"] is not None, f"inventory did not follow '{name}'"
    assert "0000:c9:00.0" in steps["add gpu"]["gpus"]
    assert steps["add gpu"]["labels"]["edge-agent.io/gpu.count"] == "5"
    assert "nvme3" in steps["add nvme"]["nvme"]
    assert steps["add nvme"]["labels"]["edge-agent.io/nvme.count"] == "4"
    assert "vxlan.calico" in steps["add nic"]["nics"]
    assert "0000:18:00.0" not in steps["remove gpu"]["gpus"]
    assert steps["remove gpu"]["labels"]["edge-agent.io/gpu.count"] == "4"
    assert "vxlan.calico" not in steps["remove nic"]["nics"]
    assert steps["remove nic"]["section"]["hotplug"] == "udev"
    assert steps["remove nic"]["section"]["hotplug_events"] >= 5
    assert out["hotplug_events"] >= 7  # the nvme add alone is three uevents
    assert out["conditions"]["InventoryReady"] == "True"


LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def test_every_label_is_valid_kubernetes_syntax(scans: dict[str, Any]) -> None:
    for name, result in scans.items():
        for key, value in result["labels"].items():
            prefix, _, label = key.rpartition("/")
            assert prefix in ("feature.node.kubernetes.io", "edge-agent.io"), (name, key)
            assert LABEL_NAME.match(label), (name, key)
            assert len(value) <= 63 and LABEL_VALUE.match(value), (name, key, value)
