"""Registry rows (by column name, from any backend) to records and back.

A table's columns are its record's fields, in order; the few that differ in storage are named once
here: JSON documents (stored as TEXT) and booleans (stored as INTEGER 0/1).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import fields
from types import MappingProxyType
from typing import Any, Protocol, TypeVar

from agent.registrar.registry import Cluster, Node
from agent.registrar.tokens import TokenRecord

R = TypeVar("R", Node, TokenRecord, Cluster)

JSON_COLS = frozenset({"labels", "addresses", "inventory", "status"})
BOOL_COLS = frozenset({"cluster_init", "require_approval"})


_FIELDS: Mapping[type[Node | TokenRecord | Cluster], tuple[str, ...]] = MappingProxyType(
    {record: tuple(f.name for f in fields(record)) for record in (Node, TokenRecord, Cluster)}
)


def _names(record: type[Node | TokenRecord | Cluster]) -> tuple[str, ...]:
    return _FIELDS[record]


def columns(
    record: type[Node | TokenRecord | Cluster], table: str = "", prefix: str = "", only: tuple[str, ...] = ()
) -> str:
    """The table's column list: the record's field names, in order (``only``: just those, the record's
    defaults standing for the rest); of ``table`` (an alias in a join) and named ``<prefix><column>`` when given."""
    names = only or _names(record)
    if not table:
        return ", ".join(names)
    return ", ".join(f"{table}.{name} AS {prefix}{name}" for name in names)


NODE_COLS = columns(Node)
# what an answer to a member reads of a node and of its cluster's servers (agent.registrar.membership,
# .assign): not its inventory or last status (often kilobytes), nor its bookkeeping; a view's nodes have
# the record's defaults for the rest
IN_VIEW = ("node_id", "state", "token_id", "key_fingerprint", "site", "labels", "created_at", "serial", "cluster",
           "role", "cluster_init", "addresses", "observed", "api_port")  # fmt: skip


class Row(Protocol):
    """A row whose columns are read by name (sqlite3.Row, psycopg's dict rows)."""

    def __getitem__(self, key: str, /) -> Any: ...


def _stored(raw: Any) -> Any:
    """A JSON column's document; the empty ones, most of a view's, without the parser."""
    return {} if raw == "{}" else [] if raw == "[]" else json.loads(raw)


_READING: dict[tuple[str, str, tuple[str, ...]], tuple[tuple[str, str, Any], ...]] = {}


def _reading(
    record: type[Node | TokenRecord | Cluster], prefix: str, only: tuple[str, ...]
) -> tuple[tuple[str, str, Any], ...]:
    """How ``record_of`` reads ``record`` from columns named ``<prefix><column>``: (column, field, convert)."""
    key = (record.__name__, prefix, only)
    plan = _READING.get(key)
    if plan is None:
        plan = _READING[key] = tuple(
            (prefix + name, name, _stored if name in JSON_COLS else bool if name in BOOL_COLS else None)
            for name in only or _names(record)
        )
    return plan


def record_of(record: type[R], row: Row, prefix: str = "", only: tuple[str, ...] = ()) -> R:
    """The ``record`` stored in ``row`` (in its columns named ``<prefix><column>``; ``only``: just those
    were read, as ``columns(..., only=)`` named them)."""
    values: dict[str, Any] = {}
    for column, name, convert in _reading(record, prefix, only):
        raw = row[column]
        values[name] = raw if convert is None else convert(raw)
    return record(**values)


def values_of(record: Node | TokenRecord | Cluster, created_at: float = 0.0) -> tuple[Any, ...]:
    """``record`` as the values of its table's columns, in order; a record without ``created_at``
    gets the one given."""
    out: list[Any] = []
    for name in _names(type(record)):
        value = getattr(record, name)
        if name == "created_at":
            value = value or created_at
        out.append(json.dumps(value) if name in JSON_COLS else int(value) if name in BOOL_COLS else value)
    return tuple(out)


def node_of(row: Row) -> Node:
    return record_of(Node, row)


def token_of(row: Row) -> TokenRecord:
    return record_of(TokenRecord, row)


def cluster_of(row: Row) -> Cluster:
    return record_of(Cluster, row)
