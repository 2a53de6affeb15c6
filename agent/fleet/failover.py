"""Several registrar replicas (``fleet.url`` as a list): which one the box talks to, and failing over.

Every fleet call (EST cacerts, enroll, reenroll, register, heartbeat, CRL) goes
through :meth:`Replicas.call`, which tries the replica that worked last and, on
a connection error (:class:`RegistrarDown`: refused, timed out, closed, TLS
handshake failure, a 502/503/504), the next one at once. When every replica
has failed in one round the last error is raised and the enrollment
controller's capped exponential backoff applies before the next round. Any
other answer (a refusal, approval pending, a 500) comes from a live registrar
and is not failed over: the box sticks with it.

A replica that answered 503 + Retry-After (its database is unreachable; every replica shares it)
is failed over like one that is down; when the whole round fails, the raised error carries the
shortest Retry-After any replica asked for, and the controller waits that long (not less than its
backoff's floor) instead of its own backoff.

A pin mismatch is never hidden: it is recorded against the replica that
showed a foreign CA (it stays in the status until that replica passes the pin
check), the next replica is tried, and when none of them worked the round
raises :class:`PinMismatch` naming every replica that failed the check.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar
from urllib.parse import urlsplit

from agent.errors import PinMismatch, RegistrarDown

log = logging.getLogger("agent.fleet")

T = TypeVar("T")
PIN_MISMATCH = "CA pin mismatch"


def short_name(url: str) -> str:
    """host:port of a registrar URL, for the one-line status."""
    u = urlsplit(url)
    return u.netloc or url


class Replicas:
    def __init__(self, urls: Sequence[str]) -> None:
        self.urls: tuple[str, ...] = tuple(urls)
        self.current = 0
        self.errors: dict[str, str] = {}  # url -> why its last call failed (absent: it worked)

    @property
    def url(self) -> str:
        """The replica the box talks to now (the one that answered last)."""
        return self.urls[self.current]

    def reconfigure(self, urls: Sequence[str]) -> None:
        """A new list from the config: keep talking to the current replica when it is still listed."""
        urls = tuple(urls)
        if urls == self.urls:
            return
        keep = self.url if self.urls else ""
        self.urls = urls
        self.current = urls.index(keep) if keep in urls else 0
        self.errors = {u: e for u, e in self.errors.items() if u in urls}

    async def call(self, fn: Callable[[str], Awaitable[T]]) -> T:
        """``fn(url)`` on the current replica, then the others in turn while they are down."""
        mismatched: list[PinMismatch] = []
        last: RegistrarDown | None = None
        asked: list[float] = []
        for step in range(len(self.urls)):
            index = (self.current + step) % len(self.urls)
            url = self.urls[index]
            try:
                result = await fn(url)
            except RegistrarDown as exc:
                self._failed(url, exc.reason, str(exc))
                last = exc
                if exc.retry_after is not None:
                    asked.append(exc.retry_after)
                continue
            except PinMismatch as exc:
                self._failed(url, PIN_MISMATCH, str(exc), level=logging.ERROR)
                mismatched.append(exc)
                continue
            moved, self.current = index != self.current, index
            self.errors.pop(url, None)
            if moved:
                log.warning("fleet: now talking to %s (%s)", url, self._others())
            return result
        if mismatched:
            raise PinMismatch("; ".join(str(e) for e in mismatched))
        assert last is not None
        if len(self.urls) > 1:
            raise RegistrarDown(
                f"no registrar answered ({self._others(every=True)})",
                last.reason,
                retry_after=min(asked) if asked else None,
            ) from last
        raise last

    def _failed(self, url: str, reason: str, message: str, *, level: int = logging.INFO) -> None:
        self.errors[url] = reason
        if len(self.urls) > 1:
            log.log(level, "fleet: %s", message)

    def _others(self, *, every: bool = False) -> str:
        return ", ".join(f"{short_name(u)}: {e}" for u, e in self.errors.items() if every or u != self.url)

    def status(self) -> dict[str, object]:
        """For the fleet status section: the replica in use and the last error of each that failed."""
        return {"registrar": self.url, "registrar_errors": dict(self.errors)}

    def summary(self) -> str:
        """``via URL`` plus ``(host:port: why, ...)`` for the replicas that failed."""
        others = self._others()
        return f"via {self.url}" + (f" ({others})" if others else "")
