"""The versions a box reports as blocked (failed there once or more), read from its last heartbeat.

Agents publish ``blocked_versions`` ({kind: {version: failures}}) in the
``upgrade`` section of their status (agent.upgrade.blocks); the registrar
stores each heartbeat's status per node, so this is what ``nodes list/show``
print and what a rollout checks before it asks a box for a version.
"""

from __future__ import annotations

from collections.abc import Mapping

from agent.registrar.registry import Node


def blocked_versions(node: Node) -> dict[str, dict[str, int]]:
    sections = node.status.get("sections")
    upgrade = sections.get("upgrade") if isinstance(sections, Mapping) else None
    raw = upgrade.get("blocked_versions") if isinstance(upgrade, Mapping) else None
    out: dict[str, dict[str, int]] = {}
    if not isinstance(raw, Mapping):
        return out
    for kind, versions in raw.items():
        if isinstance(versions, Mapping):
            good = {str(v): n for v, n in versions.items() if isinstance(n, int) and not isinstance(n, bool) and n > 0}
            if good:
                out[str(kind)] = good
    return out


def failures(node: Node, kind: str, version: str) -> int:
    """How often ``kind version`` failed on the box (0: not blocked there, as far as it reported)."""
    return blocked_versions(node).get(kind, {}).get(version, 0)


def describe(node: Node) -> str:
    return ", ".join(
        f"{kind} {v} (failed {n}x)" for kind, versions in blocked_versions(node).items() for v, n in versions.items()
    )
