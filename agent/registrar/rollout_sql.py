"""Where rollouts are kept: beside the registry, so every replica on one database sees the same ones.

- the embedded SQLite registry: ``rollouts.sqlite`` in the state directory (or beside the file a
  ``sqlite:///PATH`` URL names, so replicas sharing that file share the rollouts too);
- PostgreSQL: three ``rollout*`` tables in the registry's database, created (and given the columns later
  releases added) under their own advisory lock by whichever process opens them first.

The store speaks one SQL dialect with ``?`` placeholders; :class:`PgSql` turns them into ``%s``.
Every call that cannot reach PostgreSQL raises ``RegistryUnavailable``; the next call reconnects.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from agent.errors import RegistryUnavailable, StateError
from agent.registrar.dbfile import open_private, transaction

DB_NAME = "rollouts.sqlite"
SCHEMA_LOCK = 0x6564676552656F02  # pg_advisory_lock key of the rollout tables ("edgeReo" 2)

TABLES = {  # each table's key; every other column is added when missing (older files, older databases)
    "rollouts": "id TEXT PRIMARY KEY",
    "rollout_nodes": "rollout_id TEXT NOT NULL, node_id TEXT NOT NULL, PRIMARY KEY (rollout_id, node_id)",
    "rollout_events": "rollout_id TEXT NOT NULL",
}
# per table, one column a line; REAL is DOUBLE PRECISION on PostgreSQL
_COLUMNS = {
    "rollouts": """bundle TEXT NOT NULL DEFAULT ''
        selector TEXT NOT NULL DEFAULT '{}'
        force INTEGER NOT NULL DEFAULT 0
        batch_size INTEGER NOT NULL DEFAULT 1
        canary INTEGER NOT NULL DEFAULT 1
        state TEXT NOT NULL DEFAULT 'created'
        reason TEXT NOT NULL DEFAULT ''
        created_at REAL NOT NULL DEFAULT 0
        updated_at REAL NOT NULL DEFAULT 0
        kind TEXT NOT NULL DEFAULT ''
        version TEXT NOT NULL DEFAULT ''
        driver TEXT NOT NULL DEFAULT ''""",  # '' the command that made it drives it; 'replicas'
    "rollout_nodes": """batch INTEGER NOT NULL DEFAULT 0
        position INTEGER NOT NULL DEFAULT 0
        role TEXT NOT NULL DEFAULT ''
        state TEXT NOT NULL DEFAULT 'pending'
        upgrade_id TEXT NOT NULL DEFAULT ''
        reason TEXT NOT NULL DEFAULT ''
        updated_at REAL NOT NULL DEFAULT 0
        retry INTEGER NOT NULL DEFAULT 0
        claimed_by TEXT NOT NULL DEFAULT ''
        claimed_until REAL NOT NULL DEFAULT 0
        driven_by TEXT NOT NULL DEFAULT ''""",  # claimed_*: who drives it now; driven_by: who recorded it
    "rollout_events": """at REAL NOT NULL DEFAULT 0
        node_id TEXT NOT NULL DEFAULT ''
        event TEXT NOT NULL DEFAULT ''
        detail TEXT NOT NULL DEFAULT ''""",
}
# (table, column, declaration)
COLUMNS = [(table, *line.strip().split(" ", 1)) for table, lines in _COLUMNS.items() for line in lines.splitlines()]
EVENT_COLS = "rollout_id, at, node_id, event, detail"


class Sql(Protocol):
    name: str
    order: str  # the column that orders rows inserted at one instant

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]: ...
    def run(self, sql: str, params: Sequence[Any] = ()) -> int: ...
    def transaction(self) -> contextlib.AbstractContextManager[None]: ...
    def close(self) -> None: ...


class SqliteSql:
    order = "rowid"

    def __init__(self, path: Path) -> None:
        self.name = str(path)
        try:
            self.db = open_private(path)
            for table, key in TABLES.items():
                self.db.execute(f"CREATE TABLE IF NOT EXISTS {table} ({key})")
            for table, column, decl in COLUMNS:
                have = {r[1] for r in self.db.execute(f"PRAGMA table_info({table})")}
                if column not in have:
                    self.db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {decl}")
        except sqlite3.Error as exc:
            raise StateError(f"{path}: rollout store unusable: {exc}") from exc

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        return [dict(r) for r in self.db.execute(sql, params)]

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self.db.execute(sql, params).rowcount

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        with transaction(self.db):
            yield

    def close(self) -> None:
        self.db.close()


class PgSql:
    order = "seq"

    def __init__(self, url: str) -> None:
        import psycopg  # only where PostgreSQL is used

        from agent.registrar.pgschema import redacted

        self.url = url
        self.name = redacted(url)
        self._psycopg = psycopg
        self._conn: Any = None
        with self._connected() as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK,))
            try:
                for table, key in TABLES.items():
                    conn.execute(f"CREATE TABLE IF NOT EXISTS {table} ({key})")
                conn.execute("ALTER TABLE rollout_events ADD COLUMN IF NOT EXISTS seq BIGSERIAL")
                for table, column, decl in COLUMNS:
                    decl = decl.replace("REAL", "DOUBLE PRECISION")
                    conn.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {decl}")
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (SCHEMA_LOCK,))

    @contextlib.contextmanager
    def _connected(self) -> Iterator[Any]:
        from psycopg.rows import dict_row

        try:
            if self._conn is None or self._conn.closed:
                self._conn = self._psycopg.connect(self.url, autocommit=True, row_factory=dict_row, connect_timeout=5)
            yield self._conn
        except self._psycopg.OperationalError as exc:
            if self._conn is not None:
                self._conn.close()
            self._conn = None
            raise RegistryUnavailable(f"database {self.name}: {str(exc).strip()}") from exc
        except self._psycopg.Error as exc:
            raise StateError(f"database {self.name}: rollout store: {exc}") from exc

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self._connected() as conn:
            return list(conn.execute(sql.replace("?", "%s"), params).fetchall())

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        with self._connected() as conn:
            return int(conn.execute(sql.replace("?", "%s"), params).rowcount)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        with self._connected() as conn, conn.transaction():
            yield

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def open_sql(url: str | None, state_dir: Path) -> Sql:
    """The rollout tables of the registry ``url`` names (None: the embedded SQLite in ``state_dir``)."""
    if not url:
        return SqliteSql(state_dir / DB_NAME)
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        return SqliteSql(Path(unquote(parts.path)).parent / DB_NAME)
    return PgSql(url)
