"""The interfaces' IPv4/IPv6 addresses, from libc's getifaddrs(3) through ctypes.

What ``psutil.net_if_addrs()`` reads, without importing psutil (~10 ms of a
one-shot scan's start; ctypes is loaded for libudev anyway). Each address comes
with its netmask as a prefix length; an IPv6 link-local address is written
without its ``%scope`` suffix.
"""

from __future__ import annotations

import _socket  # the C module: socket.py would import enum and selectors (~3 ms of a one-shot's start)
import ctypes
import ipaddress
import os

# family -> (offset, length) of the address in its sockaddr
_FAMILIES: dict[int, tuple[int, int]] = {_socket.AF_INET: (4, 4), _socket.AF_INET6: (8, 16)}


class _Ifaddrs(ctypes.Structure):
    pass


_Ifaddrs._fields_ = [
    ("ifa_next", ctypes.POINTER(_Ifaddrs)),
    ("ifa_name", ctypes.c_char_p),
    ("ifa_flags", ctypes.c_uint),
    ("ifa_addr", ctypes.c_void_p),
    ("ifa_netmask", ctypes.c_void_p),
    ("ifa_ifu", ctypes.c_void_p),
    ("ifa_data", ctypes.c_void_p),
]


def _family(sockaddr: int | None) -> int | None:
    return ctypes.c_ushort.from_address(sockaddr).value if sockaddr else None


def _packed(sockaddr: int, family: int) -> bytes:
    """The address bytes of a sockaddr_in / sockaddr_in6 (a netmask is read as its address's family)."""
    offset, length = _FAMILIES[family]
    return ctypes.string_at(sockaddr + offset, length)


def _cidr(sockaddr: int, netmask: int | None, family: int) -> str:
    ip = ipaddress.ip_address(_packed(sockaddr, family))
    if not netmask:
        return str(ip)
    return f"{ip}/{bin(int.from_bytes(_packed(netmask, family), 'big')).count('1')}"


def host_addresses() -> dict[str, tuple[str, ...]]:
    """Interface name -> its IPv4/IPv6 addresses as CIDR strings, in the kernel's order."""
    libc = ctypes.CDLL(None, use_errno=True)
    head = ctypes.POINTER(_Ifaddrs)()
    if libc.getifaddrs(ctypes.byref(head)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"getifaddrs: {os.strerror(err)}")
    found: dict[str, list[str]] = {}
    try:
        entry = head
        while entry:
            ifa = entry.contents
            name = (ifa.ifa_name or b"").decode("utf-8", "replace")
            addresses = found.setdefault(name, [])
            family = _family(ifa.ifa_addr)
            if family in _FAMILIES:
                addresses.append(_cidr(ifa.ifa_addr, ifa.ifa_netmask, family))
            entry = ifa.ifa_next
    finally:
        libc.freeifaddrs(head)
    return {name: tuple(addrs) for name, addrs in found.items()}
