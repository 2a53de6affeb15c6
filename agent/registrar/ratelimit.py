"""Per-source limit on bootstrap-token guessing: a token bucket that only failures drain.

``SharedGuessLimiter`` (what the registrar uses) keeps the buckets in the registry, shared by replicas;
``GuessLimiter`` is the same arithmetic in memory.

A source (client IP) may fail ``burst`` times in a row, then one more try
per ``per_seconds / burst``; successes cost nothing, so a first-boot storm of
honest boxes behind one NAT is never slowed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol


class GuessLimiter:
    def __init__(
        self,
        burst: int = 10,
        per_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        max_sources: int = 100_000,
    ) -> None:
        self.burst = float(burst)
        self.rate = burst / per_seconds
        self.clock = clock
        self.max_sources = max_sources
        self._buckets: dict[str, tuple[float, float]] = {}

    def _level(self, source: str) -> float:
        level, at = self._buckets.get(source, (self.burst, self.clock()))
        return min(self.burst, level + (self.clock() - at) * self.rate)

    def retry_after(self, source: str) -> float:
        """Seconds until ``source`` may try again; 0 when it may try now."""
        level = self._level(source)
        return 0.0 if level >= 1.0 else (1.0 - level) / self.rate

    def failed(self, source: str) -> None:
        if len(self._buckets) >= self.max_sources:
            self._prune()
        self._buckets[source] = (self._level(source) - 1.0, self.clock())

    def _prune(self) -> None:
        full = [s for s in self._buckets if self._level(s) >= self.burst]
        for s in full:
            del self._buckets[s]
        if len(self._buckets) >= self.max_sources:  # still full: forget the oldest half
            for s in sorted(self._buckets, key=lambda s: self._buckets[s][1])[: self.max_sources // 2]:
                del self._buckets[s]


class SharedGuessLimiter:
    """The same budget kept in the registry (table ``guesses``), so every replica of the registrar
    sees the failures the others counted: a guesser spreading tries over replicas gets no more."""

    def __init__(
        self, registry: GuessStore, burst: int = 10, per_seconds: float = 60.0, clock: Callable[[], float] = time.time
    ) -> None:
        self.registry = registry
        self.burst = float(burst)
        self.rate = burst / per_seconds
        self.clock = clock

    def retry_after(self, source: str) -> float:
        level = self.registry.guess_level(source, self.burst, self.rate, self.clock())
        return 0.0 if level >= 1.0 else (1.0 - level) / self.rate

    def failed(self, source: str) -> None:
        self.registry.guess_failed(source, self.burst, self.rate, self.clock())


class GuessStore(Protocol):
    def guess_level(self, source: str, burst: float, rate: float, now: float) -> float: ...
    def guess_failed(self, source: str, burst: float, rate: float, now: float) -> None: ...
