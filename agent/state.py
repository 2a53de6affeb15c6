"""Durable agent state: one versioned JSON file, written atomically.

The file holds named sections, each owned by one controller
(``config`` = last known good config, ``fleet``, ``runtime``, ``upgrade``...).
``SCHEMA`` is bumped with a migration in ``MIGRATIONS`` whenever a section's
shape changes incompatibly. A corrupt file is moved aside, never trusted and
never silently lost; the loss is reported by the caller as a condition.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.errors import StateError
from agent.fsio import atomic_write_json

log = logging.getLogger("agent.state")

SCHEMA = 1
# MIGRATIONS[n] turns a schema-n document into a schema-(n+1) one.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


class StateStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._doc: dict[str, Any] = {"schema": SCHEMA, "sections": {}}
        self.problem: str | None = None

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
