"""The inventory as JSON, from the collectors' records, exactly as the daemon serves it.

``inventory_json`` gives what ``Inventory.model_dump(mode="json")`` gives for the
same scan (tuples as lists, the UTC time as ISO 8601 with ``Z``), and
``document`` the ``GET /v1/inventory`` body (``schema``, ``inventory``, ``labels``)
encoded as agent/api/http.py encodes it: compact, keys sorted. Standard library only.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from agent.inventory.labels import node_labels
from agent.inventory.records import Inventory

SCHEMA = "edge-agent.inventory/v1"


def to_json(value: Any) -> Any:
    """A record (or anything inside one) as JSON-ready values."""
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    names = getattr(value, "_fields", None)  # a record (agent/inventory/records.py)
    if names is not None:
        return {name: to_json(getattr(value, name)) for name in names}
    if isinstance(value, tuple | list):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    raise TypeError(f"no JSON form for {type(value).__name__}")


def inventory_json(inv: Inventory) -> dict[str, Any]:
    doc: dict[str, Any] = to_json(inv)
    return doc


def document(inv: Inventory) -> dict[str, Any]:
    """The ``GET /v1/inventory`` document of this scan."""
    return {"schema": SCHEMA, "inventory": inventory_json(inv), "labels": node_labels(inv)}


def encode(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()
