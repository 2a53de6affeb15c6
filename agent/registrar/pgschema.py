"""The registry's schema on PostgreSQL: the shared migrations (agent.registrar.schema), applied by
whichever process takes ``pg_advisory_lock(MIGRATION_LOCK)`` first (a replica's registry or its rollout
store, both call ``migrate``); the others wait on the lock and then find the schema current, so
migrations never run twice or concurrently. Each step is one transaction; step 3 also adopts the
unversioned rollout tables an older registrar made (agent.registrar.rollout_import). The version is in
``schema_version``; a database newer than this code is refused.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg.rows import DictRow

from agent.errors import StateError
from agent.registrar import rollout_import
from agent.registrar.schema import MIGRATIONS, SCHEMA, for_postgres

log = logging.getLogger("edge-registrar.postgres")

MIGRATION_LOCK = 0x6564676552656701  # pg_advisory_lock key of the registry's migrations


def redacted(url: str) -> str:
    """``url`` without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def migrate(conn: psycopg.Connection[DictRow], name: str) -> None:
    """Bring the database ``name`` to SCHEMA on ``conn`` (autocommit, rows as dicts), under the lock."""
    conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = conn.execute("SELECT version FROM schema_version").fetchone()
        version = int(row["version"]) if row else 0
        if version > SCHEMA:
            raise StateError(f"database {name}: registry schema {version} is newer than this registrar ({SCHEMA})")
        while version < SCHEMA:
            adopted = None
            with conn.transaction():
                aside = rollout_import.set_aside(conn) if version == 3 else []
                for stmt in MIGRATIONS[version]:
                    conn.execute(for_postgres(stmt).encode())
                if aside:
                    adopted = rollout_import.copy_back(conn, aside)
                version += 1
                conn.execute("DELETE FROM schema_version")
                conn.execute("INSERT INTO schema_version VALUES (%s)", (version,))
            log.info("database %s: registry schema %d", name, version)
            if adopted is not None:
                log.info("database %s: %d rollouts of the unversioned rollout tables adopted", name, adopted)
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
