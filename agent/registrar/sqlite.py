"""The embedded registry: one SQLite file in WAL mode, schema versioned by ``PRAGMA user_version``.

The migrations are the ones every backend shares (agent.registrar.schema); a file
newer than this code is refused rather than guessed at. The file is 0600:
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
from agent.registrar.dbfile import open_private, transaction
from agent.registrar.schema import MIGRATIONS, SCHEMA
from agent.registrar.sqlstore import SqlRegistry
from agent.registrar.statements import Dialect, Statements

DB_NAME = "registry.sqlite"
__all__ = ["DB_NAME", "MIGRATIONS", "SCHEMA", "SqliteRegistry"]


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
            self._migrate()
        except sqlite3.Error as exc:
            raise StateError(f"{path}: registry unusable: {exc}") from exc

    def _migrate(self) -> None:
        version = int(self.db.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA:
            raise StateError(f"{self.path}: registry schema {version} is newer than this registrar ({SCHEMA})")
        while version < SCHEMA:
            with self._write("schema migration") as db:
                for stmt in MIGRATIONS[version]:
                    db.execute(stmt)
                version += 1
                db.execute(f"PRAGMA user_version = {version}")

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
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    def close(self) -> None:
        self.db.close()
