"""The registry's one set of versioned schema migrations, for every backend (the rollout tables included).

``MIGRATIONS[n]`` holds the statements that turn schema n into n+1, written in the SQL that SQLite and
PostgreSQL share; ``for_postgres`` maps the two things that differ: SQLite's REAL is 8 bytes, PostgreSQL's
4 (timestamps need DOUBLE PRECISION), and a column ``INTEGER PRIMARY KEY`` (SQLite's rowid alias, numbered
in insertion order) is an identity column there. SQLite records the version in ``PRAGMA user_version``,
PostgreSQL in the ``schema_version`` table; a store newer than this code is refused rather than guessed at.
Rollouts kept before schema 4 (outside these migrations) are imported by migration 3
(agent.registrar.rollout_import).
"""

from __future__ import annotations

import re

SCHEMA = 5
MIGRATIONS: dict[int, tuple[str, ...]] = {
    0: (
        """CREATE TABLE tokens (
            token_id TEXT PRIMARY KEY, secret_hash TEXT NOT NULL, expires_at REAL NOT NULL,
            uses_left INTEGER NOT NULL, site TEXT NOT NULL, labels TEXT NOT NULL,
            require_approval INTEGER NOT NULL, created_at REAL NOT NULL)""",
        """CREATE TABLE nodes (
            node_id TEXT PRIMARY KEY, state TEXT NOT NULL, token_id TEXT NOT NULL,
            key_fingerprint TEXT NOT NULL, site TEXT NOT NULL, labels TEXT NOT NULL,
            created_at REAL NOT NULL, serial TEXT NOT NULL DEFAULT '',
            cert_not_after REAL NOT NULL DEFAULT 0, cluster TEXT NOT NULL DEFAULT '',
            role TEXT NOT NULL DEFAULT '', cluster_init INTEGER NOT NULL DEFAULT 0,
            addresses TEXT NOT NULL DEFAULT '[]', observed TEXT NOT NULL DEFAULT '',
            api_port INTEGER NOT NULL DEFAULT 7443, inventory TEXT NOT NULL DEFAULT '{}',
            status TEXT NOT NULL DEFAULT '{}', last_seen REAL NOT NULL DEFAULT 0,
            dmi_serial TEXT NOT NULL DEFAULT '')""",
        "CREATE INDEX nodes_cluster ON nodes(cluster)",
        """CREATE TABLE certs (
            serial TEXT PRIMARY KEY, node_id TEXT NOT NULL, not_after REAL NOT NULL,
            revoked_at REAL)""",
        "CREATE INDEX certs_node ON certs(node_id)",
        """CREATE TABLE clusters (
            name TEXT PRIMARY KEY, distribution TEXT NOT NULL, version TEXT NOT NULL,
            servers INTEGER NOT NULL, server_token TEXT NOT NULL DEFAULT '',
            agent_token TEXT NOT NULL DEFAULT '')""",
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
        "INSERT INTO meta VALUES ('crl_number', 1)",
    ),
    # who approved a node, approval policies and machine classes, the nodes' audit trail
    1: (
        "ALTER TABLE nodes ADD COLUMN approved_by TEXT NOT NULL DEFAULT ''",
        """CREATE TABLE rules (
            kind TEXT NOT NULL, name TEXT NOT NULL, spec TEXT NOT NULL, created_at REAL NOT NULL,
            PRIMARY KEY (kind, name))""",
        """CREATE TABLE node_events (
            at REAL NOT NULL, node_id TEXT NOT NULL, action TEXT NOT NULL, actor TEXT NOT NULL,
            detail TEXT NOT NULL)""",
        "CREATE INDEX node_events_node ON node_events(node_id)",
    ),
    # state several replicas share instead of keeping it in memory: the bootstrap-guess budget per
    # source, leases (which replicas are alive to share the poll), and each replica's poll results
    2: (
        "CREATE TABLE guesses (source TEXT PRIMARY KEY, level REAL NOT NULL, at REAL NOT NULL)",
        "CREATE INDEX guesses_at ON guesses(at)",
        "CREATE INDEX nodes_cluster_role ON nodes(cluster, role)",  # a cluster's servers, at every heartbeat
        "CREATE TABLE leases (name TEXT PRIMARY KEY, holder TEXT NOT NULL, expires_at REAL NOT NULL)",
        """CREATE TABLE poll_results (
            node_id TEXT PRIMARY KEY, row TEXT NOT NULL, polled_at REAL NOT NULL, polled_by TEXT NOT NULL)""",
    ),
    # the rollouts (agent.registrar.rollout_store), until now kept beside the registry without a version
    3: (
        """CREATE TABLE rollouts (
            id TEXT PRIMARY KEY, bundle TEXT NOT NULL DEFAULT '', selector TEXT NOT NULL DEFAULT '{}',
            force INTEGER NOT NULL DEFAULT 0, batch_size INTEGER NOT NULL DEFAULT 1,
            canary INTEGER NOT NULL DEFAULT 1, state TEXT NOT NULL DEFAULT 'created',
            reason TEXT NOT NULL DEFAULT '', created_at REAL NOT NULL DEFAULT 0,
            updated_at REAL NOT NULL DEFAULT 0, kind TEXT NOT NULL DEFAULT '',
            version TEXT NOT NULL DEFAULT '', driver TEXT NOT NULL DEFAULT '')""",
        """CREATE TABLE rollout_nodes (
            rollout_id TEXT NOT NULL, node_id TEXT NOT NULL, batch INTEGER NOT NULL DEFAULT 0,
            position INTEGER NOT NULL DEFAULT 0, role TEXT NOT NULL DEFAULT '',
            state TEXT NOT NULL DEFAULT 'pending', upgrade_id TEXT NOT NULL DEFAULT '',
            reason TEXT NOT NULL DEFAULT '', updated_at REAL NOT NULL DEFAULT 0, retry INTEGER NOT NULL DEFAULT 0,
            claimed_by TEXT NOT NULL DEFAULT '', claimed_until REAL NOT NULL DEFAULT 0,
            driven_by TEXT NOT NULL DEFAULT '', PRIMARY KEY (rollout_id, node_id))""",
        """CREATE TABLE rollout_events (
            seq INTEGER PRIMARY KEY, rollout_id TEXT NOT NULL, at REAL NOT NULL DEFAULT 0,
            node_id TEXT NOT NULL DEFAULT '', event TEXT NOT NULL DEFAULT '', detail TEXT NOT NULL DEFAULT '')""",
        "CREATE INDEX rollout_events_rollout ON rollout_events(rollout_id, seq)",
    ),
    # the instances a node was heard as and its DuplicateIdentity flags (agent.registrar.duplicates), kept
    # where every replica judges with them (a registrar before this kept them per replica, in a file)
    4: (
        "ALTER TABLE nodes ADD COLUMN instance TEXT NOT NULL DEFAULT ''",
        """CREATE TABLE node_instances (
            node_id TEXT NOT NULL, instance TEXT NOT NULL, first_seen REAL NOT NULL, last_seen REAL NOT NULL,
            PRIMARY KEY (node_id, instance))""",
        """CREATE TABLE duplicates (
            node_id TEXT PRIMARY KEY, original TEXT NOT NULL, second TEXT NOT NULL, flagged_at REAL NOT NULL)""",
    ),
}

_REAL = re.compile(r"\bREAL\b")
_ROWID = re.compile(r"\b(\w+) INTEGER PRIMARY KEY\b")


def for_postgres(stmt: str) -> str:
    stmt = _ROWID.sub(r"\1 BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", stmt)
    return _REAL.sub("DOUBLE PRECISION", stmt)
