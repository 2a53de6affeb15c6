"""Hardware facts of a registered node and the small requirement language over them (pure).

A requirement is ``FACT OP VALUE``: OP one of ``>= <= > < == != ~``. ``~`` is a case-insensitive
regular-expression search (a plain word is a substring match: ``gpu.model~H100``). Facts come from
what the box registered (``agent.model.inventory.Inventory`` as JSON, kept in ``Node.inventory``)
and from the registry:

| fact | value |
| --- | --- |
| ``gpu.count`` | compute GPUs (display-only adapters such as a BMC's are not counted) |
| ``gpu.model`` | every compute GPU's name; ``==``/``~`` hold when any GPU matches, ``!=`` when none does |
| ``cores``, ``threads``, ``sockets`` | CPU counts from the system record |
| ``memory_gib`` | memory in GiB (2**30 bytes) |
| ``nvme.count`` | local NVMe controllers (fabric-attached ones are not counted) |
| ``nic.count`` | physical NICs |
| ``nic.speed_max`` | the fastest physical NIC's link speed, Mb/s |
| ``arch``, ``cpu.model``, ``vendor``, ``product`` | strings from the system record |
| ``serial`` | DMI product serial (what the box reported, else the inventory's) |
| ``site`` | the node's site |
| ``labels.KEY`` | the node's label KEY |

A fact the box did not report (no inventory yet, an unreadable field) never satisfies a requirement.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from agent.errors import BadRequirement
from agent.registrar.registry import Node

Value = float | str | tuple[str, ...] | None

NUMERIC_OPS = (">=", "<=", ">", "<")
_EXPR = re.compile(r"^\s*([A-Za-z][A-Za-z0-9_.\-/]*)\s*(>=|<=|==|!=|>|<|~)\s*(.*?)\s*$")


def _system(node: Node) -> dict[str, Any]:
    value = node.inventory.get("system")
    return value if isinstance(value, dict) else {}


def _records(node: Node, key: str) -> list[dict[str, Any]]:
    value = node.inventory.get(key)
    return [r for r in value if isinstance(r, dict)] if isinstance(value, list) else []


def _gpus(node: Node) -> list[dict[str, Any]]:
    return [g for g in _records(node, "gpus") if not g.get("display_only")]


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _gpu_count(node: Node) -> Value:
    return float(len(_gpus(node))) if "gpus" in node.inventory else None


def _gpu_models(node: Node) -> Value:
    if "gpus" not in node.inventory:
        return None
    names: list[str] = []
    for g in _gpus(node):
        raw = g.get("nvidia")
        nvidia: dict[str, Any] = raw if isinstance(raw, dict) else {}
        names += [n for n in (g.get("name"), g.get("device_name"), nvidia.get("name")) if isinstance(n, str) and n]
    return tuple(dict.fromkeys(names))


def _memory_gib(node: Node) -> Value:
    raw = _number(_system(node).get("memory_bytes"))
    return None if raw is None else raw / 2**30


def _nvme_count(node: Node) -> Value:
    if "nvme" not in node.inventory:
        return None
    return float(sum(1 for c in _records(node, "nvme") if not c.get("remote")))


def _physical_nics(node: Node) -> list[dict[str, Any]]:
    return [n for n in _records(node, "nics") if n.get("physical")]


def _nic_count(node: Node) -> Value:
    return float(len(_physical_nics(node))) if "nics" in node.inventory else None


def _nic_speed_max(node: Node) -> Value:
    speeds = [s for s in (_number(n.get("speed_mbps")) for n in _physical_nics(node)) if s is not None and s > 0]
    return max(speeds) if speeds else None


def _system_number(key: str) -> Callable[[Node], Value]:
    return lambda node: _number(_system(node).get(key))


def _system_text(key: str) -> Callable[[Node], Value]:
    return lambda node: _text(_system(node).get(key))


def _serial(node: Node) -> Value:
    return node.dmi_serial or _text(_system(node).get("serial"))


FACTS: dict[str, tuple[str, Callable[[Node], Value]]] = {
    "gpu.count": ("number", _gpu_count),
    "gpu.model": ("text", _gpu_models),
    "cores": ("number", _system_number("cores")),
    "threads": ("number", _system_number("threads")),
    "sockets": ("number", _system_number("sockets")),
    "memory_gib": ("number", _memory_gib),
    "nvme.count": ("number", _nvme_count),
    "nic.count": ("number", _nic_count),
    "nic.speed_max": ("number", _nic_speed_max),
    "arch": ("text", _system_text("architecture")),
    "cpu.model": ("text", _system_text("cpu_model")),
    "vendor": ("text", _system_text("vendor")),
    "product": ("text", _system_text("product")),
    "serial": ("text", _serial),
    "site": ("text", lambda node: node.site or None),
}
LABEL_PREFIX = "labels."


def fact(node: Node, name: str) -> Value:
    if name.startswith(LABEL_PREFIX):
        return node.labels.get(name[len(LABEL_PREFIX) :])
    return FACTS[name][1](node)


@dataclass(frozen=True)
class Requirement:
    """One parsed ``FACT OP VALUE``; ``text`` is what the operator wrote."""

    text: str
    fact: str
    op: str
    value: str
    number: float | None = None
    pattern: re.Pattern[str] | None = None

    def holds(self, node: Node) -> bool:
        got = fact(node, self.fact)
        if got is None:
            return False
        if isinstance(got, tuple):
            hits = [self._one(g) for g in got]
            return all(hits) if self.op == "!=" else any(hits)
        return self._one(got)

    def _one(self, got: float | str) -> bool:
        if self.pattern is not None:
            return self.pattern.search(str(got)) is not None
        if self.number is not None and isinstance(got, float):
            a, b = got, self.number
            return {">=": a >= b, "<=": a <= b, ">": a > b, "<": a < b, "==": a == b, "!=": a != b}[self.op]
        if isinstance(got, float):
            return self.op == "!="  # a number against a word is never equal
        return (got == self.value) == (self.op == "==")


def parse(text: str) -> Requirement:
    """Parse one requirement, or BadRequirement naming it and what was expected."""
    m = _EXPR.match(text)
    if m is None:
        raise BadRequirement(
            f"requirement {text!r}: expected FACT OP VALUE with OP one of >= <= > < == != ~ (e.g. 'gpu.count>=1')"
        )
    name, op, value = m.groups()
    if name.startswith(LABEL_PREFIX):
        if len(name) == len(LABEL_PREFIX):
            raise BadRequirement(f"requirement {text!r}: expected a label key after 'labels.'")
        kind = "text"
    elif name in FACTS:
        kind = FACTS[name][0]
    else:
        known = ", ".join([*FACTS, "labels.KEY"])
        raise BadRequirement(f"requirement {text!r}: unknown fact {name!r}; expected one of {known}")
    if not value:
        raise BadRequirement(f"requirement {text!r}: expected a value after {op!r}")
    if op == "~":
        if kind == "number":
            raise BadRequirement(f"requirement {text!r}: {name} is a number; ~ needs a text fact (use >= <= > < == !=)")
        try:
            return Requirement(text, name, op, value, pattern=re.compile(value, re.IGNORECASE))
        except re.error as exc:
            raise BadRequirement(f"requirement {text!r}: {value!r} is not a regular expression ({exc})") from exc
    number: float | None = None
    if kind == "number":
        try:
            number = float(value)
        except ValueError:
            raise BadRequirement(f"requirement {text!r}: {name} is a number; expected one, got {value!r}") from None
    elif op in NUMERIC_OPS:
        raise BadRequirement(f"requirement {text!r}: {name} is text; {op} needs a number fact (use == != or ~)")
    return Requirement(text, name, op, value, number=number)


def parse_all(texts: Iterable[str]) -> tuple[Requirement, ...]:
    return tuple(parse(t) for t in texts)
