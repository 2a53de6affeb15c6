"""StorageController ("storage"): local NVMe prepared for CSI, as the planner selected it.

Reads: ctx.desired.storage (the per-namespace decisions), the devices themselves (the
reconciler probes each one, read-only, before anything is written) and the ledger.
Writes: PVs/VGs or filesystems + mount units (agent.storage.prepare), the ``storage``
status section, condition ``StoragePrepared``. A pass runs when the plan changes, and
again after a failure; a prepared box is not probed every poll.
"""

from __future__ import annotations

import logging

from agent.context import AgentContext
from agent.model.storage import StoragePlan, StorageStatus
from agent.storage.prepare import StorageReconciler
from agent.storage.report import storage_condition
from agent.watch import any_newer

log = logging.getLogger("agent.storage")

RETRY = 60.0  # seconds before a failed namespace is tried again


class StorageController:
    name = "storage"

    def __init__(self, ctx: AgentContext, reconciler: StorageReconciler | None = None) -> None:
        self.ctx = ctx
        self.reconciler = reconciler or StorageReconciler(ctx.paths, ctx.runner)
        self.status: StorageStatus | None = None
        self._done: StoragePlan | None = None

    async def reconcile(self) -> StorageStatus | None:
        plan = self.ctx.desired.value.storage
        if plan is None:  # [storage] is off: no condition, no section
            self.status, self._done = None, None
            return None
        if plan != self._done or self.status is None or any(n.state == "failed" for n in self.status.namespaces):
            self.status = await self.reconciler.reconcile(plan)
            self._done = plan
            for ns in self.status.namespaces:
                log.info("storage: %s %s (%s)", ns.device, ns.state, ns.reason)
        c = storage_condition(self.status)
        self.ctx.board.set_condition(c.type, c.status, c.reason, c.message, severity=c.severity)
        if self.status is not None:
            self.ctx.board.set_section(self.status)
        return self.status

    async def run(self) -> None:
        while True:
            status = await self.reconcile()
            failed = status is not None and any(n.state == "failed" for n in status.namespaces)
            await any_newer((self.ctx.desired,), RETRY if failed else None)
