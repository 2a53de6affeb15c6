"""What failed stays failed: the versions a box will not take again on its own.

One failed trial blocks that version on this box: an agent candidate that
never became healthy (the launcher's rollback, counted in ``launch.json`` by
agent.upgrade.slots), or a k3s/k0s/air-gap version whose install or health
gate failed (counted by the manager in the ``upgrade`` state section).
Unforced requests, fleet rollouts and their resumes are refused with the code
``version-blocked``. A forced request is the operator's explicit decision: it
is tried, the block is not lifted, and if it fails too the count grows. Only a
commit of that version clears its count.

The box reports ``blocked_versions`` ({kind: {version: failures}}) in its
``upgrade`` status section, which heartbeats carry to the registrar.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from agent.errors import VersionBlocked
from agent.upgrade.slots import BLOCK_AFTER_FAILURES

BLOCKED: Final = "version-blocked"  # UpgradeRecord.code of a request refused for a blocked version


def check(kind: str, version: str, failures: int, *, force: bool) -> bool:
    """Raise VersionBlocked for an unforced request of a blocked version; True when forced past a block."""
    if failures < BLOCK_AFTER_FAILURES:
        return False
    if not force:
        raise VersionBlocked(kind, version, failures)
    return True


def counts(raw: object) -> dict[str, dict[str, int]]:
    """``{kind: {version: failures}}`` from a stored document, dropping what is not that shape."""
    out: dict[str, dict[str, int]] = {}
    if not isinstance(raw, Mapping):
        return out
    for kind, versions in raw.items():
        if not isinstance(versions, Mapping):
            continue
        good = {str(v): int(n) for v, n in versions.items() if isinstance(n, int) and n > 0}
        if good:
            out[str(kind)] = good
    return out


def blocked_versions(agent: Mapping[str, int], kinds: Mapping[str, Mapping[str, int]]) -> dict[str, dict[str, int]]:
    """Every blocked version by kind, with its failure count (the agent's from launch.json)."""
    out: dict[str, dict[str, int]] = {}
    for kind, versions in (("agent", agent), *sorted(kinds.items())):
        blocked = {v: int(n) for v, n in sorted(versions.items()) if int(n) >= BLOCK_AFTER_FAILURES}
        if blocked:
            out[kind] = blocked
    return out


def describe(blocked: Mapping[str, Mapping[str, int]]) -> str:
    """``agent 2.0 (failed 1x), k3s v1.34.1+k3s1 (failed 2x)`` for a status line."""
    return ", ".join(f"{kind} {v} (failed {n}x)" for kind, versions in blocked.items() for v, n in versions.items())
