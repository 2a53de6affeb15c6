"""Does the Node show the chosen address? (contract A9: check ``status.addresses``, not the flag)

After the runtime restarts on a changed plan the lead's controller reads the
Node (``kubectl get node NAME -o json``) and calls :func:`confirm`; a mismatch
is reported (``NodeAddressMismatch``), never silently accepted.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from agent.model.network import NetworkPlan


def node_addresses(node: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    """``status.addresses`` as type -> addresses, e.g. {"InternalIP": ("10.0.0.5",)}."""
    out: dict[str, list[str]] = {}
    for a in (node.get("status") or {}).get("addresses") or []:
        if isinstance(a, dict) and a.get("type") and a.get("address"):
            out.setdefault(str(a["type"]), []).append(str(a["address"]))
    return {k: tuple(v) for k, v in out.items()}


def confirm(plan: NetworkPlan, node_json: str) -> tuple[bool, str]:
    """True when every chosen internal (and external) address is on the Node; else why not."""
    try:
        doc = json.loads(node_json)
    except ValueError:
        return False, "the Node could not be read (not JSON)"
    got = node_addresses(doc if isinstance(doc, dict) else {})
    for kind, want in (("InternalIP", plan.internal), ("ExternalIP", plan.external)):
        missing = [a for a in want if a not in got.get(kind, ())]
        if missing:
            shown = ", ".join(got.get(kind, ())) or "none"
            return False, f"the Node's {kind} is {shown}, not {', '.join(missing)} (chosen by {plan.rule})"
    return True, f"the Node shows {', '.join(plan.internal)}"
