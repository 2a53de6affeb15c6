"""The generated device trees under tests/fixtures/, as code (not recordings).

``python tests/inventory/trees.py`` writes tests/fixtures/<name>.umockdev;
a test checks the committed files match. Ids, classes, driver names, hwdb
names and attribute spellings are copied from what real devices carry, but
the trees are made here; real ``umockdev-record`` output lives beside them
as tests/fixtures/recorded-*.umockdev (see tests/inventory/README.md).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from treegen import Host, Tree

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
TB = 10**12

H100 = (0x030200, 0x10DE, 0x2330, "nvidia", ("NVIDIA Corporation", "GH100 [H100 SXM5 80GB]"), (0x10DE, 0x16C1))
CX6 = (0x020000, 0x15B3, 0x101D, "mlx5_core", ("Mellanox Technologies", "MT2892 Family [ConnectX-6 Dx]"))
CX6_VF = (0x020000, 0x15B3, 0x101E, "mlx5_core", ("Mellanox Technologies", "ConnectX Family mlx5Gen Virtual Function"))
PM9A3 = (0x010802, 0x144D, 0xA80A, "nvme", ("Samsung Electronics Co Ltd", "NVMe SSD Controller PM9A1/PM9A3/980PRO"))


# -- hardware health (agent/health/) -----------------------------------------------------------
# Every physical port starts with the 2 carrier changes of its first link-up; tests raise the
# counter between health polls to make a link flap.
CARRIER_CHANGES = {"carrier_changes": "2", "carrier_up_count": "1", "carrier_down_count": "1"}


def nvme_hwmon(t: Tree, ctrl: str, n: int, celsius: float) -> None:
    """The hwmon device the kernel's nvme driver registers under a controller (Linux >= 5.19)."""
    t.device(
        f"{ctrl}/hwmon{n}",
        "hwmon",
        attrs={
            "name": "nvme",
            "temp1_label": "Composite",
            "temp1_input": str(round(celsius * 1000)),
            "temp1_max": "84850",
            "temp1_crit": "84850",
            "temp1_alarm": "0",
        },
    )


def smart_log(**values: int) -> dict[str, int]:
    """A SMART / Health log as nvme-cli 2.x prints it with -o json (its keys, in its order;
    "temperature" and "temperature_sensor_N" in Kelvin), healthy unless ``values`` say otherwise."""
    log = {
        "critical_warning": 0,
        "temperature": 309,
        "avail_spare": 100,
        "spare_thresh": 10,
        "percent_used": 3,
        "endurance_grp_critical_warning_summary": 0,
        "data_units_read": 91823412,
        "data_units_written": 183422310,
        "host_read_commands": 2381273481,
        "host_write_commands": 4120934812,
        "controller_busy_time": 3021,
        "power_cycles": 41,
        "power_on_hours": 14211,
        "unsafe_shutdowns": 7,
        "media_errors": 0,
        "num_err_log_entries": 12,
        "warning_temp_time": 0,
        "critical_comp_time": 0,
        "temperature_sensor_1": 309,
        "temperature_sensor_2": 312,
        "thm_temp1_trans_count": 0,
        "thm_temp2_trans_count": 0,
        "thm_temp1_total_time": 0,
        "thm_temp2_total_time": 0,
    }
    log |= values
    return log


def _pci(t: Tree, addr: str, dev: tuple, **kw: object) -> str:  # type: ignore[type-arg]
    cls, vendor, device, driver, names, *rest = dev
    if rest:
        kw.setdefault("subsys", rest[0])
    return t.pci(addr, cls, vendor, device, driver=driver, names=names, **kw)  # type: ignore[arg-type]


def gpu_server() -> Tree:
    """4x H100 SXM, an ASPEED BMC VGA, 3 NVMe drives (1, 2 and 3 namespaces), ConnectX-6 Dx with
    SR-IOV and RDMA, Intel X710 ports bonded with a VLAN on top, a CNI bridge and a veth."""
    t = Tree(Host(machine_id="5b0e3b8f2d1c4a6e9f7a8b9c0d1e2f30", mem_kb=2_113_929_216))
    t.dmi("Supermicro", "SYS-421GE-TNRT", "S4210GE0A1B2C3", "Supermicro", "X13DEG-OAD")
    t.cpus(sockets=2, cores=4, threads_per_core=2)
    for i, bus in enumerate(("18", "2a", "9a", "ab")):
        numa = 0 if i < 2 else 1
        rp = t.bridge(f"0000:{int(bus, 16) - 1:02x}:01.0", numa=numa)
        _pci(t, f"0000:{bus}:00.0", H100, parent=rp, numa=numa, link=("32.0 GT/s PCIe", 16))
    bmc_bridge = t.pci(
        "0000:02:00.0",
        0x060400,
        0x1A03,
        0x1150,
        driver=None,
        names=("ASPEED Technology, Inc.", "AST1150 PCI-to-PCI Bridge"),
    )
    vga = t.pci(
        "0000:03:00.0",
        0x030000,
        0x1A03,
        0x2000,
        driver="ast",
        parent=bmc_bridge,
        names=("ASPEED Technology, Inc.", "ASPEED Graphics Family"),
        link=("5.0 GT/s PCIe", 1),
    )
    t.drm(vga, 0, render=False)
    roots: list[str] = []
    for i, (bus, model, serial, fw, nss) in enumerate(
        (
            ("c1", "SAMSUNG MZQL23T8HCLS-00A07", "S64HNE0T512345", "GDC5602Q", [(1, 3840755982336)]),
            ("c2", "SAMSUNG MZQL27T6HBLA-00A07", "S6CKNT0W700001", "GDC5A02Q", [(1, 3 * TB), (2, 4 * TB)]),
            ("c3", "SAMSUNG MZQL21T9HCJR-00A07", "S64GNE0T300002", "GDC5602Q", [(1, TB), (2, TB), (3, 512 * 10**9)]),
        )
    ):
        pdev = _pci(t, f"0000:{bus}:00.0", PM9A3, numa=1, link=("16.0 GT/s PCIe", 4))
        roots.append(t.nvme_pci(i, pdev, model, serial, fw, nss, partitions=3 if i == 0 else 0, numa=1))
    # root filesystem on nvme0n1p2
    t.host.root_dev = t.devnum(f"{roots[0]}/nvme0n1/nvme0n1p2")
    for i, ctrl in enumerate(roots):  # health: the kernel's NVMe hwmon (SMART logs: SMART_LOGS below)
        nvme_hwmon(t, ctrl, 2 + i, (35.85, 41.85, 75.85)[i])
    pf0 = _pci(
        t, "0000:4b:00.0", CX6, numa=0, link=("16.0 GT/s PCIe", 16), attrs={"sriov_totalvfs": "8", "sriov_numvfs": "2"}
    )
    pf1 = _pci(
        t, "0000:4b:00.1", CX6, numa=0, link=("16.0 GT/s PCIe", 16), attrs={"sriov_totalvfs": "8", "sriov_numvfs": "0"}
    )
    t.nic(pf0, "ens1f0np0", "b8:3f:d2:10:20:30", ifindex=4, speed=100000, mtu=9000, attrs=CARRIER_CHANGES)
    t.nic(pf1, "ens1f1np1", "b8:3f:d2:10:20:31", ifindex=5, speed=100000, mtu=9000, attrs=CARRIER_CHANGES)
    t.infiniband(pf0, "mlx5_0")
    t.infiniband(pf1, "mlx5_1")
    for vf in range(2):
        vdev = _pci(t, f"0000:4b:00.{2 + vf}", CX6_VF, numa=0, links={"physfn": "../0000:4b:00.0"})
        t.nic(vdev, f"ens1f0v{vf}", f"52:54:00:aa:00:0{vf}", ifindex=10 + vf, speed=100000)
        t.infiniband(vdev, f"mlx5_{2 + vf}")
    x710 = (0x020000, 0x8086, 0x1572, "i40e", ("Intel Corporation", "Ethernet Controller X710 for 10GbE SFP+"))
    for fn, name in enumerate(("eno1", "eno2")):
        p = _pci(t, f"0000:65:00.{fn}", x710, numa=0, link=("8.0 GT/s PCIe", 8))
        t.nic(p, name, f"3c:ec:ef:00:11:2{fn}", ifindex=2 + fn, speed=10000, master="bond0", attrs=CARRIER_CHANGES)
    t.nic(None, "bond0", "3c:ec:ef:00:11:20", ifindex=6, devtype="bond", attrs={"bonding/mode": "802.3ad 4"})
    t.nic(None, "bond0.100", "3c:ec:ef:00:11:20", ifindex=7, iflink=6, devtype="vlan")
    t.nic(None, "cni0", "0e:11:22:33:44:55", ifindex=8, devtype="bridge", attrs={"bridge/stp_state": "0"})
    t.nic(None, "veth1a2b3c4d", "6a:11:22:33:44:66", ifindex=9, iflink=3, master="cni0")
    t.loopback()
    return t


def edge_x86() -> Tree:
    """A small fanless x86 box: one NVMe holding root, an Intel Iris Xe iGPU, a 2.5 GbE port."""
    t = Tree(
        Host(
            machine_id="a1b2c3d4e5f60718293a4b5c6d7e8f90",
            cpuinfo="processor\t: 0\nmodel name\t: 12th Gen Intel(R) Core(TM) i7-1270P\n",
            mem_kb=32_617_336,
        )
    )
    t.dmi("Intel(R) Client Systems", "NUC12WSHi7", "BTWS1234567X", "Intel Corporation", "NUC12WSBi7")
    t.cpus(sockets=1, cores=4, threads_per_core=2)
    igpu = t.pci(
        "0000:00:02.0",
        0x030000,
        0x8086,
        0x46A6,
        driver="i915",
        names=("Intel Corporation", "Alder Lake-P GT2 [Iris Xe Graphics]"),
    )
    t.drm(igpu, 0)
    rp = t.pci(
        "0000:00:06.0",
        0x060400,
        0x8086,
        0x464D,
        driver="pcieport",
        names=("Intel Corporation", "12th Gen Core Processor PCI Express x4 Controller #0"),
    )
    ssd = _pci(t, "0000:01:00.0", (0x010802, 0x144D, 0xA80A, "nvme", PM9A3[4]), parent=rp, link=("16.0 GT/s PCIe", 4))
    ctrl = t.nvme_pci(
        0, ssd, "Samsung SSD 980 PRO 1TB", "S5GXNF0R123456A", "5B2QGXA7", [(1, 1000204886016)], partitions=2
    )
    t.host.root_dev = t.devnum(f"{ctrl}/nvme0n1/nvme0n1p2")
    nic = t.pci(
        "0000:56:00.0",
        0x020000,
        0x8086,
        0x15F3,
        driver="igc",
        names=("Intel Corporation", "Ethernet Controller I225-V"),
        link=("5.0 GT/s PCIe", 1),
    )
    t.nic(nic, "enp86s0", "48:21:0b:5a:6b:7c", ifindex=2, speed=2500)
    t.loopback()
    return t


def amd_gpu() -> Tree:
    """AMD EPYC host with 2x Instinct MI210 and a Radeon RX 7900, a Gaudi2 accelerator (PCI class 12),
    an ASPEED BMC, SATA SSD (root) + HDD, Broadcom 25 GbE."""
    t = Tree(Host(cpuinfo="processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 9354 32-Core Processor\n"))
    t.dmi(
        "Gigabyte Technology Co., Ltd.",
        "G293-Z43-AAP1-000",
        "GJG1N8212A0001",
        "Gigabyte Technology Co., Ltd.",
        "MZ33-AR0-000",
    )
    t.cpus(sockets=1, cores=8, threads_per_core=2)
    mi210 = (
        0x038000,
        0x1002,
        0x740F,
        "amdgpu",
        ("Advanced Micro Devices, Inc. [AMD/ATI]", "Aldebaran/MI200 [Instinct MI210]"),
    )
    for card, bus in enumerate(("c1", "c2")):
        g = _pci(t, f"0000:{bus}:00.0", mi210, link=("16.0 GT/s PCIe", 16), numa=0)
        t.drm(g, card + 1)
    rx = _pci(
        t,
        "0000:e3:00.0",
        (
            0x030000,
            0x1002,
            0x744C,
            "amdgpu",
            ("Advanced Micro Devices, Inc. [AMD/ATI]", "Navi 31 [Radeon RX 7900 XT/7900 XTX/7900M]"),
        ),
        link=("16.0 GT/s PCIe", 16),
    )
    t.drm(rx, 3)
    t.pci(
        "0000:44:00.0",
        0x120000,
        0x1DA3,
        0x1020,
        driver="habanalabs",
        names=("Habana Labs Ltd.", "Gaudi2 AI Training Accelerator"),
    )
    vga = t.pci(
        "0000:03:00.0",
        0x030000,
        0x1A03,
        0x2000,
        driver="ast",
        names=("ASPEED Technology, Inc.", "ASPEED Graphics Family"),
    )
    t.drm(vga, 0, render=False)
    sata = t.pci(
        "0000:45:00.0",
        0x010601,
        0x1022,
        0x7901,
        driver="ahci",
        names=("Advanced Micro Devices, Inc. [AMD]", "FCH SATA Controller [AHCI mode]"),
    )
    sda = t.sata_disk(sata, 1, "sda", "ATA", "Micron_5400_MTFDDAK960TGA", "2214360A1B2C", 960197124096, rotational=0)
    t.sata_disk(sata, 2, "sdb", "ATA", "ST16000NM001G-2KK103", "ZL2ABCDE", 16000900661248, rotational=1)
    t.host.root_dev = t.devnum(sda)
    bcm = (
        0x020000,
        0x14E4,
        0x16D7,
        "bnxt_en",
        ("Broadcom Inc. and subsidiaries", "BCM57414 NetXtreme-E 10Gb/25Gb RDMA Ethernet Controller"),
    )
    for fn in range(2):
        p = _pci(t, f"0000:41:00.{fn}", bcm, link=("8.0 GT/s PCIe", 8))
        t.nic(
            p,
            f"enp65s0f{fn}np{fn}",
            f"00:0a:f7:aa:bb:c{fn}",
            ifindex=2 + fn,
            speed=25000 if fn == 0 else None,
            operstate="up" if fn == 0 else "down",
        )
    t.loopback()
    return t


def arm_board() -> Tree:
    """An NVIDIA Jetson AGX Orin: device tree instead of DMI, the ga10b iGPU as a platform device (no PCI
    GPU, no DRM render node), a display-only DRM card, eMMC root, on-SoC ethernet."""
    t = Tree(
        Host(
            machine_id="c0ffee00c0ffee00c0ffee00c0ffee00",
            os_release='PRETTY_NAME="Ubuntu 22.04.4 LTS"\nID=ubuntu\n',
            kernel="5.15.136-tegra",
            arch="aarch64",
            cpuinfo=(
                "processor\t: 0\nBogoMIPS\t: 62.50\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU part\t: 0xd42\n"
            ),
            mem_kb=31_669_244,
            dt_model="NVIDIA Jetson AGX Orin Developer Kit",
        )
    )
    t.cpus(sockets=3, cores=4, threads_per_core=1)
    soc = "/devices/platform/bus@0"
    t.device(
        f"{soc}/17000000.gpu",
        "platform",
        driver="gk20a",
        props={
            "OF_NAME": "gpu",
            "OF_FULLNAME": "/bus@0/gpu@17000000",
            "OF_COMPATIBLE_0": "nvidia,ga10b",
            "OF_COMPATIBLE_N": "1",
        },
        attrs={"devfreq/17000000.gpu/cur_freq": "1300500000"},
    )
    disp = t.device(
        f"{soc}/13800000.display",
        "platform",
        driver="tegra-display",
        props={"OF_NAME": "display", "OF_COMPATIBLE_0": "nvidia,tegra234-display", "OF_COMPATIBLE_N": "1"},
    )
    t.drm(disp, 0, render=False)
    t.device(f"{soc}/2310000.ethernet", "platform", driver="nvethernet", props={"OF_COMPATIBLE_0": "nvidia,nvmgbe"})
    t.nic(f"{soc}/2310000.ethernet", "eth0", "48:b0:2d:01:02:03", ifindex=2, speed=1000)
    host = t.device(
        f"{soc}/3460000.mmc", "platform", driver="sdhci-tegra", props={"OF_COMPATIBLE_0": "nvidia,tegra234-sdhci"}
    )
    card = t.device(
        f"{host}/mmc_host/mmc0/mmc0:0001",
        "mmc",
        driver="mmcblk",
        attrs={"name": "G1M15M", "serial": "0x12345678", "type": "MMC"},
    )
    emmc = t.device(
        f"{card}/block/mmcblk0",
        "block",
        node="mmcblk0",
        major=179,
        attrs={"size": str(62_537_072_640 // 512), "queue/rotational": "0", "removable": "0"},
        props={"DEVTYPE": "disk"},
    )
    t.device(
        f"{emmc}/mmcblk0p1",
        "block",
        node="mmcblk0p1",
        major=179,
        attrs={"partition": "1"},
        props={"DEVTYPE": "partition"},
    )
    t.host.root_dev = t.devnum(f"{emmc}/mmcblk0p1")
    t.loopback()
    return t


def nvme_tcp() -> Tree:
    """A box booting from a local NVMe whose bulk storage is NVMe/TCP: two paths (controllers) to one
    remote subsystem with two namespaces (native multipath), and an E810 NIC with RDMA."""
    t = Tree(Host(machine_id="0123456789abcdef0123456789abcdef"))
    t.dmi("Dell Inc.", "PowerEdge R660", "7XYZ123", "Dell Inc.", "0VT4W3")
    t.cpus(sockets=1, cores=4, threads_per_core=1)
    ssd = t.pci(
        "0000:c3:00.0",
        0x010802,
        0x8086,
        0x0B60,
        driver="nvme",
        names=("Intel Corporation", "NVMe DC SSD [3DNAND, Sentinel Rock Controller]"),
        link=("16.0 GT/s PCIe", 4),
    )
    ctrl = t.nvme_pci(
        0, ssd, "SOLIDIGM SSDPF2KX038T1", "PHAX2131001A3P8CGN", "9CV10330", [(1, 3840755982336)], partitions=2
    )
    t.host.root_dev = t.devnum(f"{ctrl}/nvme0n1/nvme0n1p2")
    t.nvme_fabric(1, [(1, "tcp", "10.20.0.11"), (2, "tcp", "10.20.0.12")], [(1, 2 * TB), (2, 4 * TB)])
    e810 = t.pci(
        "0000:31:00.0",
        0x020000,
        0x8086,
        0x159B,
        driver="ice",
        names=("Intel Corporation", "Ethernet Controller E810-C for SFP"),
        link=("16.0 GT/s PCIe", 16),
        attrs={"sriov_totalvfs": "128", "sriov_numvfs": "0"},
    )
    t.nic(e810, "ens2f0", "b4:96:91:aa:bb:cc", ifindex=2, speed=25000, mtu=9000)
    t.infiniband(e810, "irdma0")
    t.loopback()
    return t


def vm_virtio() -> Tree:
    """A QEMU/KVM guest with virtio devices only: no GPU, no NVMe, BIOS boot."""
    t = Tree(
        Host(
            machine_id="3d1219c7c4c5404aaa1f6d2a48adfda4", cpuinfo="processor\t: 0\nmodel name\t: AMD EPYC\n", efi=False
        )
    )
    t.dmi("QEMU", "Standard PC (Q35 + ICH9, 2009)", "", "", "")
    t.cpus(sockets=1, cores=2, threads_per_core=1)
    t.pci(
        "0000:00:00.0",
        0x060000,
        0x8086,
        0x29C0,
        driver=None,
        names=("Intel Corporation", "82G33/G31/P35/P31 Express DRAM Controller"),
    )
    net = t.pci(
        "0000:00:03.0",
        0x020000,
        0x1AF4,
        0x1041,
        driver="virtio-pci",
        names=("Red Hat, Inc.", "Virtio 1.0 network device"),
        subsys=(0x1AF4, 0x1100),
    )
    vio = t.device(f"{net}/virtio2", "virtio", driver="virtio_net", attrs={"vendor": "0x1af4", "device": "0x0001"})
    t.nic(vio, "eth0", "02:fc:00:00:00:01", ifindex=2, mtu=1400, speed=-1, duplex="unknown")
    blk = t.pci(
        "0000:00:04.0",
        0x010000,
        0x1AF4,
        0x1042,
        driver="virtio-pci",
        names=("Red Hat, Inc.", "Virtio 1.0 block device"),
        subsys=(0x1AF4, 0x1100),
    )
    vda = t.virtio_disk(blk, 1, "vda", 256 * 2**30)
    t.host.root_dev = t.devnum(vda)
    t.pci("0000:00:05.0", 0x00FF00, 0x1AF4, 0x1045, driver="virtio-pci", names=("Red Hat, Inc.", "Virtio 1.0 balloon"))
    t.loopback()
    return t


def bench_8x8x8() -> Tree:
    """The warm-rescan benchmark box: 8 GPUs, 8 NVMe drives, 8 NIC ports."""
    t = Tree()
    t.dmi("Supermicro", "SYS-821GE-TNHR", "S8210GE000001", "Supermicro", "X13DEG-OAD")
    t.cpus(sockets=2, cores=8, threads_per_core=2)
    cx7 = (0x020000, 0x15B3, 0x1021, "mlx5_core", ("Mellanox Technologies", "MT2910 Family [ConnectX-7]"))
    for i in range(8):
        numa = i // 4
        rp = t.bridge(f"0000:{0x10 + i * 0x10:02x}:01.0", numa=numa)
        _pci(t, f"0000:{0x11 + i * 0x10:02x}:00.0", H100, parent=rp, numa=numa, link=("32.0 GT/s PCIe", 16))
        ssd = _pci(t, f"0000:{0x12 + i * 0x10:02x}:00.0", PM9A3, parent=rp, numa=numa, link=("16.0 GT/s PCIe", 4))
        ctrl = t.nvme_pci(
            i, ssd, "SAMSUNG MZQL23T8HCLS-00A07", f"S64HNE0T5{i:05d}", "GDC5602Q", [(1, 3840755982336)], numa=numa
        )
        if i == 0:
            t.host.root_dev = t.devnum(f"{ctrl}/nvme0n1")
        nvme_hwmon(t, ctrl, i, 36.85)
        nic = _pci(
            t,
            f"0000:{0x13 + i * 0x10:02x}:00.0",
            cx7,
            parent=rp,
            numa=numa,
            link=("32.0 GT/s PCIe", 16),
            attrs={"sriov_totalvfs": "16", "sriov_numvfs": "0"},
        )
        t.nic(
            nic,
            f"ibp{0x13 + i * 0x10}s0",
            f"94:6d:ae:00:00:{i:02x}",
            ifindex=2 + i,
            speed=400000,
            mtu=4200,
            attrs=CARRIER_CHANGES,
        )
        t.infiniband(nic, f"mlx5_{i}")
    t.loopback()
    return t


def garbage() -> Tree:
    """Attributes real (broken) firmware and drivers produce: non-UTF-8, empty, huge, not-a-number,
    control characters, a link speed of 'Unknown', missing ids; and broken host files."""
    t = Tree(
        Host(
            machine_id="not-a-machine-id",
            os_release='NAME="Mystery"\n',
            cpuinfo="processor\t: 0\n",
            mem_kb=0,
        )
    )
    t.device(
        "/devices/virtual/dmi/id",
        "dmi",
        attrs={"sys_vendor": "To Be Filled By O.E.M.", "product_serial": "", "board_vendor": "\t"},
        binary={"product_name": b"\xff\xfeB\x00o\x00x\x00"},
    )
    t.device("/devices/system/cpu/cpu0", "cpu", attrs={"topology/physical_package_id": "0"})
    gpu = t.pci(
        "0000:01:00.0",
        0x030200,
        0x10DE,
        0x20B5,
        driver="nvidia",
        link=("Unknown", 0),
        attrs={"numa_node": "banana"},
    )
    del gpu
    t.pci("0000:02:00.0", 0x030000, 0x10DE, 0x2684, driver=None, attrs={"vendor": "0x10de0"}, link=("2.5 GT/s PCIe", 1))
    ssd = t.pci("0000:03:00.0", 0x010802, 0x1C5C, 0x174A, driver="nvme")
    t.device(
        f"{ssd}/nvme/nvme0",
        "nvme",
        node="nvme0",
        major=240,
        attrs={"serial": "", "firmware_rev": "X" * 5000, "transport": "pcie"},
        binary={"model": b"SK hynix \xc3\x28 bad utf8"},
    )
    t.device(
        f"{ssd}/nvme/nvme0/nvme0n1",
        "block",
        node="nvme0n1",
        major=259,
        attrs={"size": "lots", "queue/logical_block_size": "512"},
        props={"DEVTYPE": "disk"},
    )
    nic = t.pci("0000:04:00.0", 0x020000, 0x10EC, 0x8168, driver="r8169")
    t.nic(nic, "enp4s0", "00:e0:4c:68:00:01", ifindex=2, attrs={"speed": "fast", "operstate": "up\x07"})
    t.loopback()
    return t


TREES: dict[str, Callable[[], Tree]] = {
    "gpu-server": gpu_server,
    "edge-x86": edge_x86,
    "amd-gpu": amd_gpu,
    "arm-jetson": arm_board,
    "nvme-tcp": nvme_tcp,
    "vm-virtio": vm_virtio,
    "bench-8gpu-8nvme-8nic": bench_8x8x8,
    "garbage": garbage,
}


# What `nvme smart-log /dev/nvmeX -o json` answers on each tree (the nvme stand-in prints these;
# umockdev cannot answer the admin command). gpu-server: one healthy drive, one worn out, one failing.
SMART_LOGS: dict[str, dict[str, dict[str, int]]] = {
    "gpu-server": {
        "nvme0": smart_log(),
        "nvme1": smart_log(percent_used=93, temperature=315),
        "nvme2": smart_log(critical_warning=0x05, avail_spare=4, media_errors=3, temperature=349, unsafe_shutdowns=29),
    },
    "bench-8gpu-8nvme-8nic": {f"nvme{i}": smart_log() for i in range(8)},
}


def fixture_path(name: str) -> Path:
    return FIXTURES / f"{name}.umockdev"


def main() -> None:
    FIXTURES.mkdir(exist_ok=True)
    for name, build in TREES.items():
        fixture_path(name).write_text(build().text())
        print(fixture_path(name))


if __name__ == "__main__":
    main()
