"""Builders for umockdev device trees (the text format ``umockdev-record`` writes).

Each device is a block of ``P:`` (sysfs path), ``N:`` (device node), ``E:``
(udev property), ``L:`` (symlink in the device directory), ``A:`` (text
attribute) and ``H:`` (binary attribute, hex) lines, written from the sysfs
attributes and udev properties the real devices carry.

Host facts that live outside /sys and /dev (os-release, /proc files, the root
filesystem's device number) cannot be recorded by umockdev; they travel in a
:class:`Host` beside the tree and the test harness lays them out under a
scratch root that the collectors read through ``Paths``.
"""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass, field


@dataclass
class Host:
    machine_id: str = "0f3c1f7e9a2b4c5d8e6f708192a3b4c5"
    os_release: str = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n'
    kernel: str = "6.1.0-27-amd64"
    arch: str = "x86_64"
    cpuinfo: str = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Gold 6430\n"
    mem_kb: int = 65_536_000
    efi: bool = True
    dt_model: str | None = None
    root_dev: str | None = None


def _rel(frm: str, to: str) -> str:
    return os.path.relpath(to, frm)


@dataclass
class Tree:
    host: Host = field(default_factory=Host)
    blocks: list[str] = field(default_factory=list)
    _minor: dict[int, int] = field(default_factory=dict)

    # -- raw device -----------------------------------------------------------------------------
    def device(
        self,
        path: str,
        subsystem: str,
        *,
        attrs: dict[str, str] | None = None,
        binary: dict[str, bytes] | None = None,
        props: dict[str, str] | None = None,
        links: dict[str, str] | None = None,
        driver: str | None = None,
        node: str | None = None,
        major: int | None = None,
    ) -> str:
        """Add one device at ``path`` (under /sys, starting with /devices). Returns the path."""
        lines = [f"P: {path}"]
        props = dict(props or {})
        attrs = dict(attrs or {})
        if node is not None:
            lines.append(f"N: {node}")
            props.setdefault("DEVNAME", f"/dev/{node}")
        if major is not None:
            minor = self._minor.get(major, 0)
            self._minor[major] = minor + 1
            props["MAJOR"], props["MINOR"] = str(major), str(minor)
            attrs["dev"] = f"{major}:{minor}"
        lines.append(f"E: SUBSYSTEM={subsystem}")
        if driver:
            props.setdefault("DRIVER", driver)
        lines += [f"E: {k}={v}" for k, v in props.items()]
        all_links = dict(links or {})
        if driver:
            all_links["driver"] = _rel("/sys" + path, f"/sys/bus/{subsystem}/drivers/{driver}")
        lines += [f"L: {k}={v}" for k, v in all_links.items()]
        lines += [f"A: {k}={v}" for k, v in attrs.items()]
        lines += [f"H: {k}={v.hex()}" for k, v in (binary or {}).items()]
        self.blocks.append("\n".join(lines))
        return path

    def devnum(self, path: str) -> str:
        for block in self.blocks:
            if block.startswith(f"P: {path}\n"):
                for line in block.splitlines():
                    if line.startswith("A: dev="):
                        return line[len("A: dev=") :]
        raise KeyError(path)

    def text(self) -> str:
        return "\n\n".join(self.blocks) + "\n"

    # -- system ---------------------------------------------------------------------------------
    def dmi(self, vendor: str, product: str, serial: str, board_vendor: str, board_name: str) -> None:
        self.device(
            "/devices/virtual/dmi/id",
            "dmi",
            attrs={
                "sys_vendor": vendor,
                "product_name": product,
                "product_serial": serial,
                "board_vendor": board_vendor,
                "board_name": board_name,
                "bios_vendor": "American Megatrends International, LLC.",
            },
            props={"MODALIAS": f"dmi:bvnAMI:svn{vendor}:pn{product}:"},
        )

    def cpus(self, sockets: int, cores: int, threads_per_core: int) -> None:
        n = 0
        for _thread in range(threads_per_core):
            for s in range(sockets):
                for c in range(cores):
                    self.device(
                        f"/devices/system/cpu/cpu{n}",
                        "cpu",
                        attrs={
                            "online": "1",
                            "topology/physical_package_id": str(s),
                            "topology/core_id": str(c),
                            "topology/thread_siblings_list": f"{n}",
                        },
                        props={"DRIVER": "processor", "MODALIAS": "cpu:type:x86"},
                    )
                    n += 1

    # -- PCI ------------------------------------------------------------------------------------
    def pci(
        self,
        address: str,
        cls: int,
        vendor: int,
        device: int,
        *,
        driver: str | None,
        parent: str | None = None,
        numa: int = -1,
        link: tuple[str, int] | None = None,
        names: tuple[str, str] | None = None,
        subsys: tuple[int, int] = (0, 0),
        attrs: dict[str, str] | None = None,
        links: dict[str, str] | None = None,
    ) -> str:
        base = parent or f"/devices/pci{address[:4]}:{address[5:7]}"
        path = f"{base}/{address}"
        a = {
            "class": f"0x{cls:06x}",
            "vendor": f"0x{vendor:04x}",
            "device": f"0x{device:04x}",
            "subsystem_vendor": f"0x{subsys[0]:04x}",
            "subsystem_device": f"0x{subsys[1]:04x}",
            "numa_node": str(numa),
            "enable": "1",
            "irq": "16",
        }
        if link:
            a |= {
                "current_link_speed": link[0],
                "current_link_width": str(link[1]),
                "max_link_speed": link[0],
                "max_link_width": str(link[1]),
            }
        a |= attrs or {}
        p = {
            "PCI_CLASS": f"{cls:X}",
            "PCI_ID": f"{vendor:04X}:{device:04X}",
            "PCI_SUBSYS_ID": f"{subsys[0]:04X}:{subsys[1]:04X}",
            "PCI_SLOT_NAME": address,
            "MODALIAS": f"pci:v{vendor:08X}d{device:08X}sv{subsys[0]:08X}sd{subsys[1]:08X}"
            f"bc{cls >> 16:02X}sc{(cls >> 8) & 0xFF:02X}i{cls & 0xFF:02X}",
        }
        if names:
            p["ID_VENDOR_FROM_DATABASE"], p["ID_MODEL_FROM_DATABASE"] = names
        return self.device(path, "pci", attrs=a, props=p, links=links, driver=driver)

    def bridge(self, address: str, *, numa: int = -1, parent: str | None = None) -> str:
        return self.pci(
            address,
            0x060400,
            0x8086,
            0x352A,
            driver="pcieport",
            numa=numa,
            parent=parent,
            names=("Intel Corporation", "Sapphire Rapids PCIe Root Port"),
        )

    def drm(self, parent: str, card: int, *, render: bool = True, driver_props: str = "") -> None:
        self.device(
            f"{parent}/drm/card{card}",
            "drm",
            node=f"dri/card{card}",
            major=226,
            props={"DEVTYPE": "drm_minor"},
        )
        if render:
            self.device(
                f"{parent}/drm/renderD{128 + card}",
                "drm",
                node=f"dri/renderD{128 + card}",
                props={"DEVTYPE": "drm_minor"},
                attrs={"dev": f"226:{128 + card}"},
            )
        self.device(
            f"{parent}/drm/card{card}/card{card}-DP-1",
            "drm",
            attrs={"status": "disconnected", "enabled": "disabled"},
        )

    # -- storage --------------------------------------------------------------------------------
    def _namespace(
        self,
        parent: str,
        name: str,
        nsid: int,
        size: int,
        *,
        lbs: int = 512,
        partitions: int = 0,
        attrs: dict[str, str] | None = None,
    ) -> str:
        a = {
            "size": str(size // 512),
            "nsid": str(nsid),
            "wwid": f"eui.{zlib.crc32(name.encode()):08x}{size % 16**8:08x}",
            "queue/logical_block_size": str(lbs),
            "queue/physical_block_size": str(lbs),
            "queue/rotational": "0",
            "removable": "0",
            "ro": "0",
        }
        a |= attrs or {}
        path = self.device(
            f"{parent}/{name}",
            "block",
            node=name,
            major=259,
            attrs=a,
            props={"DEVTYPE": "disk", "ID_PART_TABLE_TYPE": "gpt"} if partitions else {"DEVTYPE": "disk"},
        )
        for i in range(1, partitions + 1):
            self.device(
                f"{path}/{name}p{i}",
                "block",
                node=f"{name}p{i}",
                major=259,
                attrs={"partition": str(i), "size": str(size // 512 // (partitions + 1))},
                props={"DEVTYPE": "partition", "PARTN": str(i)},
            )
        return path

    def nvme_pci(
        self,
        n: int,
        pci_path: str,
        model: str,
        serial: str,
        firmware: str,
        namespaces: list[tuple[int, int]],
        *,
        partitions: int = 0,
        numa: int = -1,
        lbs: int = 512,
        attrs: dict[str, str] | None = None,
    ) -> str:
        address = pci_path.rsplit("/", 1)[1]
        a = {
            "model": f"{model:<40}",
            "serial": f"{serial:<20}",
            "firmware_rev": f"{firmware:<8}",
            "transport": "pcie",
            "address": address,
            "state": "live",
            "cntlid": "6",
            "subsysnqn": f"nqn.2014.08.org.nvmexpress:144d144d{serial}",
            "numa_node": str(numa),
        }
        a |= attrs or {}
        ctrl = self.device(f"{pci_path}/nvme/nvme{n}", "nvme", node=f"nvme{n}", major=240, attrs=a)
        for i, (nsid, size) in enumerate(namespaces):
            self._namespace(ctrl, f"nvme{n}n{nsid}", nsid, size, lbs=lbs, partitions=partitions if i == 0 else 0)
        return ctrl

    def nvme_fabric(
        self,
        subsys: int,
        controllers: list[tuple[int, str, str]],
        namespaces: list[tuple[int, int]],
        *,
        model: str = "Linux",
        serial: str = "6c3e1d0b7a9f2e45",
    ) -> None:
        """A fabric subsystem with native multipath: controllers (n, transport, traddr), namespaces."""
        nqn = f"nqn.2024-01.io.edge-agent:array-{subsys}"
        sub = f"/devices/virtual/nvme-subsystem/nvme-subsys{subsys}"
        links = {
            f"nvme{n}": _rel("/sys" + sub, f"/sys/devices/virtual/nvme-fabrics/ctl/nvme{n}") for n, _, _ in controllers
        }
        self.device(sub, "nvme-subsystem", attrs={"subsysnqn": nqn, "model": model, "iopolicy": "numa"}, links=links)
        for n, transport, traddr in controllers:
            self.device(
                f"/devices/virtual/nvme-fabrics/ctl/nvme{n}",
                "nvme",
                node=f"nvme{n}",
                major=240,
                attrs={
                    "model": f"{model:<40}",
                    "serial": serial,
                    "firmware_rev": "6.1.0   ",
                    "transport": transport,
                    "address": f"traddr={traddr},trsvcid=4420,src_addr=10.20.0.5",
                    "subsysnqn": nqn,
                    "state": "live",
                },
            )
        for nsid, size in namespaces:
            self._namespace(sub, f"nvme{subsys}n{nsid}", nsid, size)

    def virtio_disk(self, pci_path: str, index: int, name: str, size: int, *, rotational: int = 1) -> str:
        vio = self.device(
            f"{pci_path}/virtio{index}",
            "virtio",
            driver="virtio_blk",
            attrs={"vendor": "0x1af4", "device": "0x0002", "status": "0x0000000f"},
            props={"MODALIAS": "virtio:d00000002v00001AF4"},
        )
        return self.device(
            f"{vio}/block/{name}",
            "block",
            node=name,
            major=254,
            links={"device": "../../../virtio" + str(index)},
            attrs={
                "size": str(size // 512),
                "serial": "",
                "queue/rotational": str(rotational),
                "queue/logical_block_size": "512",
                "removable": "0",
            },
            props={"DEVTYPE": "disk"},
        )

    def sata_disk(
        self, pci_path: str, port: int, name: str, vendor: str, model: str, serial: str, size: int, rotational: int
    ) -> str:
        host = f"{pci_path}/ata{port}/host{port - 1}"
        tgt = self.device(f"{host}/target{port - 1}:0:0", "scsi", props={"DEVTYPE": "scsi_target"})
        sdev = self.device(
            f"{tgt}/{port - 1}:0:0:0",
            "scsi",
            driver="sd",
            attrs={"vendor": f"{vendor:<8}", "model": f"{model:<16}", "rev": "0001", "type": "0"},
            props={"DEVTYPE": "scsi_device"},
        )
        return self.device(
            f"{sdev}/block/{name}",
            "block",
            node=name,
            major=8,
            links={"device": "../../../" + sdev.rsplit("/", 1)[1]},
            attrs={
                "size": str(size // 512),
                "queue/rotational": str(rotational),
                "queue/logical_block_size": "512",
                "queue/physical_block_size": "4096",
                "removable": "0",
            },
            props={"DEVTYPE": "disk", "ID_BUS": "ata", "ID_MODEL": model.replace(" ", "_"), "ID_SERIAL_SHORT": serial},
        )

    # -- network --------------------------------------------------------------------------------
    def nic(
        self,
        parent: str | None,
        name: str,
        mac: str,
        *,
        ifindex: int,
        speed: int | None = None,
        duplex: str = "full",
        operstate: str = "up",
        mtu: int = 1500,
        devtype: str | None = None,
        master: str | None = None,
        iflink: int | None = None,
        attrs: dict[str, str] | None = None,
    ) -> str:
        path = f"{parent}/net/{name}" if parent else f"/devices/virtual/net/{name}"
        a = {
            "address": mac,
            "mtu": str(mtu),
            "operstate": operstate,
            "ifindex": str(ifindex),
            "iflink": str(iflink if iflink is not None else ifindex),
            "type": "1",
            "carrier": "1" if operstate == "up" else "0",
        }
        if parent:
            a["speed"] = str(speed if speed is not None else -1)
            a["duplex"] = duplex
        a |= attrs or {}
        props = {"INTERFACE": name, "IFINDEX": str(ifindex)}
        if devtype:
            props["DEVTYPE"] = devtype
        links: dict[str, str] = {}
        if parent:
            links["device"] = _rel("/sys" + path, "/sys" + parent)
        if master:
            links["master"] = _rel("/sys" + path, f"/sys/devices/virtual/net/{master}")
        return self.device(path, "net", attrs=a, props=props, links=links)

    def loopback(self) -> None:
        self.nic(None, "lo", "00:00:00:00:00:00", ifindex=1, attrs={"type": "772"})

    def infiniband(self, pci_path: str, name: str) -> None:
        self.device(f"{pci_path}/infiniband/{name}", "infiniband", attrs={"node_type": "1: CA"})
