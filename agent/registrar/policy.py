"""Auto-approval policies (pure): which pending node the registrar approves without an operator.

A policy holds criteria; all that it gives must hold: the node's DMI serial is in ``serials``, its
site is ``site``, it carries every label in ``labels``, and every requirement
(``agent.registrar.facts``) holds on its registered inventory. Policies are checked when a pending
node registers its inventory (and at its every later call while it waits); the first one that
matches (by name) approves it, recorded as ``approved_by = policy:<name>``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from agent.errors import BadRequirement
from agent.registrar.facts import Requirement, fact, parse_all
from agent.registrar.registry import Node

NAME_MAX = 63


@dataclass(frozen=True)
class Policy:
    name: str
    serials: tuple[str, ...] = ()
    site: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    requires: tuple[Requirement, ...] = ()

    def matches(self, node: Node) -> bool:
        if self.serials and fact(node, "serial") not in self.serials:
            return False
        if self.site and node.site != self.site:
            return False
        if any(node.labels.get(k) != v for k, v in self.labels.items()):
            return False
        return all(r.holds(node) for r in self.requires)

    def describe(self) -> str:
        parts = [f"serial in {','.join(self.serials)}"] if self.serials else []
        parts += [f"site={self.site}"] if self.site else []
        parts += [f"labels.{k}={v}" for k, v in sorted(self.labels.items())]
        parts += [r.text for r in self.requires]
        return " and ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "serials": list(self.serials),
            "site": self.site,
            "labels": dict(self.labels),
            "requires": [r.text for r in self.requires],
        }


def check_name(kind: str, name: str) -> str:
    if not name or len(name) > NAME_MAX or not all(c.isalnum() or c in "-_." for c in name):
        raise BadRequirement(f"{kind} name {name!r}: expected 1-{NAME_MAX} letters, digits, '-', '_' or '.'")
    return name


def make_policy(name: str, *, serials: list[str], site: str, labels: dict[str, str], requires: list[str]) -> Policy:
    """A checked policy, or BadRequirement naming what is wrong."""
    check_name("policy", name)
    if not (serials or site or labels or requires):
        raise BadRequirement(f"policy {name}: expected at least one of --serial, --site, --label, --require")
    return Policy(name, tuple(serials), site, dict(labels), parse_all(requires))


def policy_from_json(text: str) -> Policy:
    doc = json.loads(text)
    return Policy(
        doc["name"],
        tuple(doc.get("serials", ())),
        doc.get("site", ""),
        dict(doc.get("labels", {})),
        parse_all(doc.get("requires", ())),
    )


def approving(policies: list[Policy], node: Node) -> Policy | None:
    """The policy that approves ``node`` (first by name), or None."""
    return next((p for p in sorted(policies, key=lambda p: p.name) if p.matches(node)), None)
