"""The embedded registry: one SQLite file in WAL mode, schema versioned by ``PRAGMA user_version``.

The migrations are the ones every backend shares (agent.registrar.schema), applied by ``migrate``
(SqliteRegistry and the rollout store both call it at open): each step one BEGIN IMMEDIATE transaction
that reads the version under the file's write lock, so processes opening a file at once migrate it once;
a file newer than this code is refused rather than guessed at. The file is 0600:
it holds join tokens the registrar hands to members. BEGIN IMMEDIATE takes the
file's write lock first, so a read-then-write method (enroll_node, assign_node)
is serialised against every other process using the file.

Every write goes through ``_write()``: BEGIN IMMEDIATE, COMMIT, ROLLBACK on any
exception, so one failed statement (a duplicate serial, say) never leaves the
connection inside an open transaction for every later write to trip over.
The statements and the methods are the ones every backend shares (agent.registrar.sqlstore).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from agent.errors import Abandon, StateError
from agent.registrar import rollout_import
from agent.registrar.dbfile import open_private, transaction
from agent.registrar.schema import MIGRATIONS, SCHEMA
from agent.registrar.sqlstore import SqlRegistry
from agent.registrar.statements import Dialect, Statements

DB_NAME = "registry.sqlite"
__all__ = ["DB_NAME", "MIGRATIONS", "SCHEMA", "SqliteRegistry", "migrate"]


def migrate(db: sqlite3.Connection, path: Path) -> None:
    """Bring the registry file ``path`` (open as ``db``, autocommit) to SCHEMA. Step 3 also takes in the
    ``rollouts.sqlite`` beside it (agent.registrar.rollout_import), renamed once that step committed."""
    legacy = path.parent / rollout_import.LEGACY_NAME
    imported = None
    with rollout_import.attached(db, legacy if _version(db) <= 3 else None) as found:  # ATTACH: before BEGIN
        while True:
            with transaction(db):
                version = _version(db)
                if version > SCHEMA:
                    raise StateError(f"{path}: registry schema {version} is newer than this registrar ({SCHEMA})")
                if version == SCHEMA:
                    break
                try:
                    for stmt in MIGRATIONS[version]:
                        db.execute(stmt)
                except sqlite3.Error as exc:
                    raise StateError(f"{path}: schema migration {version} -> {version + 1}: {exc}") from exc
                if version == 3 and found:
                    imported = rollout_import.copy_sqlite(db, legacy)
                db.execute(f"PRAGMA user_version = {version + 1}")
    if imported is not None:
        rollout_import.retire(legacy, imported, path)


def _version(db: sqlite3.Connection) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


class SqliteRegistry(SqlRegistry):
    SQL = Statements(Dialect(placeholder="?", least="MIN", event_order="rowid", lock=""))  # the file lock serialises

    @classmethod
    def in_state_dir(cls, state_dir: Path) -> SqliteRegistry:
        """The registrar's registry, ``<state-dir>/registry.sqlite``."""
        return cls(state_dir / DB_NAME)

    def __init__(self, path: Path) -> None:
        self.path = path
        self.where = str(path)
        try:
            # one connection, used by one thread at a time (the server's loop, or a worker thread)
            self.db = open_private(path, check_same_thread=False)
            self.db.execute("PRAGMA synchronous=NORMAL")
            migrate(self.db, path)
        except sqlite3.Error as exc:
            raise StateError(f"{path}: registry unusable: {exc}") from exc

    def _read(self, what: str) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        return contextlib.nullcontext(self.db)

    @contextlib.contextmanager
    def _write(self, what: str) -> Iterator[sqlite3.Connection]:
        """One write transaction: BEGIN IMMEDIATE, COMMIT, or ROLLBACK on any exception.
        A refused write (constraint, locked file) becomes a StateError naming the file and what failed."""
        try:
            with transaction(self.db) as db:
                yield db
        except Abandon:
            pass
        except sqlite3.Error as exc:
            raise StateError(f"{self.path}: {what}: {exc}") from exc

    def _single(self, what: str) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        return self._write(what)

    def schema_version(self) -> int:
        return _version(self.db)

    def close(self) -> None:
        self.db.close()
