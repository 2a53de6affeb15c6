"""Which interfaces a selector matches and which of their addresses are usable (pure)."""

from __future__ import annotations

import fnmatch
import ipaddress
from collections.abc import Sequence

from agent.model.inventory import Nic
from agent.model.network import NicSelector

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Interfaces the runtime, its CNI or a container engine creates (by the names they give them): choosing
# one would move the node onto its own overlay, and they come and go with pods.
_RUNTIME_NAMES = ("cni*", "flannel*", "kube-*", "cali*", "vxlan.calico", "tunl*", "cilium*", "lxc*", "veth*", "docker*")


def eligible(nic: Nic) -> bool:
    """An interface that can carry the node's address: not a bond's member, not loopback, not CNI plumbing."""
    if nic.bond_master is not None or nic.kind == "loopback":
        return False
    return not any(fnmatch.fnmatchcase(nic.name, pat) for pat in _RUNTIME_NAMES)


def speed_mbps(nic: Nic, nics: Sequence[Nic]) -> int | None:
    """The link speed; a bond's is the sum of its members' known speeds."""
    if nic.kind == "bond":
        members = [n.speed_mbps for n in nics if n.bond_master == nic.name and n.speed_mbps]
        return sum(members) if members else None
    return nic.speed_mbps


def link_matches(sel: NicSelector, nic: Nic, nics: Sequence[Nic]) -> bool:
    """The interface-level criteria (everything but the address)."""
    if not eligible(nic):
        return False
    if sel.name and not fnmatch.fnmatchcase(nic.name, sel.name):
        return False
    if sel.kind and nic.kind != sel.kind:
        return False
    if sel.not_default_route and nic.default_route:
        return False
    if sel.min_speed_mbps:
        speed = speed_mbps(nic, nics)
        if speed is None or speed < sel.min_speed_mbps:
            return False
    return True


def usable(nic: Nic, version: int) -> list[IPAddress]:
    """The interface's addresses of one IP version that can be a node IP (not link-local, not loopback)."""
    out: list[IPAddress] = []
    for text in nic.addresses:
        try:
            ip = ipaddress.ip_interface(text).ip
        except ValueError:
            continue
        if ip.version == version and not ip.is_link_local and not ip.is_loopback and not ip.is_multicast:
            out.append(ip)
    return out


def in_cidr(ip: IPAddress, cidr: str) -> bool:
    """True when ``cidr`` is empty, of the other family, or holds ``ip``."""
    if not cidr:
        return True
    net = ipaddress.ip_network(cidr, strict=False)
    return net.version != ip.version or ip in net
