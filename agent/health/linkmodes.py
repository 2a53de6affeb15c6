"""The fastest speed a port supports, from the "Supported link modes" of ``ethtool IF``.

Link modes do not change while a port exists, so the controller asks once per port and keeps the
answer; a port whose driver reports none ("Not reported", virtio) gives ``None`` and the expected
speed falls back to the fastest speed seen. A missing ethtool (cheap to look for) is looked for
again next poll; an ethtool that fails for a port is not asked again about that port.
"""

from __future__ import annotations

import re

from agent.errors import CommandNotFound, ExecError
from agent.sysexec import Runner

_MODE = re.compile(r"^(\d+)base", re.ASCII)


def max_supported_mbps(text: str) -> int | None:
    """Highest speed among ``Supported link modes:`` (and its continuation lines)."""
    speeds: list[int] = []
    inside = False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("Supported link modes:"):
            inside = True
            stripped = stripped.split(":", 1)[1]
        elif inside and (":" in stripped or not line[:1].isspace()):
            break
        if inside:
            speeds += [int(m.group(1)) for tok in stripped.split() if (m := _MODE.match(tok))]
    return max(speeds) if speeds else None


async def query(runner: Runner, name: str, timeout: float) -> tuple[bool, int | None]:
    """(final, fastest supported Mb/s). ``final`` is False only when ethtool is not installed."""
    try:
        done = await runner.run(("ethtool", name), timeout=timeout)
    except CommandNotFound:
        return False, None
    except ExecError:
        return True, None
    return True, max_supported_mbps(done.stdout)
