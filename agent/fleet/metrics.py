"""/metrics lines for fleet membership (conditions are exported by the core already)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from agent.context import AgentContext


def _escape(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def metrics(ctx: AgentContext) -> Iterator[str]:
    fleet = ctx.board.sections().get("fleet")
    if not isinstance(fleet, dict):
        return
    yield "# HELP edge_agent_fleet_enrolled 1 when the box holds a certificate of its fleet."
    yield "# TYPE edge_agent_fleet_enrolled gauge"
    yield f"edge_agent_fleet_enrolled {int(fleet.get('enrolled') is True)}"
    assignment = ctx.assignment.value
    yield "# HELP edge_agent_fleet_assigned 1 when the registrar has told the box its cluster and role."
    yield "# TYPE edge_agent_fleet_assigned gauge"
    if assignment is None:
        yield "edge_agent_fleet_assigned 0"
    else:
        yield (
            f'edge_agent_fleet_assigned{{cluster="{_escape(assignment.cluster)}",role="{assignment.role}",'
            f'distribution="{assignment.distribution}"}} 1'
        )
    for key, name, help_ in (
        ("cert_not_after", "certificate_expiry_timestamp_seconds", "When the node certificate expires."),
        ("renew_at", "certificate_renewal_timestamp_seconds", "When the node certificate is due for renewal."),
        ("last_contact", "last_contact_timestamp_seconds", "Last successful call to the registrar."),
    ):
        value = fleet.get(key)
        if isinstance(value, str) and value:
            yield f"# HELP edge_agent_fleet_{name} {help_}"
            yield f"# TYPE edge_agent_fleet_{name} gauge"
            yield f"edge_agent_fleet_{name} {datetime.fromisoformat(value).timestamp():.0f}"
