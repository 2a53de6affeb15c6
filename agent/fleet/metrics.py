"""/metrics families for fleet membership (conditions are exported by the core already)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from agent.api.exposition import gauge
from agent.context import AgentContext


def metrics(ctx: AgentContext) -> Iterator[str]:
    fleet = ctx.board.sections().get("fleet")
    if not isinstance(fleet, dict):
        return
    enrolled = gauge("edge_agent_fleet_enrolled", "1 when the box holds a certificate of its fleet.")
    yield from enrolled.add(int(fleet.get("enrolled") is True)).lines()
    assignment = ctx.assignment.value
    assigned = gauge("edge_agent_fleet_assigned", "1 when the registrar has told the box its cluster and role.")
    if assignment is None:
        assigned.add(0)
    else:
        labels = {"cluster": assignment.cluster, "role": assignment.role, "distribution": assignment.distribution}
        assigned.add(1, labels)
    yield from assigned.lines()
    for key, name, help_ in (
        ("cert_not_after", "certificate_expiry_timestamp_seconds", "When the node certificate expires."),
        ("renew_at", "certificate_renewal_timestamp_seconds", "When the node certificate is due for renewal."),
        ("last_contact", "last_contact_timestamp_seconds", "Last successful call to the registrar."),
    ):
        value = fleet.get(key)
        if isinstance(value, str) and value:
            stamp = round(datetime.fromisoformat(value).timestamp())
            yield from gauge(f"edge_agent_fleet_{name}", help_).add(stamp).lines()
