"""Which interfaces hold a default route, from the kernel's routing tables in /proc.

The address choice (agent/network/choose.py) needs it for the "not the default
route" selector: k3s and k0s take the default-route interface when told
nothing, which on a multi-NIC edge box is often the management port or LTE.
``/proc/net/route`` and ``/proc/net/ipv6_route`` describe the network namespace
of the reading process, so a test run under ``ip netns exec`` sees that namespace.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from agent.inventory.records import Nic

RTF_UP = 0x0001
RTF_REJECT = 0x0200


def _read(path: str) -> list[str]:
    try:
        with open(path) as f:
            return f.read().splitlines()
    except FileNotFoundError:  # no IPv6 in this kernel, or no IPv4
        return []


def default_route_interfaces(proc: str | os.PathLike[str] = "/proc") -> frozenset[str]:
    """Names of the interfaces that hold an up, non-reject default route (either family)."""
    names: set[str] = set()
    for line in _read(os.path.join(proc, "net", "route"))[1:]:
        f = line.split()
        if len(f) >= 8 and f[1] == "00000000" and f[7] == "00000000" and int(f[3], 16) & RTF_UP:
            names.add(f[0])
    for line in _read(os.path.join(proc, "net", "ipv6_route")):
        f = line.split()
        if len(f) < 10 or f[0] != "0" * 32 or f[1] != "00":
            continue
        flags = int(f[8], 16)
        if flags & RTF_UP and not flags & RTF_REJECT and f[9] != "lo":
            names.add(f[9])
    return frozenset(names)


def with_default_routes(nics: Iterable[Nic], names: frozenset[str]) -> tuple[Nic, ...]:
    """``nics`` with ``default_route`` set from ``names`` (the scanner's hook)."""
    return tuple(n._replace(default_route=n.name in names) for n in nics)
