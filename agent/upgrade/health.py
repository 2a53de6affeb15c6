"""Is this agent process healthy enough to commit the version it runs?

Healthy means, continuously for a settle time: every controller is running
(no ``*Healthy`` condition other than True), the config is valid, the local
API answers ``GET /healthz`` on the unix socket, and — on an enrolled box —
the fleet can still reach it (``Enrolled`` and ``RemoteApiListening`` True).
A version that cannot talk to its fleet must not commit: the box would drop
out of the fleet for good.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp

from agent.status import StatusBoard

FLEET_REACHABLE = ("Enrolled", "RemoteApiListening")


def board_problems(board: StatusBoard, require: tuple[str, ...] = ()) -> list[str]:
    bad = [
        f"{c.type}={c.status} ({c.reason})"
        for c in board.conditions()
        if (c.type.endswith("Healthy") and c.status != "True") or (c.type == "ConfigValid" and c.status == "False")
    ]
    for type_ in require:
        c = board.condition(type_)
        if c is None or c.status != "True":
            bad.append(f"{type_}={c.status if c else 'missing'}")
    return bad


async def api_answers(socket: Path, timeout: float = 2.0) -> bool:
    try:
        async with (
            aiohttp.ClientSession(
                connector=aiohttp.UnixConnector(path=str(socket)),
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as session,
            session.get("http://agent/healthz") as resp,
        ):
            return resp.status == 200
    except (aiohttp.ClientError, TimeoutError, OSError):
        return False


async def wait_healthy(
    board: StatusBoard, socket: Path, settle: float, poll: float = 0.5, require: tuple[str, ...] = ()
) -> None:
    """Return once healthy for ``settle`` seconds in a row (the launcher's guard enforces the deadline);
    ``require``: condition types that must also be True."""
    since: float | None = None
    while True:
        ok = not board_problems(board, require) and await api_answers(socket)
        now = time.monotonic()
        if not ok:
            since = None
        elif since is None:
            since = now
        if since is not None and now - since >= settle:
            return
        await asyncio.sleep(poll)
