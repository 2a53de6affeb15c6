"""Version skew for node upgrades (pure): never downgrade, never skip a minor.

k3s and k0s both say: upgrade one minor at a time, no downgrades (contract A7, B5).
Which nodes go first (servers before agents) is the fleet rollout's job.
"""

from __future__ import annotations

import re

_VERSION = re.compile(r"^v(\d+)\.(\d+)\.(\d+)(?:[-+](?:k3s|k0s\.?)?(\d+))?")


def parse(version: str) -> tuple[int, int, int, int] | None:
    """v1.33.1+k3s1 -> (1, 33, 1, 1); v1.36.3+k0s.1 -> (1, 36, 3, 1); None if unparsable."""
    m = _VERSION.match(version)
    if not m:
        return None
    major, minor, patch, build = m.groups()
    return int(major), int(minor), int(patch), int(build or 0)


def upgrade_problem(installed: str, candidate: str) -> str | None:
    """Why replacing ``installed`` by ``candidate`` breaks the skew rules, or None."""
    old, new = parse(installed), parse(candidate)
    if old is None or new is None:
        return None
    if new < old:
        return f"{candidate} is older than the installed {installed}; downgrades are not supported"
    if new[0] != old[0] or new[1] > old[1] + 1:
        return f"{installed} -> {candidate} skips a minor version; upgrade to the latest v{old[0]}.{old[1] + 1}.x first"
    return None
