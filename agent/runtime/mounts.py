"""What is mounted on the box, from the kernel's mount table, in box paths.

The table is ``/proc/self/mountinfo`` under the root seam; a scratch root without
its own ``proc`` reads the host's (its mounts are the host's), and only mount
points at or below the root count, given as paths on the box.
"""

from __future__ import annotations

import re
from pathlib import Path

from agent.errors import RuntimeRemoveError
from agent.paths import Paths

MOUNTINFO = "/proc/self/mountinfo"
_OCTAL = re.compile(r"\\([0-7]{3})")


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash as \\040, \\011, \\012, \\134."""
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), field)


def within(path: str, directory: str) -> bool:
    """``path`` is ``directory`` or below it (box paths)."""
    base = directory.rstrip("/")
    return path == (base or "/") or path.startswith(base + "/")


class Mounts:
    def __init__(self, paths: Paths, table: Path | None = None) -> None:
        self.paths = paths
        own = paths.under(MOUNTINFO)
        self.table = table or (own if own.exists() else Path(MOUNTINFO))

    def points(self) -> list[str]:
        """Box paths of every mount point under the root, as listed (later mounts last)."""
        root = str(self.paths.root).rstrip("/")
        out: list[str] = []
        for line in self.table.read_text().splitlines():
            fields = line.split()
            if len(fields) < 5:
                continue
            point = _unescape(fields[4])
            if not root:
                out.append(point)
            elif within(point, root):
                out.append(point[len(root) :] or "/")
        return out

    def below(self, directory: str) -> list[str]:
        """Mount points at or below ``directory``, deepest first (the order to unmount them in)."""
        found = {p for p in self.points() if within(p, directory)}
        return sorted(found, key=lambda p: (p.count("/"), p), reverse=True)

    def refuse_if_mounted(self, directories: tuple[str, ...] | list[str]) -> None:
        """Raise before anything is deleted when a mount remains at or below one of ``directories``."""
        for directory in directories:
            left = self.below(directory)
            if left:
                raise RuntimeRemoveError(
                    f"not removing {directory}: {left[0]} is still mounted"
                    + (f" (and {len(left) - 1} more below it)" if len(left) > 1 else "")
                    + "; unmount it, then uninstall again. Nothing was deleted."
                )
