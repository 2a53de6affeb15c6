"""The Controller protocol and the supervisor that keeps controllers running.

A controller owns one concern. Its ``run`` loops forever: observe, compare
with desired state, act idempotently, publish conditions. A missing input
means wait, not error. When ``run`` raises, the supervisor shows the failure
as a ``<Name>Healthy=False`` condition and restarts it with capped backoff.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Sequence
from typing import Protocol

from agent.status import StatusBoard

log = logging.getLogger("agent.supervisor")


class Controller(Protocol):
    name: str

    async def run(self) -> None: ...


def backoff_delay(attempt: int, base: float = 0.5, cap: float = 30.0, jitter: float = 0.2) -> float:
    """Capped exponential backoff with +-jitter; attempt counts from 1."""
    delay = min(cap, base * (2 ** min(max(0, attempt - 1), 32)))  # the exponent is capped: no float overflow
    return float(max(0.0, delay * (1 + random.uniform(-jitter, jitter))))  # noqa: S311


class Supervisor:
    def __init__(
        self,
        controllers: Sequence[Controller],
        board: StatusBoard,
        *,
        base_delay: float = 0.5,
        max_delay: float = 30.0,
        healthy_after: float = 60.0,
    ) -> None:
        self.controllers = list(controllers)
        self.board = board
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.healthy_after = healthy_after
        self.restarts: dict[str, int] = {c.name: 0 for c in self.controllers}
        self._tasks: list[asyncio.Task[None]] = []

    @staticmethod
    def condition_type(name: str) -> str:
        """Turn "remote-api" into "RemoteApiHealthy"."""
        return "".join(part[:1].upper() + part[1:] for part in name.replace("_", "-").split("-")) + "Healthy"

    def start(self) -> None:
        for c in self.controllers:
            self._tasks.append(asyncio.create_task(self._keep(c), name=f"controller:{c.name}"))

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    async def _keep(self, c: Controller) -> None:
        ctype = self.condition_type(c.name)
        attempt = 0
        while True:
            self.board.set_condition(ctype, "True", "Running", f"controller {c.name} is running")
            started = time.monotonic()
            try:
                await c.run()
                raise RuntimeError("controller returned; controllers must loop until cancelled")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                attempt = 1 if time.monotonic() - started > self.healthy_after else attempt + 1
                self.restarts[c.name] += 1
                delay = backoff_delay(attempt, self.base_delay, self.max_delay)
                log.error(
                    "controller %s failed (%s: %s); restart %d in %.1fs",
                    c.name,
                    type(exc).__name__,
                    exc,
                    self.restarts[c.name],
                    delay,
                )
                self.board.set_condition(
                    ctype,
                    "False",
                    "Crashed",
                    f"{type(exc).__name__}: {exc} (restart {self.restarts[c.name]} in {delay:.1f}s)",
                )
                await asyncio.sleep(delay)
