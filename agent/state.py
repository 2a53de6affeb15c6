"""Durable agent state: one versioned JSON file, written atomically.

The file holds named sections, each owned by one controller and typed by a model in
agent.model.state (``config`` = last known good config, ``fleet``, ``runtime``, ``upgrade``).
Callers use ``load_section(name, Model)`` / ``save_section(name, model)``. ``SCHEMA`` is bumped
with a migration in ``MIGRATIONS`` whenever a section's shape changes incompatibly; the models
read schema-1 files as they are (tests/fixtures/state-schema1.json), so it is still 1, and an
agent rolled back to the previous release still reads what this one wrote.

A corrupt file is moved aside, never trusted and never silently lost; a section that does not
fit its model is copied aside, reported in ``invalid`` (section and field) and read as empty.
The caller reports both as the ``StateValid`` condition.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from agent.errors import StateError
from agent.fsio import atomic_write_json
from agent.model.state import SECTIONS

log = logging.getLogger("agent.state")

SCHEMA = 1
# MIGRATIONS[n] turns a schema-n document into a schema-(n+1) one.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}
M = TypeVar("M", bound=BaseModel)


def first_error(exc: ValidationError) -> str:
    """``field.path: message`` of a validation error's first problem (+N more)."""
    errors = exc.errors()
    first = errors[0]
    where = ".".join(str(p) for p in first["loc"]) or "(the section itself)"
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {first['msg']}{more}"


class StateStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._doc: dict[str, Any] = {"schema": SCHEMA, "sections": {}}
        self.problem: str | None = None
        self.invalid: dict[str, str] = {}  # section -> "field: why", for sections not trusted

    def load(self) -> None:
        """Read the file. A missing file is a first boot; a corrupt one is set aside."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise StateError(f"{self.path}: cannot read state: {exc.strerror}") from exc
        try:
            doc = json.loads(raw)  # UnicodeDecodeError is a ValueError
            if not isinstance(doc, dict) or not isinstance(doc.get("sections"), dict):
                raise ValueError("expected an object with 'schema' and 'sections'")
            self._doc = migrate(doc)
        except (ValueError, TypeError, KeyError) as exc:
            aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
            self.path.replace(aside)
            self.problem = f"{self.path} was unreadable ({exc}); kept as {aside.name}, starting fresh"
            log.error("%s", self.problem)
            return
        for name, model in SECTIONS.items():
            self._check(name, model)

    def _check(self, name: str, model: type[BaseModel]) -> BaseModel | None:
        """The section validated by its model; None (and reported, and kept aside) when it does not fit."""
        raw = self._doc["sections"].get(name)
        if raw is None:
            return model()
        try:
            return model.model_validate(raw)
        except ValidationError as exc:
            why = first_error(exc)
        if name not in self.invalid:
            aside = self.path.with_name(f"{self.path.name}.invalid-{name}-{int(time.time())}")
            try:
                atomic_write_json(aside, raw, mode=0o600)
                kept = f"; kept as {aside.name}"
            except (OSError, TypeError, ValueError):
                kept = ""
            self.invalid[name] = f"section {name!r}: {why}{kept}"
            log.error("%s: %s; not trusted", self.path, self.invalid[name])
        return None

    def load_section(self, name: str, model: type[M]) -> M:
        """The section as ``model``; its defaults when absent or when it does not fit (see ``invalid``)."""
        found = self._check(name, model)
        return found if isinstance(found, model) else model()

    def save_section(self, name: str, value: BaseModel) -> None:
        """Write the section (the whole file, atomically; nothing when unchanged)."""
        self.put(name, value.model_dump(mode="json"))
        self.invalid.pop(name, None)

    def get(self, section: str) -> dict[str, Any]:
        value = self._doc["sections"].get(section, {})
        return dict(value) if isinstance(value, dict) else {}

    def put(self, section: str, data: dict[str, Any]) -> None:
        if self._doc["sections"].get(section) == data:
            return
        self._doc["sections"][section] = data
        try:
            atomic_write_json(self.path, self._doc, mode=0o600)
        except OSError as exc:
            raise StateError(f"{self.path}: cannot write state: {exc.strerror}") from exc


def migrate(
    doc: dict[str, Any],
    schema: int = SCHEMA,
    migrations: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = MIGRATIONS,
) -> dict[str, Any]:
    version = doc.get("schema")
    if not isinstance(version, int) or version < 1:
        raise ValueError(f"schema: expected a positive integer, got {version!r}")
    if version > schema:
        raise ValueError(f"schema {version} is newer than this agent understands ({schema})")
    while version < schema:
        if version not in migrations:
            raise ValueError(f"schema {version}: no migration to {version + 1}")
        doc = migrations[version](doc)
        version += 1
        doc["schema"] = version
    return doc
