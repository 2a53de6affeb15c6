"""NIC link health from sysfs: operstate, carrier, carrier_changes and speed of physical ports.

``carrier_changes`` counts every carrier transition, so one flap (down, then up) adds 2. The
tracker keeps an hour of (time, counter) samples per port and reports the flaps within it. The
speed a port should run at comes from ``[health] nic_expected_mbps`` (globs); ports not listed are
compared with the fastest speed seen since the agent started (the link modes a port supports are
only available through ethtool's netlink API, which the agent does not speak).
"""

from __future__ import annotations

import fnmatch
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from agent.health.readings import NicHealth

WINDOW = 3600.0


def _read(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace").strip()
    except OSError:  # EINVAL: speed/carrier of an interface that is down
        return None


def _int(raw: str | None) -> int | None:
    return int(raw) if raw is not None and raw.lstrip("-").isdigit() else None


@dataclass
class _Port:
    samples: deque[tuple[float, int]] = field(default_factory=deque)
    fastest: int = 0
    was_up: bool = False
    modes_known: bool = False  # ethtool has been asked (see linkmodes)
    supported: int | None = None  # fastest supported link mode, when ethtool reports one


@dataclass
class LinkTracker:
    sys_root: Path = Path("/sys")
    _ports: dict[str, _Port] = field(default_factory=dict)

    def expected(self, name: str, configured: Mapping[str, int], port: _Port) -> int | None:
        for glob, mbps in configured.items():
            if fnmatch.fnmatchcase(name, glob):
                return mbps
        return port.supported or port.fastest or None

    def unknown_modes(self, names: Sequence[str]) -> list[str]:
        """Ports whose supported link modes have not been asked for yet."""
        return [n for n in names if not (n in self._ports and self._ports[n].modes_known)]

    def set_modes(self, name: str, fastest: int | None) -> None:
        port = self._ports.setdefault(name, _Port())
        port.modes_known, port.supported = True, fastest

    def read(self, names: Sequence[str], now: float, configured: Mapping[str, int]) -> tuple[NicHealth, ...]:
        out = [self._read_one(name, now, configured) for name in names]
        for gone in set(self._ports) - set(names):
            del self._ports[gone]
        return tuple(out)

    def _read_one(self, name: str, now: float, configured: Mapping[str, int]) -> NicHealth:
        base = self.sys_root / "class/net" / name
        operstate = _read(base / "operstate")
        if operstate is None:
            return NicHealth(name=name, unknown=f"{base}/operstate cannot be read", unknown_reason="LinkUnreadable")
        carrier_raw = _int(_read(base / "carrier"))
        carrier = None if carrier_raw is None else carrier_raw == 1
        changes = _int(_read(base / "carrier_changes"))
        speed = _int(_read(base / "speed")) if carrier else None
        speed = speed if speed and speed > 0 else None
        port = self._ports.setdefault(name, _Port())
        port.was_up = port.was_up or bool(carrier)
        if speed:
            port.fastest = max(port.fastest, speed)
        flaps = None
        if changes is not None:
            if port.samples and changes < port.samples[-1][1]:
                port.samples.clear()  # counter reset: the driver was reloaded
            port.samples.append((now, changes))
            while len(port.samples) > 1 and now - port.samples[1][0] >= WINDOW:
                port.samples.popleft()
            flaps = (changes - port.samples[0][1]) // 2
        return NicHealth(
            name=name,
            operstate=operstate,
            carrier=carrier,
            carrier_changes=changes,
            flaps_last_hour=flaps,
            speed_mbps=speed,
            expected_mbps=self.expected(name, configured, port),
            was_up=port.was_up,
        )
