"""Text and JSON renderings of registrar records (tables for people, versioned JSON for tooling).

JSON schemas: ``edge-registrar.nodes/v1``, ``edge-registrar.node/v1``,
``edge-registrar.tokens/v1``, ``edge-registrar.poll/v1``. Secrets (token
hashes, join tokens) are never rendered.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

from agent.registrar import blocked
from agent.registrar.duplicates import Duplicate
from agent.registrar.poll import PollRow
from agent.registrar.registry import Node
from agent.registrar.tokens import TokenRecord


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)


def _ago(ts: float) -> str:
    if not ts:
        return "never"
    secs = max(0, int(time.time() - ts))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if secs >= size:
            return f"{secs // size}{unit} ago"
    return f"{secs}s ago"


def _node_doc(n: Node) -> dict[str, Any]:
    doc = asdict(n)
    doc["status"] = {"health": n.status.get("health", "unknown")}
    doc["blocked_versions"] = blocked.blocked_versions(n)
    return doc


def nodes(items: Sequence[Node], output: str, duplicates: Mapping[str, Duplicate] | None = None) -> str:
    dup = duplicates or {}
    if output == "json":
        docs = [{**_node_doc(n), "duplicate": dup[n.node_id].reason if n.node_id in dup else None} for n in items]
        return json.dumps({"schema": "edge-registrar.nodes/v1", "nodes": docs}, indent=1)
    rows = [
        [
            n.node_id,
            n.state + (", DuplicateIdentity" if n.node_id in dup else ""),
            n.site,
            n.cluster,
            n.role + (" (init)" if n.cluster_init else ""),
            n.approved_by or "-",
            _ago(n.last_seen),
            ", ".join(f"{k} {v}" for k, vs in blocked.blocked_versions(n).items() for v in vs) or "-",
        ]
        for n in items
    ]
    return table(["NODE", "STATE", "SITE", "CLUSTER", "ROLE", "APPROVED BY", "LAST SEEN", "BLOCKED"], rows)


def node(
    n: Node,
    output: str,
    duplicate: Duplicate | None = None,
    events: Sequence[tuple[float, str, str, str, str]] = (),
) -> str:
    trail = [{"at": at, "action": action, "by": by, "detail": detail} for at, _, action, by, detail in events]
    if output == "json":
        return json.dumps(
            {
                "schema": "edge-registrar.node/v1",
                **asdict(n),
                "blocked_versions": blocked.blocked_versions(n),
                "duplicate": duplicate.reason if duplicate else None,
                "audit": trail,
            },
            indent=1,
        )
    expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(n.cert_not_after)) if n.cert_not_after else "-"
    expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(n.cert_not_after)) if n.cert_not_after else "-"
    held = blocked.describe(n)
    lines = [
        f"node:        {n.node_id}",
        f"state:       {n.state}" + (f" ({duplicate.reason})" if duplicate else ""),
        f"site:        {n.site}",
        f"labels:      {', '.join(f'{k}={v}' for k, v in sorted(n.labels.items())) or '-'}",
        f"cluster:     {n.cluster or '-'} ({n.role or 'unassigned'}{', init' if n.cluster_init else ''})",
        f"addresses:   {', '.join(n.addresses) or '-'} (seen from {n.observed or '-'})",
        f"certificate: serial {n.serial or '-'}, expires {expires}",
        f"dmi serial:  {n.dmi_serial or '-'}",
        f"blocked:     {held + ' (failed on the box; rollouts skip them)' if held else '-'}",
        f"approved by: {n.approved_by or '-'}",
        f"last seen:   {_ago(n.last_seen)}",
    ]
    for at, _, action, by, detail in events:
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))
        lines.append(f"audit:       {when} {action} by {by}" + (f": {detail}" if detail else ""))
    return "\n".join(lines)


def tokens(items: Sequence[TokenRecord], output: str) -> str:
    docs = [
        {
            "token_id": t.token_id,
            "expires_at": t.expires_at,
            "uses_left": t.uses_left,
            "site": t.site,
            "labels": t.labels,
            "require_approval": t.require_approval,
        }
        for t in items
    ]
    if output == "json":
        return json.dumps({"schema": "edge-registrar.tokens/v1", "tokens": docs}, indent=1)
    now = time.time()
    rows = [
        [
            str(d["token_id"]),
            "expired" if t.expires_at <= now else f"{int(t.expires_at - now)}s",
            str(t.uses_left),
            t.site or "-",
            "manual" if t.require_approval else "auto",
        ]
        for d, t in zip(docs, items, strict=True)
    ]
    return table(["TOKEN ID", "EXPIRES IN", "USES LEFT", "SITE", "APPROVAL"], rows)


def poll(rows: Sequence[PollRow], output: str) -> str:
    if output == "json":
        return json.dumps({"schema": "edge-registrar.poll/v1", "nodes": [r.to_json() for r in rows]}, indent=1)
    cells = [
        [
            r.node_id,
            r.site,
            r.role or "-",
            r.k8s_ready if r.reachable else "unreachable",
            "-" if r.gpus is None else str(r.gpus),
            _ago(r.last_seen),
        ]
        for r in rows
    ]
    reachable = sum(r.reachable for r in rows)
    return table(["NODE", "SITE", "ROLE", "K8S READY", "GPUS", "LAST SEEN"], cells) + (
        f"\n{reachable}/{len(rows)} reachable"
    )
