"""Registry rows (by column name, from any backend) to records and back.

A table's columns are its record's fields, in order; the few that differ in storage are named once
here: JSON documents (stored as TEXT) and booleans (stored as INTEGER 0/1).
"""

from __future__ import annotations

import json
from dataclasses import fields
from typing import Any, Protocol, TypeVar

from agent.registrar.registry import Cluster, Node
from agent.registrar.tokens import TokenRecord

R = TypeVar("R", Node, TokenRecord, Cluster)

JSON_COLS = frozenset({"labels", "addresses", "inventory", "status"})
BOOL_COLS = frozenset({"cluster_init", "require_approval"})


def columns(record: type[Node | TokenRecord | Cluster]) -> str:
    """The table's column list: the record's field names, in order."""
    return ", ".join(f.name for f in fields(record))


NODE_COLS = columns(Node)


class Row(Protocol):
    """A row whose columns are read by name (sqlite3.Row, psycopg's dict rows)."""

    def __getitem__(self, key: str, /) -> Any: ...


def record_of(record: type[R], row: Row) -> R:
    """The ``record`` stored in ``row``."""
    values: dict[str, Any] = {}
    for f in fields(record):
        raw = row[f.name]
        values[f.name] = json.loads(raw) if f.name in JSON_COLS else bool(raw) if f.name in BOOL_COLS else raw
    return record(**values)


def values_of(record: Node | TokenRecord | Cluster, created_at: float = 0.0) -> tuple[Any, ...]:
    """``record`` as the values of its table's columns, in order; a record without ``created_at``
    gets the one given."""
    out: list[Any] = []
    for f in fields(record):
        value = getattr(record, f.name)
        if f.name == "created_at":
            value = value or created_at
        out.append(json.dumps(value) if f.name in JSON_COLS else int(value) if f.name in BOOL_COLS else value)
    return tuple(out)


def node_of(row: Row) -> Node:
    return record_of(Node, row)


def token_of(row: Row) -> TokenRecord:
    return record_of(TokenRecord, row)


def cluster_of(row: Row) -> Cluster:
    return record_of(Cluster, row)
