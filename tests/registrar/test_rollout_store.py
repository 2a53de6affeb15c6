"""The rollout store in the registry's own store, on every backend: claims give a node one driver; the
rollouts an older release kept outside the versioned schema (``rollouts.sqlite``, unversioned PostgreSQL
tables) are taken in by migration 3, nothing lost."""

from __future__ import annotations

import logging
import re
import sqlite3
from pathlib import Path

import psycopg
import pytest

from agent.errors import StateError
from agent.registrar.database import open_registry
from agent.registrar.registry import Node
from agent.registrar.rollout_store import RolloutStore
from agent.registrar.schema import MIGRATIONS, SCHEMA, for_postgres
from agent.registrar.sqlite import SqliteRegistry
from bench.helpers.pgcluster import PgCluster

BUNDLE = "https://releases.example/b.tar"


def test_a_node_has_one_driver_until_its_claim_runs_out_or_it_is_final(registry_url: str, tmp_path: Path) -> None:
    store = RolloutStore.beside(registry_url, tmp_path)
    other = RolloutStore.beside(registry_url, tmp_path)  # another replica's connection
    try:
        nodes = [Node("a1", "approved", "t", "f", role="agent"), Node("a2", "approved", "t", "f", role="agent")]
        rid = store.create(BUNDLE, {"site": "lab"}, [nodes], force=False, batch_size=2, canary=1, driver="replicas")
        assert other.running_on_replicas() == [rid]
        assert store.claim(rid, "a1", "r-a", ttl=10, now=100)
        assert not other.claim(rid, "a1", "r-b", ttl=10, now=105)  # r-a drives it
        assert store.claim(rid, "a1", "r-a", ttl=10, now=108)  # renewed: until 118
        assert not other.claim(rid, "a1", "r-b", ttl=10, now=115)
        assert other.claim(rid, "a1", "r-b", ttl=10, now=119)  # r-a stopped renewing: r-b takes it over
        other.set_node(rid, "a1", "running", "u-1")
        other.set_node(rid, "a1", "committed", "u-1", "healthy", by="r-b")
        assert not store.claim(rid, "a1", "r-a", ttl=10, now=200)  # final: nobody drives it again
        assert other.pause(rid, "a2: rolled-back") and not store.pause(rid, "a2: again")
        doc = store.get(rid)
        assert doc is not None and doc["state"] == "paused" and doc["reason"] == "a2: rolled-back"
        row = next(n for n in doc["nodes"] if n["node_id"] == "a1")
        assert (row["state"], row["upgrade_id"], row["driven_by"]) == ("committed", "u-1", "r-b")
        assert store.running_on_replicas() == []
        assert [e["event"] for e in doc["events"]] == ["created"]
    finally:
        store.close()
        other.close()


OLD_FILE = """CREATE TABLE rollouts (id TEXT PRIMARY KEY, bundle TEXT NOT NULL, selector TEXT NOT NULL,
        force INTEGER NOT NULL, batch_size INTEGER NOT NULL, canary INTEGER NOT NULL, state TEXT NOT NULL,
        reason TEXT NOT NULL, created_at REAL NOT NULL, updated_at REAL NOT NULL);
    CREATE TABLE rollout_nodes (rollout_id TEXT NOT NULL, node_id TEXT NOT NULL, batch INTEGER NOT NULL,
        position INTEGER NOT NULL, role TEXT NOT NULL, state TEXT NOT NULL, upgrade_id TEXT NOT NULL,
        reason TEXT NOT NULL, updated_at REAL NOT NULL, PRIMARY KEY (rollout_id, node_id));
    CREATE TABLE rollout_events (rollout_id TEXT NOT NULL, at REAL NOT NULL, node_id TEXT NOT NULL,
        event TEXT NOT NULL, detail TEXT NOT NULL);
    INSERT INTO rollouts VALUES ('r-old', 'https://x/b.tar', '{"site": "lab"}', 0, 5, 1, 'paused', 'a1: failed',
        1.0, 2.0);
    INSERT INTO rollout_nodes VALUES ('r-old', 'a1', 0, 0, 'agent', 'failed', 'u-9', 'rolled-back', 2.0);
    INSERT INTO rollout_events VALUES ('r-old', 1.0, '', 'created', 'bundle https://x/b.tar');
    INSERT INTO rollout_events VALUES ('r-old', 3.0, 'a1', 'retry', 'by alice');
    INSERT INTO rollout_events VALUES ('r-old', 3.0, '', 'resumed', 'by alice');"""  # one instant: rowid orders


def schema_3_registry(path: Path) -> None:
    """A registry.sqlite as the release before rollouts joined the schema left it, with one node."""
    db = sqlite3.connect(path)
    for version in range(3):
        for stmt in MIGRATIONS[version]:
            db.execute(stmt)
    db.execute("INSERT INTO nodes (node_id, state, token_id, key_fingerprint, site, labels, created_at) "
               "VALUES ('old-box', 'approved', 't0', 'fp', 'lab', '{}', 1.0)")  # fmt: skip
    db.execute("PRAGMA user_version = 3")
    db.commit()
    db.close()


def test_an_older_rollouts_file_is_imported_into_the_registry_file_and_kept_renamed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "edge-registrar")
    schema_3_registry(tmp_path / "registry.sqlite")
    old = sqlite3.connect(tmp_path / "rollouts.sqlite")
    old.executescript(OLD_FILE)
    old.close()
    store = RolloutStore(tmp_path)
    try:
        doc = store.get("r-old")
        assert doc is not None and (doc["state"], doc["driver"], doc["version"]) == ("paused", "", "")
        assert doc["nodes"][0]["state"] == "failed" and doc["nodes"][0]["retry"] is False
        assert [e["event"] for e in doc["events"]] == ["created", "retry", "resumed"]
        rid = store.create(BUNDLE, {}, [[Node("b1", "approved", "t", "f")]], force=True, batch_size=1, canary=1)
        store.event("r-old", "resumed", "by bob")
        assert [e["detail"] for e in store.get("r-old")["events"]][-2:] == ["by alice", "by bob"]  # type: ignore[index]
        assert [d["id"] for d in store.list()] == [rid, "r-old"]
    finally:
        store.close()
    assert not (tmp_path / "rollouts.sqlite").exists()
    assert f"{tmp_path}/rollouts.sqlite: 1 rollouts imported into {tmp_path}/registry.sqlite; the old file is kept as" \
        f" {tmp_path}/rollouts.sqlite.imported" in caplog.messages  # fmt: skip
    kept = sqlite3.connect(tmp_path / "rollouts.sqlite.imported")  # renamed, its rows untouched
    assert kept.execute("SELECT id, state FROM rollouts").fetchall() == [("r-old", "paused")]
    assert kept.execute("SELECT count(*) FROM rollout_events").fetchone() == (3,)
    kept.close()
    registry = sqlite3.connect(tmp_path / "registry.sqlite")  # the rollouts are in the registry's own file
    assert registry.execute("SELECT id FROM rollouts ORDER BY created_at").fetchall() == [("r-old",), (rid,)]
    assert registry.execute("PRAGMA user_version").fetchone() == (SCHEMA,)
    registry.close()
    reg = SqliteRegistry(tmp_path / "registry.sqlite")
    try:
        assert reg.get_node("old-box") is not None
    finally:
        reg.close()


def test_an_unreadable_rollouts_file_is_named_and_the_registry_stays_at_schema_3(tmp_path: Path) -> None:
    schema_3_registry(tmp_path / "registry.sqlite")
    broken = tmp_path / "rollouts.sqlite"
    broken.write_bytes(b"not a database, " * 64)
    for open_it in (lambda: RolloutStore(tmp_path), lambda: SqliteRegistry(tmp_path / "registry.sqlite")):
        with pytest.raises(
            StateError, match=re.escape(f"{broken}: cannot read the rollouts to import: file is not a database")
        ):
            open_it()
    assert broken.read_bytes() == b"not a database, " * 64 and not (tmp_path / "rollouts.sqlite.imported").exists()
    registry = sqlite3.connect(tmp_path / "registry.sqlite")
    assert registry.execute("PRAGMA user_version").fetchone() == (3,)
    assert registry.execute("SELECT name FROM sqlite_master WHERE name LIKE 'rollout%'").fetchall() == []
    registry.close()


# the rollout tables as the release before made them on PostgreSQL, without the later driver/driven_by columns
OLD_TABLES = (
    "CREATE TABLE rollouts (id TEXT PRIMARY KEY)",
    "CREATE TABLE rollout_nodes (rollout_id TEXT NOT NULL, node_id TEXT NOT NULL, PRIMARY KEY (rollout_id, node_id))",
    "CREATE TABLE rollout_events (rollout_id TEXT NOT NULL)",
    "ALTER TABLE rollout_events ADD COLUMN IF NOT EXISTS seq BIGSERIAL",
    """ALTER TABLE rollouts ADD COLUMN bundle TEXT NOT NULL DEFAULT '', ADD COLUMN selector TEXT NOT NULL DEFAULT '{}',
        ADD COLUMN force INTEGER NOT NULL DEFAULT 0, ADD COLUMN batch_size INTEGER NOT NULL DEFAULT 1,
        ADD COLUMN canary INTEGER NOT NULL DEFAULT 1, ADD COLUMN state TEXT NOT NULL DEFAULT 'created',
        ADD COLUMN reason TEXT NOT NULL DEFAULT '', ADD COLUMN created_at DOUBLE PRECISION NOT NULL DEFAULT 0,
        ADD COLUMN updated_at DOUBLE PRECISION NOT NULL DEFAULT 0, ADD COLUMN kind TEXT NOT NULL DEFAULT '',
        ADD COLUMN version TEXT NOT NULL DEFAULT ''""",
    """ALTER TABLE rollout_nodes ADD COLUMN batch INTEGER NOT NULL DEFAULT 0,
        ADD COLUMN position INTEGER NOT NULL DEFAULT 0, ADD COLUMN role TEXT NOT NULL DEFAULT '',
        ADD COLUMN state TEXT NOT NULL DEFAULT 'pending', ADD COLUMN upgrade_id TEXT NOT NULL DEFAULT '',
        ADD COLUMN reason TEXT NOT NULL DEFAULT '', ADD COLUMN updated_at DOUBLE PRECISION NOT NULL DEFAULT 0,
        ADD COLUMN retry INTEGER NOT NULL DEFAULT 0, ADD COLUMN claimed_by TEXT NOT NULL DEFAULT '',
        ADD COLUMN claimed_until DOUBLE PRECISION NOT NULL DEFAULT 0""",
    """ALTER TABLE rollout_events ADD COLUMN at DOUBLE PRECISION NOT NULL DEFAULT 0,
        ADD COLUMN node_id TEXT NOT NULL DEFAULT '', ADD COLUMN event TEXT NOT NULL DEFAULT '',
        ADD COLUMN detail TEXT NOT NULL DEFAULT ''""",
    "INSERT INTO rollouts (id, bundle, state, created_at) VALUES ('r-old', 'https://x/b.tar', 'running', 1.0)",
    """INSERT INTO rollout_nodes (rollout_id, node_id, state, upgrade_id, claimed_by, claimed_until)
        VALUES ('r-old', 'a1', 'running', 'u-1', 'replica-a', 50.0)""",
    "INSERT INTO rollout_events (rollout_id, at, event) VALUES ('r-old', 5.0, 'created')",
    "INSERT INTO rollout_events (rollout_id, at, event) VALUES ('r-old', 4.0, 'resumed')",  # a replica's clock behind
)


def rollout_relations(url: str) -> list[tuple[str, str]]:
    """The rollout tables' relations (tables, indexes, sequences) by name and kind."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT relname, relkind::text FROM pg_class WHERE relname LIKE 'rollout%' ORDER BY relname"
        ).fetchall()
    return [(r[0], r[1]) for r in rows]


def schema_3_database(pg_cluster: PgCluster) -> str:
    """A fresh database of the registry at schema 3, as the release before the rollout tables left it."""
    url = pg_cluster.new_database()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        for version in range(3):
            for stmt in MIGRATIONS[version]:
                conn.execute(for_postgres(stmt).encode())
        conn.execute("INSERT INTO schema_version VALUES (3)")
    return url


def test_old_style_postgres_rollout_tables_are_adopted_by_migration_3(pg_cluster: PgCluster, tmp_path: Path) -> None:
    url = schema_3_database(pg_cluster)
    with psycopg.connect(url, autocommit=True) as conn:
        for stmt in OLD_TABLES:
            conn.execute(stmt.encode())
    store = RolloutStore.beside(url, tmp_path)
    try:
        doc = store.get("r-old")
        assert doc is not None and (doc["bundle"], doc["state"], doc["driver"]) == ("https://x/b.tar", "running", "")
        node = doc["nodes"][0]
        assert (node["node_id"], node["state"], node["upgrade_id"], node["driven_by"]) == ("a1", "running", "u-1", "")
        assert not store.claim("r-old", "a1", "replica-b", ttl=10, now=45)  # the claim was kept
        assert [e["event"] for e in doc["events"]] == ["created", "resumed"]  # in the order written
        store.event("r-old", "paused", "by alice")
        assert [e["event"] for e in store.get("r-old")["events"]] == ["created", "resumed", "paused"]  # type: ignore[index]
    finally:
        store.close()
    reg = open_registry(url, tmp_path)
    try:
        assert reg.schema_version() == SCHEMA  # type: ignore[attr-defined]
    finally:
        reg.close()
    fresh = pg_cluster.new_database()
    open_registry(fresh, tmp_path).close()
    assert rollout_relations(url) == rollout_relations(fresh)  # no table left aside, the names a fresh one has


def test_a_failed_adoption_leaves_the_postgres_database_at_schema_3(pg_cluster: PgCluster, tmp_path: Path) -> None:
    url = schema_3_database(pg_cluster)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE rollouts (id TEXT PRIMARY KEY, bundle TEXT)")  # a NULL the new table refuses
        conn.execute("INSERT INTO rollouts VALUES ('r-old', NULL)")
    with pytest.raises(StateError, match=r"rollout store: .*null value"):
        RolloutStore.beside(url, tmp_path)
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(3,)]
        assert conn.execute("SELECT id, bundle FROM rollouts").fetchall() == [("r-old", None)]
    assert [r[0] for r in rollout_relations(url)] == ["rollouts", "rollouts_pkey"]
