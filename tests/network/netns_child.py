"""Inside a network namespace: this namespace's interfaces as the inventory sees them, and the choice.

argv: ROLE POLICY_JSON. Prints {"nics": [...], "choice": {...} | null, "k3s": {...}} as JSON.
Run under `ip netns exec`, which mounts the namespace's own /sys, so udev and /proc/net see it.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime

import pyudev

from agent.inventory.addresses import default_route_interfaces, with_default_routes
from agent.inventory.ifaddrs import host_addresses
from agent.inventory.nic import collect_nics
from agent.model.inventory import Nic
from agent.model.network import NetworkPlan, NetworkSection
from agent.network.choose import choose
from agent.runtime.network_flags import k3s_network_keys


def main() -> None:
    role, policy = sys.argv[1], NetworkSection.model_validate_json(sys.argv[2])
    found = with_default_routes(collect_nics(pyudev.Context(), {}, host_addresses()), default_route_interfaces())
    nics = tuple(Nic.model_validate(n, from_attributes=True) for n in found)  # as the daemon's scanner models them
    choice = choose(policy, nics, role, datetime.now(UTC))  # type: ignore[arg-type]
    keys = k3s_network_keys(choice, role) if isinstance(choice, NetworkPlan) else {}  # type: ignore[arg-type]
    out = {
        "nics": [n.model_dump(mode="json") for n in nics],
        "choice": choice.model_dump(mode="json") if choice else None,
        "kind": type(choice).__name__,
        "k3s": keys,
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
