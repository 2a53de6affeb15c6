"""The address choice as the ``network`` status section (pure)."""

from __future__ import annotations

from agent.model.network import NetworkChoice, NetworkPending
from agent.model.status import NetworkStatus


def network_status(choice: NetworkChoice | None) -> NetworkStatus:
    if choice is None:
        return NetworkStatus(state="runtime-default", summary="no [network] policy: k3s/k0s use the default route")
    if isinstance(choice, NetworkPending):
        when = choice.deadline.isoformat(timespec="seconds")
        return NetworkStatus(
            state="pending", summary=f"{choice.reason}: {choice.message} (until {when})", pending=choice
        )
    return NetworkStatus(
        state="chosen", summary=f"{', '.join(choice.internal)} on {choice.interface}, by {choice.rule}", chosen=choice
    )
