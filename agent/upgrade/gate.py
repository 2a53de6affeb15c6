"""What may defer a switch: the maintenance window and the update lock.

The window is ``HH:MM-HH:MM`` in UTC (it may wrap midnight; empty means any
time). The update lock is a file workloads hold with ``flock`` (as balena's
update lock): while any process holds it, the switch waits. During the switch
the agent holds the lock itself, so a workload can tell an update is running.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from agent.errors import ConfigError, ConfigProblem

_WINDOW = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")


@dataclass(frozen=True)
class Window:
    start: int  # minutes after midnight UTC
    end: int

    @classmethod
    def parse(cls, spec: str) -> Window | None:
        spec = spec.strip()
        if not spec:
            return None
        m = _WINDOW.match(spec)
        if m is None:
            raise ConfigError(
                [ConfigProblem("config", "upgrade.maintenance_window", f"{spec!r}: expected HH:MM-HH:MM (UTC)")]
            )
        h1, m1, h2, m2 = (int(x) for x in m.groups())
        return cls(h1 * 60 + m1, h2 * 60 + m2)

    def is_open(self, now: datetime) -> bool:
        minute = now.astimezone(UTC).hour * 60 + now.astimezone(UTC).minute
        if self.start == self.end:
            return True
        if self.start < self.end:
            return self.start <= minute < self.end
        return minute >= self.start or minute < self.end

    def seconds_until_open(self, now: datetime) -> float:
        if self.is_open(now):
            return 0.0
        now = now.astimezone(UTC)
        opening = now.replace(hour=self.start // 60, minute=self.start % 60, second=0, microsecond=0)
        if opening <= now:
            opening += timedelta(days=1)
        return (opening - now).total_seconds()

    def __str__(self) -> str:
        return f"{self.start // 60:02d}:{self.start % 60:02d}-{self.end // 60:02d}:{self.end % 60:02d} UTC"


class UpdateLock:
    """Non-blocking hold of the update lock file; ``held_by_other()`` explains a deferral."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None


def deferral(window: Window | None, lock: UpdateLock, now: datetime) -> tuple[str, float] | None:
    """Why the switch must wait, and how long before looking again; None when it may go (lock taken)."""
    if window is not None and not window.is_open(now):
        wait = window.seconds_until_open(now)
        return f"outside the maintenance window {window}; opens in {int(wait // 60)} min", min(wait, 60.0)
    if not lock.try_acquire():
        return f"update lock {lock.path} is held by a workload", 1.0
    return None
