"""The address choice as the ``NodeAddress`` condition for ``agentctl status`` (pure)."""

from __future__ import annotations

from datetime import datetime

from agent.model.conditions import Condition
from agent.model.network import NetworkChoice, NetworkPending


def address_condition(choice: NetworkChoice | None, now: datetime) -> Condition:
    """True with the rule that chose; False ``NodeAddressPending`` while waiting (an error once overdue)."""
    if choice is None:
        return Condition(
            type="NodeAddress",
            status="True",
            reason="RuntimeDefault",
            message="no [network] policy: k3s/k0s use the default-route interface",
            severity="info",
        )
    if isinstance(choice, NetworkPending):
        overdue = now >= choice.deadline
        when = "overdue since" if overdue else "waiting until"
        return Condition(
            type="NodeAddress",
            status="False",
            reason="NodeAddressPending",
            message=f"{choice.reason}: {choice.message} ({when} {choice.deadline.isoformat(timespec='seconds')})",
            severity="error" if overdue else "info",
        )
    return Condition(
        type="NodeAddress",
        status="True",
        reason="Chosen",
        message=f"{', '.join(choice.internal)} on {choice.interface}, by {choice.rule}",
        severity="info",
    )
