"""Where rollouts are kept: in the registry's own store, so every replica on one database sees the same ones.

The tables ``rollouts``, ``rollout_nodes``, ``rollout_events`` are part of the registry's versioned
schema (agent.registrar.schema, migration 3); this module creates and alters none. Opening the store
makes sure the registry's schema is current with the registry's own migration code:
- the embedded SQLite registry: ``registry.sqlite`` in the state directory (or the file a
  ``sqlite:///PATH`` URL names), through ``agent.registrar.sqlite.migrate`` (BEGIN IMMEDIATE);
- PostgreSQL: the registry's database, through ``agent.registrar.pgschema.migrate`` (its advisory lock).

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
from agent.registrar.sqlite import DB_NAME, migrate

EVENT_COLS = "rollout_id, at, node_id, event, detail"


class Sql(Protocol):
    name: str

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]: ...
    def run(self, sql: str, params: Sequence[Any] = ()) -> int: ...
    def transaction(self) -> contextlib.AbstractContextManager[None]: ...
    def close(self) -> None: ...


class SqliteSql:
    def __init__(self, path: Path) -> None:
        """The rollout tables of the registry file ``path``."""
        self.name = str(path)
        try:
            self.db = open_private(path)
            migrate(self.db, path)
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
    def __init__(self, url: str) -> None:
        import psycopg  # only where PostgreSQL is used

        from agent.registrar.pgschema import migrate as migrate_pg
        from agent.registrar.pgschema import redacted

        self.url = url
        self.name = redacted(url)
        self._psycopg = psycopg
        self._conn: Any = None
        with self._connected() as conn:
            migrate_pg(conn, self.name)

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
    """The rollout tables of the registry ``url`` names (None: ``state_dir``'s registry.sqlite)."""
    if not url:
        return SqliteSql(state_dir / DB_NAME)
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        return SqliteSql(Path(unquote(parts.path)))
    return PgSql(url)
