"""The interfaces' addresses from getifaddrs(3) are psutil's, as the inventory read them before."""

from __future__ import annotations

import ipaddress
import socket

import psutil

from agent.inventory.ifaddrs import host_addresses


def psutil_addresses() -> dict[str, tuple[str, ...]]:
    """What the NIC collector built from ``psutil.net_if_addrs()``."""
    result: dict[str, tuple[str, ...]] = {}
    for name, addrs in psutil.net_if_addrs().items():
        cidrs = []
        for a in addrs:
            if a.family not in (socket.AF_INET, socket.AF_INET6):
                continue
            ip = ipaddress.ip_address(a.address.split("%", 1)[0])
            prefix = bin(int(ipaddress.ip_address(a.netmask))).count("1") if a.netmask else None
            cidrs.append(f"{ip}/{prefix}" if prefix is not None else str(ip))
        result[name] = tuple(cidrs)
    return result


def test_every_interface_and_address_psutil_sees() -> None:
    assert host_addresses() == psutil_addresses()


def test_loopback_has_its_addresses() -> None:
    assert "127.0.0.1/8" in host_addresses()["lo"]
