"""The supervisor restarts a failing controller with backoff and shows the failure."""

from __future__ import annotations

import asyncio

from agent.controller import Supervisor, backoff_delay
from agent.status import StatusBoard


class Flaky:
    name = "flaky"

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.starts = 0

    async def run(self) -> None:
        self.starts += 1
        if self.starts <= self.failures:
            raise OSError(f"disk on fire #{self.starts}")
        await asyncio.Event().wait()


async def test_failure_shows_as_condition_then_recovers() -> None:
    board = StatusBoard()
    c = Flaky(failures=2)
    sup = Supervisor([c], board, base_delay=0.05, max_delay=0.1)
    sup.start()
    seen_false = None
    for _ in range(200):
        cond = board.condition("FlakyHealthy")
        if cond and cond.status == "False":
            seen_false = cond
        if c.starts == 3 and cond and cond.status == "True":
            break
        await asyncio.sleep(0.01)
    await sup.stop()
    assert seen_false is not None and seen_false.reason == "Crashed"
    assert "OSError: disk on fire" in seen_false.message
    assert c.starts == 3 and sup.restarts["flaky"] == 2
    assert board.condition("FlakyHealthy").status == "True"  # type: ignore[union-attr]


async def test_a_controller_that_returns_is_restarted_too() -> None:
    class Quitter:
        name = "quitter"
        runs = 0

        async def run(self) -> None:
            self.runs += 1

    board = StatusBoard()
    q = Quitter()
    sup = Supervisor([q], board, base_delay=0.01, max_delay=0.02)
    sup.start()
    await asyncio.sleep(0.2)
    await sup.stop()
    assert q.runs >= 3
    cond = board.condition("QuitterHealthy")
    assert cond is not None and "must loop" in cond.message


def test_backoff_is_capped_and_grows() -> None:
    delays = [backoff_delay(n, base=1, cap=30, jitter=0) for n in range(1, 10)]
    assert delays[:5] == [1, 2, 4, 8, 16] and max(delays) == 30
    assert all(0.8 <= backoff_delay(1, base=1, cap=30) <= 1.2 for _ in range(50))
    assert backoff_delay(100_000, base=1, cap=300, jitter=0) == 300  # hours of outage: still a number
