"""Node readiness from `kubectl get node NAME -o json` (k3s's and k0s's embedded kubectl)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from agent.errors import ExecError
from agent.runtime.base import NodeReadiness
from agent.sysexec import Runner


async def node_readiness(runner: Runner, argv: Sequence[str], timeout: float = 20.0) -> NodeReadiness:
    try:
        result = await runner.run(list(argv), timeout=timeout)
    except ExecError as exc:
        text = getattr(exc, "stderr", "") or str(exc)
        last = text.strip().splitlines()[-1:] or [str(exc)]
        if "NotFound" in text:
            return NodeReadiness("False", "NotRegistered", last[0][:300])
        return NodeReadiness("Unknown", "APIUnreachable", last[0][:300])
    return parse_node(result.stdout)


def parse_node(text: str) -> NodeReadiness:
    try:
        doc = json.loads(text)
        status = doc.get("status", {})
        conditions = status.get("conditions", [])
        version = str(status.get("nodeInfo", {}).get("kubeletVersion", ""))
    except (ValueError, AttributeError):
        return NodeReadiness("Unknown", "BadNodeJSON", text.strip()[:200])
    for c in conditions:
        if c.get("type") == "Ready":
            s = c.get("status")
            if s not in ("True", "False", "Unknown"):
                s = "Unknown"
            return NodeReadiness(s, str(c.get("reason") or "NodeReady"), str(c.get("message", "")), version, text)
    return NodeReadiness("Unknown", "NoReadyCondition", "the node has no Ready condition yet", version, text)
