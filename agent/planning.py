"""PlannerController: keeps ``ctx.desired`` equal to the plan of the newest inputs.

Reads: ctx.config, ctx.inventory, ctx.assignment, host facts (agent.hostfacts:
the hostname file and the NVIDIA toolkit on PATH, polled). Writes: ctx.desired,
nothing else. The plan itself is the pure :func:`agent.planner.plan`. Inputs
that cannot be planned keep the last good plan in force, with ``refused``
saying why (the runtime shows it as Configured=False); the box never acts on
half a plan.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from agent.context import AgentContext
from agent.errors import ConfigError, NodeNameError
from agent.hostfacts import gather
from agent.model.desired import Desired
from agent.planner import plan
from agent.watch import any_newer

log = logging.getLogger("agent.planning")


class PlannerController:
    name = "planner"

    def __init__(self, ctx: AgentContext, *, facts_interval: float = 10.0) -> None:
        self.ctx = ctx
        self.facts_interval = facts_interval  # the hostname and the toolkit change without an event
        self.since = datetime.now(UTC)  # waits the plan declares (a NIC's address) count from here

    def plan_once(self) -> Desired:
        """Plan from the current inputs and publish the result (a no-op when it is unchanged)."""
        ctx = self.ctx
        facts = gather(ctx.paths, ctx.runner, self.since)
        try:
            desired = plan(ctx.config.value, ctx.inventory.value, ctx.assignment.value, facts)
        except ConfigError as exc:
            reason = "InvalidNodeName" if isinstance(exc, NodeNameError) else "InvalidConfig"
            previous = ctx.desired.value
            desired = previous.model_copy(update={"refused": str(exc), "refused_reason": reason})
            if previous.refused != desired.refused:
                log.error("not planned (%s): %s; keeping the last good plan", reason, exc)
        ctx.desired.set(desired)
        return desired

    async def run(self) -> None:
        while True:
            self.plan_once()
            await any_newer((self.ctx.config, self.ctx.inventory, self.ctx.assignment), self.facts_interval)
