"""A value that controllers publish and others wait on (config, inventory, assignment)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Watch(Generic[T]):
    """Holds the latest value and a version that moves whenever it changes."""

    def __init__(self, value: T) -> None:
        self._value = value
        self._version = 0
        self._cond = asyncio.Condition()

    @property
    def value(self) -> T:
        return self._value

    @property
    def version(self) -> int:
        return self._version

    def set(self, value: T) -> bool:
        if value == self._value:
            return False
        self._value = value
        self._version += 1
        asyncio.get_running_loop().create_task(self._notify())
        return True

    async def _notify(self) -> None:
        async with self._cond:
            self._cond.notify_all()

    async def wait_newer(self, version: int) -> tuple[int, T]:
        """Return as soon as the version is newer than ``version``."""
        async with self._cond:
            await self._cond.wait_for(lambda: self._version > version)
            return self._version, self._value


async def any_newer(watches: Sequence[Watch[Any]], timeout: float | None) -> None:
    """Return when any of ``watches`` moves past the version it has now, or after ``timeout``."""
    tasks = [asyncio.ensure_future(w.wait_newer(w.version)) for w in watches]
    try:
        await asyncio.wait(tasks, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
        # gather, not `suppress(CancelledError): await t`: that would also swallow a cancellation of
        # the caller arriving meanwhile, and a controller would go on forever (seen under load)
        await asyncio.gather(*tasks, return_exceptions=True)
