"""Machine classes (pure): hardware selectors that place an approved node into a cluster and role.

Evaluated when a node is assigned (once: a role once given is kept). The matching class with the
highest priority wins (ties: by name). Its role is what the node asks for:
- ``server``: a server while the cluster has fewer than its server count (the first one
  initialises the cluster), else an **agent** (the server count always wins; the node is not held back);
- ``agent``: always an agent; in a cluster without a server yet it waits for one.
No matching class: today's assignment (cluster = site, role by arrival order) stays unchanged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from agent.errors import BadRequirement
from agent.registrar.facts import Requirement, parse_all
from agent.registrar.policy import check_name
from agent.registrar.registry import Node

ClassRole = Literal["server", "agent"]


@dataclass(frozen=True)
class MachineClass:
    name: str
    cluster: str
    role: ClassRole
    priority: int = 0
    requires: tuple[Requirement, ...] = ()

    def matches(self, node: Node) -> bool:
        return all(r.holds(node) for r in self.requires)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "cluster": self.cluster,
            "role": self.role,
            "priority": self.priority,
            "requires": [r.text for r in self.requires],
        }


def make_class(name: str, *, requires: list[str], cluster: str, role: str, priority: int) -> MachineClass:
    """A checked machine class, or BadRequirement naming what is wrong."""
    check_name("class", name)
    check_name("cluster", cluster)
    if role not in ("server", "agent"):
        raise BadRequirement(f"class {name}: role {role!r}: expected 'server' or 'agent'")
    if not requires:
        raise BadRequirement(f"class {name}: expected at least one --require (a class without one matches every box)")
    return MachineClass(name, cluster, "server" if role == "server" else "agent", priority, parse_all(requires))


def class_from_json(text: str) -> MachineClass:
    doc = json.loads(text)
    role: ClassRole = "server" if doc["role"] == "server" else "agent"
    return MachineClass(doc["name"], doc["cluster"], role, int(doc["priority"]), parse_all(doc["requires"]))


def placing(classes: list[MachineClass], node: Node) -> MachineClass | None:
    """The class that places ``node``: highest priority, then name; None when none matches."""
    for c in sorted(classes, key=lambda c: (-c.priority, c.name)):
        if c.matches(node):
            return c
    return None
