"""Network interfaces: physical or virtual (bridge, bond, vlan, veth, tunnel), link and SR-IOV.

Loopback is left out. Link speed and duplex are read for physical interfaces
only; a down link or a driver that reports no speed gives null with a reason.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import pyudev

from agent.inventory.enumerate import subsystem_devices
from agent.inventory.pci import pci_parent, udev_property
from agent.inventory.records import Nic, NicKind, PciDevice
from agent.inventory.sysfs import Fields, listdir

ARPHRD_LOOPBACK = 772
_TUNNEL_TYPES = frozenset({768, 769, 776, 778, 823, 65534})  # ipip, ip6ip6, sit, gre, ip6gre, none
_DEVTYPES: dict[str, NicKind] = {
    "bridge": "bridge",
    "bond": "bond",
    "vlan": "vlan",
    "vxlan": "tunnel",
    "geneve": "tunnel",
    "wireguard": "tunnel",
}


def _kind(dev: pyudev.Device, f: Fields, physical: bool) -> NicKind:
    devtype = udev_property(dev, "DEVTYPE")
    if devtype in _DEVTYPES:
        return _DEVTYPES[devtype]
    if f.exists("bridge"):
        return "bridge"
    if f.exists("bonding"):
        return "bond"
    if physical:
        return "physical"
    iftype = f.integer("type", "kind", required=False)
    if iftype in _TUNNEL_TYPES:
        return "tunnel"
    ifindex = f.integer("ifindex", "kind", required=False)
    iflink = f.integer("iflink", "kind", required=False)
    if devtype is None and ifindex is not None and iflink is not None and iflink != ifindex:
        return "veth"
    return "virtual"


def nic_record(dev: pyudev.Device, pci: Mapping[str, PciDevice], addresses: Mapping[str, tuple[str, ...]]) -> Nic:
    f = Fields(dev.sys_path)
    physical = f.exists("device")
    kind = _kind(dev, f, physical)
    master = f.link("master")
    bond_master = master if master and f.exists("master/bonding") else None
    pdev = pci_parent(dev) if physical else None
    pci_info = pci.get(pdev.sys_name) if pdev is not None else None
    speed: int | None = None
    duplex: str | None = None
    total_vfs = num_vfs = None
    rdma: tuple[str, ...] = ()
    if physical:
        speed = f.integer("speed", "speed_mbps")
        if speed is not None and speed <= 0:
            f.note("speed_mbps", f"speed: driver reports {speed} (no link or unknown)")
            speed = None
        duplex = f.text("duplex", "duplex")
        if duplex == "unknown":
            f.note("duplex", "duplex: driver reports unknown")
            duplex = None
        total_vfs = f.integer("device/sriov_totalvfs", "sriov_total_vfs", required=False)
        num_vfs = f.integer("device/sriov_numvfs", "sriov_num_vfs", required=False)
        if pdev is not None:
            rdma = tuple(listdir(os.path.join(pdev.sys_path, "infiniband")))
    return Nic(
        name=dev.sys_name,
        kind=kind,
        physical=physical,
        bond_master=bond_master,
        is_vf=pdev is not None and os.path.exists(os.path.join(pdev.sys_path, "physfn")),
        driver=f.link("device/driver"),
        pci_address=pdev.sys_name if pdev is not None else None,
        numa_node=pci_info.numa_node if pci_info else None,
        mac=f.text("address", "mac", required=physical),
        mtu=f.integer("mtu", "mtu"),
        operstate=f.text("operstate", "operstate"),
        speed_mbps=speed,
        duplex=duplex,
        sriov_total_vfs=total_vfs,
        sriov_num_vfs=num_vfs,
        rdma_devices=rdma,
        addresses=addresses.get(dev.sys_name, ()),
        default_route=False,  # the scan marks the default-route interfaces (agent/inventory/addresses.py)
        problems=f.problems,
    )


def collect_nics(
    udev: pyudev.Context, pci: Mapping[str, PciDevice], addresses: Mapping[str, tuple[str, ...]]
) -> tuple[Nic, ...]:
    nics: list[Nic] = []
    for dev in subsystem_devices(udev, "net"):
        f = Fields(dev.sys_path)
        if dev.sys_name == "lo" or f.integer("type", "type", required=False) == ARPHRD_LOOPBACK:
            continue
        nics.append(nic_record(dev, pci, addresses))
    return tuple(sorted(nics, key=lambda n: n.name))
