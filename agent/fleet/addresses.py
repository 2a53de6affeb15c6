"""Addresses a box reports to the registrar: where its remote API and (for servers) Kubernetes answer."""

from __future__ import annotations

import ipaddress
import socket

import psutil


def split_listen(listen: str) -> tuple[str, int] | None:
    """``HOST:PORT`` (IPv6 in brackets) -> (host, port); empty -> None."""
    if not listen.strip():
        return None
    host, sep, port = listen.strip().rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"api.remote_listen: expected HOST:PORT, got {listen!r}")
    return host.strip("[]") or "0.0.0.0", int(port)  # noqa: S104 the remote API is for the fleet


def _usable(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return not (ip.is_loopback or ip.is_link_local or ip.is_unspecified or ip.is_multicast)


def local_addresses(listen_host: str = "") -> list[str]:
    """The listen host first when it is a specific address, then every global/private address."""
    found: list[str] = []
    try:
        if listen_host and not ipaddress.ip_address(listen_host).is_unspecified:
            found.append(listen_host)
    except ValueError:
        pass
    for addrs in psutil.net_if_addrs().values():
        for a in addrs:
            if a.family in (socket.AF_INET, socket.AF_INET6):
                addr = a.address.split("%")[0]
                if _usable(addr):
                    found.append(addr)
    return list(dict.fromkeys(found))
