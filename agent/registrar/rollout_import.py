"""Rollouts kept before schema 4, outside the versioned migrations, taken in by migration 3.

- SQLite: a ``rollouts.sqlite`` beside the registry file is ATTACHed (outside any transaction, as
  SQLite requires), its rows copied into the new tables inside migration 3's transaction, and once that
  committed the file is renamed ``rollouts.sqlite.imported`` (kept, never deleted). A file that cannot
  be read is a StateError naming it; the registry then stays at schema 3.
- PostgreSQL: the unversioned ``rollout*`` tables an older registrar made are renamed aside (with their
  key indexes and sequence), migration 3 creates its own, the rows are copied and the old tables dropped,
  all in migration 3's transaction.

Only the columns both sides have are copied: an older store lacking later columns gets their defaults.
Events keep their old order (SQLite's rowid, PostgreSQL's ``seq``) and are numbered anew.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from agent.errors import StateError
from agent.registrar import dbfile

if TYPE_CHECKING:
    import psycopg
    from psycopg.rows import DictRow

log = logging.getLogger("edge-registrar.rollout")

LEGACY_NAME = "rollouts.sqlite"
TABLES = ("rollouts", "rollout_nodes", "rollout_events")
ASIDE = "_unversioned"  # what an old PostgreSQL table is renamed to while its rows are copied
_ALIAS = "legacy_rollouts"


@contextlib.contextmanager
def attached(db: sqlite3.Connection, path: Path | None) -> Iterator[bool]:
    """``path`` ATTACHed to ``db`` while the block runs (True); False when there is none."""
    if path is None or not path.exists():
        yield False
        return
    try:
        db.execute(f"ATTACH DATABASE ? AS {_ALIAS}", (str(path),))
    except sqlite3.Error as exc:
        raise StateError(f"{path}: cannot read the rollouts to import: {exc}") from exc
    try:
        yield True
    finally:
        db.execute(f"DETACH DATABASE {_ALIAS}")


def copy_sqlite(db: sqlite3.Connection, path: Path) -> int:
    """Copy the attached ``path``'s rows into the new tables (inside the caller's transaction); how many rollouts."""
    try:
        for table in TABLES:
            old = {r[1] for r in db.execute(f"PRAGMA {_ALIAS}.table_info({table})")}
            if old:  # else never made in that file
                cols = ", ".join(_shared([r[1] for r in db.execute(f"PRAGMA main.table_info({table})")], old))
                db.execute(f"INSERT INTO main.{table} ({cols}) SELECT {cols} FROM {_ALIAS}.{table} ORDER BY rowid")  # noqa: S608
        return int(db.execute("SELECT count(*) FROM main.rollouts").fetchone()[0])
    except sqlite3.Error as exc:
        raise StateError(f"{path}: cannot import its rollouts: {exc}") from exc


def _shared(new: list[str], old: set[str]) -> list[str]:
    """The new table's columns the old one has too, but ``seq``: events are numbered anew, in their old order."""
    return [c for c in new if c in old and c != "seq"]


def retire(path: Path, rollouts: int, registry: Path) -> None:
    """Rename the imported ``path`` aside (agent.registrar.dbfile.retire). The rows are in the registry by
    now: a rename refused is said and the file left where it is."""
    try:
        target = dbfile.retire(path)
    except OSError as exc:
        log.warning("%s: %d rollouts imported into %s; cannot rename it (%s): it is no longer read", path,
                    rollouts, registry, exc)  # fmt: skip
        return
    log.info("%s: %d rollouts imported into %s; the old file is kept as %s", path, rollouts, registry, target)


def set_aside(conn: psycopg.Connection[DictRow]) -> list[str]:
    """Rename the old rollout tables found, their indexes and ``seq`` sequence too (so the new ones get the
    names a fresh database has); the tables renamed."""
    from psycopg import sql

    found = []
    for table in TABLES:
        row = conn.execute("SELECT to_regclass(%s)::text AS t", (table,)).fetchone()
        if row is None or row["t"] is None:
            continue
        owned = conn.execute(  # its indexes (the key) and sequences (``seq BIGSERIAL``)
            "SELECT c.relname AS name, c.relkind AS kind FROM pg_class c WHERE c.oid IN ("
            " SELECT indexrelid FROM pg_index WHERE indrelid = %s::regclass"
            " UNION SELECT objid FROM pg_depend WHERE refobjid = %s::regclass AND classid = 'pg_class'::regclass)"
            " AND c.relkind IN ('i', 'S')",
            (table, table),
        ).fetchall()
        conn.execute(
            sql.SQL("ALTER TABLE {} RENAME TO {}").format(sql.Identifier(table), sql.Identifier(table + ASIDE))
        )
        for rel in owned:
            kind = sql.SQL("INDEX" if rel["kind"] == "i" else "SEQUENCE")
            new_name = sql.Identifier(rel["name"] + ASIDE)
            conn.execute(sql.SQL("ALTER {} {} RENAME TO {}").format(kind, sql.Identifier(rel["name"]), new_name))
        found.append(table)
    return found


def copy_back(conn: psycopg.Connection[DictRow], tables: list[str]) -> int:
    """Copy the set-aside ``tables``' rows into the new ones and drop them; how many rollouts."""
    from psycopg import sql

    for table in tables:
        aside = table + ASIDE
        old = set(_pg_columns(conn, aside))
        cols = sql.SQL(", ").join(sql.Identifier(c) for c in _shared(_pg_columns(conn, table), old))
        order = sql.SQL(" ORDER BY seq" if "seq" in old else "")
        conn.execute(
            sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}{}").format(
                sql.Identifier(table), cols, cols, sql.Identifier(aside), order
            )
        )
        conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(aside)))
    row = conn.execute("SELECT count(*) AS n FROM rollouts").fetchone()
    return int(row["n"]) if row else 0


def _pg_columns(conn: psycopg.Connection[DictRow], table: str) -> list[str]:
    rows = conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped"
        " ORDER BY attnum",
        (table,),
    ).fetchall()
    return [r["attname"] for r in rows]
