"""The clocks an upgrade trial is timed by.

STANDARD LIBRARY ONLY (the launcher imports it before any venv is trusted).

A trial's deadline must not move when the wall clock does: an edge board without
an RTC boots in 1970 or at its last saved time, and NTP steps the clock by hours
once the network comes up. Deadlines are therefore kept on ``CLOCK_BOOTTIME``
(monotonic, counts suspend, starts at zero every boot) together with the boot id
(``/proc/sys/kernel/random/boot_id``) they were taken in; a boottime value from
another boot means nothing. The wall clock is only written down for people to
read (``switched_at``, ``last_rollback.at``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Protocol

BOOT_ID = "/proc/sys/kernel/random/boot_id"


class Clock(Protocol):
    def wall(self) -> float:
        """Seconds since the epoch, as the box believes now (may step)."""
        ...

    def boottime(self) -> float:
        """CLOCK_BOOTTIME seconds: never steps, meaningful only within ``boot_id()``."""
        ...

    def boot_id(self) -> str:
        """This boot's id; "" when the kernel does not say."""
        ...


class SystemClock:
    """The kernel's clocks. ``boot_id_file`` is the root seam's ``/proc/sys/kernel/random/boot_id``;
    a scratch root without one reads the host's, because CLOCK_BOOTTIME is the host's too."""

    def __init__(self, boot_id_file: Path = Path(BOOT_ID)) -> None:
        self.boot_id_file = boot_id_file

    def wall(self) -> float:
        return time.time()

    def boottime(self) -> float:
        return time.clock_gettime(time.CLOCK_BOOTTIME)

    def boot_id(self) -> str:
        for path in (self.boot_id_file, Path(BOOT_ID)):
            try:
                return path.read_text().strip()
            except OSError:
                continue
        return ""
