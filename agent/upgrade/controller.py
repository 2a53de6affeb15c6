"""UpgradeController ("upgrade"): finishes what a restart interrupted, commits a healthy candidate,
and keeps the ``upgrade`` status section current.

At start it clears half-staged versions and stale downloads, marks upgrades the
restart interrupted as failed, and settles an agent upgrade left in
``checking``: in the new version it waits for health and commits; in the old
version (after a rollback) it records the launcher's reason.

Reads: the upgrade manager's records and slots (its own state section "upgrade"), ctx.desired
(the upgrade policy; the k3s/k0s installers read the node from it too), the board's conditions
(health before a commit). Writes: the "upgrade" state and status sections, the A/B slots.
"""

from __future__ import annotations

import asyncio
import contextlib

from agent.context import AgentContext
from agent.upgrade import settle
from agent.upgrade.manager import UpgradeManager

REFRESH = 5.0


class UpgradeController:
    name = "upgrade"

    def __init__(self, ctx: AgentContext, manager: UpgradeManager) -> None:
        self.ctx = ctx
        self.manager = manager

    async def run(self) -> None:
        m = self.manager
        await settle.cleanup_at_start(m)
        m.publish()
        while True:
            await settle.resume(m)
            m.publish()
            # wake on manager changes (a new upgrade reaching "checking") or refresh the
            # slot facts (a rollback by the launcher's guard) every few seconds
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(m.wait_change(), REFRESH)
