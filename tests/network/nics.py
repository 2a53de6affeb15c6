"""Generated NIC inventories: what a multi-NIC edge box looks like to the collector."""

from __future__ import annotations

from typing import Any

from agent.model.inventory import Nic


def nic(name: str, *addresses: str, **kw: Any) -> Nic:
    kind = kw.pop("kind", "physical")
    return Nic(
        name=name,
        kind=kind,
        physical=kind == "physical",
        operstate=kw.pop("operstate", "up"),
        addresses=addresses,
        **kw,
    )


def edge_box() -> tuple[Nic, ...]:
    """eno1: 1G management (default route); two 100G ports bonded (bond0, v4 + v6); a VLAN for storage;
    an LTE modem; flannel/cni0 plumbing from an earlier k3s start."""
    return (
        nic("eno1", "192.0.2.10/24", "fe80::1/64", speed_mbps=1000, default_route=True),
        nic("ens1f0", speed_mbps=100000, bond_master="bond0"),
        nic("ens1f1", speed_mbps=100000, bond_master="bond0"),
        nic("bond0", "198.51.100.7/24", "2001:db8:51::7/64", "fe80::2/64", kind="bond"),
        nic("bond0.300", "203.0.113.5/24", kind="vlan"),
        nic("wwan0", "100.64.9.9/30", kind="virtual", default_route=False),
        nic("cni0", "10.42.0.1/24", kind="bridge"),
        nic("flannel.1", "10.42.0.0/32", kind="tunnel"),
    )
