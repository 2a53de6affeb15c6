"""Byte progress shared between a worker thread and the event loop.

The thread only assigns integers; the loop reads them when it publishes.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass
class Progress:
    done: int = 0
    total: int | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)

    def reset(self, total: int | None) -> None:
        self.done, self.total = 0, total

    def advance(self, n: int) -> None:
        self.done += n
        if self.cancelled.is_set():
            raise InterruptedError("cancelled")
