"""A registrar's ``Retry-After`` (RFC 9110 10.2.3): what it asked for, and how long the box then waits.

A 503 (the registry's database is unreachable, or a proxy says so) or a 429 (too many failed
bootstrap attempts from this source) may carry ``Retry-After`` as delay-seconds or as an HTTP-date.
The box waits what was asked, spread upwards by up to ``JITTER`` so a fleet told "10" does not come
back in one instant, capped by ``fleet.retry_max``, and never shorter than the backoff's floor.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from datetime import UTC
from email.utils import parsedate_to_datetime

JITTER = 0.2


def header(headers: Mapping[str, str]) -> str | None:
    """The Retry-After value, whatever the case of its name (a plain dict from a test transport, too)."""
    for key, value in headers.items():
        if key.lower() == "retry-after":
            return value
    return None


def asked(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds the answer asks the box to wait: from delay-seconds or an HTTP-date (a date in the past
    means 0); None when there is no Retry-After or it is neither."""
    value = header(headers)
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000": HTTP dates are GMT
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def honoured(seconds: float, *, floor: float, cap: float, jitter: float = JITTER) -> float:
    """The wait before the next try after being asked for ``seconds``."""
    spread = seconds * (1 + random.uniform(0.0, jitter))  # noqa: S311  (jitter, not secrecy)
    return max(floor, min(cap, spread))


def describe(seconds: float) -> str:
    """``Retry-After 10s`` for logs and the status line."""
    return f"Retry-After {seconds:.0f}s"
