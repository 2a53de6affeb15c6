"""The embedded registry: one SQLite file in WAL mode, schema versioned by ``PRAGMA user_version``.

``MIGRATIONS[n]`` holds the statements that turn schema n into n+1; a file
newer than this code is refused rather than guessed at. The file is 0600:
it holds join tokens the registrar hands to members.

Every write goes through ``_write()``: BEGIN IMMEDIATE, COMMIT, ROLLBACK on any
exception, so one failed statement (a duplicate serial, say) never leaves the
connection inside an open transaction for every later write to trip over.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from agent.errors import StateError
from agent.registrar.dbfile import open_private, transaction
from agent.registrar.registry import Cluster, Node, NodeState
from agent.registrar.tokens import TokenRecord

DB_NAME = "registry.sqlite"
SCHEMA = 2
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
}

_NODE_COLS = (
    "node_id, state, token_id, key_fingerprint, site, labels, created_at, serial, cert_not_after, "
    "cluster, role, cluster_init, addresses, observed, api_port, inventory, status, last_seen, dmi_serial, "
    "approved_by"
)


def _node(row: sqlite3.Row) -> Node:
    return Node(
        node_id=row["node_id"],
        state=row["state"],
        token_id=row["token_id"],
        key_fingerprint=row["key_fingerprint"],
        site=row["site"],
        labels=json.loads(row["labels"]),
        created_at=row["created_at"],
        serial=row["serial"],
        cert_not_after=row["cert_not_after"],
        cluster=row["cluster"],
        role=row["role"],
        cluster_init=bool(row["cluster_init"]),
        addresses=json.loads(row["addresses"]),
        observed=row["observed"],
        api_port=row["api_port"],
        inventory=json.loads(row["inventory"]),
        status=json.loads(row["status"]),
        last_seen=row["last_seen"],
        dmi_serial=row["dmi_serial"],
        approved_by=row["approved_by"],
    )


def _token(row: sqlite3.Row) -> TokenRecord:
    return TokenRecord(
        token_id=row["token_id"],
        secret_hash=row["secret_hash"],
        expires_at=row["expires_at"],
        uses_left=row["uses_left"],
        site=row["site"],
        labels=json.loads(row["labels"]),
        require_approval=bool(row["require_approval"]),
        created_at=row["created_at"],
    )


def _event(db: sqlite3.Connection, node_id: str, action: str, actor: str, detail: str) -> None:
    db.execute("INSERT INTO node_events VALUES (?,?,?,?,?)", (time.time(), node_id, action, actor, detail))


class SqliteRegistry:
    @classmethod
    def in_state_dir(cls, state_dir: Path) -> SqliteRegistry:
        """The registrar's registry, ``<state-dir>/registry.sqlite``."""
        return cls(state_dir / DB_NAME)

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.db = open_private(path)
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

    @contextlib.contextmanager
    def _write(self, what: str) -> Iterator[sqlite3.Connection]:
        """One write transaction: BEGIN IMMEDIATE, COMMIT, or ROLLBACK on any exception.
        A refused write (constraint, locked file) becomes a StateError naming the file and what failed."""
        try:
            with transaction(self.db) as db:
                yield db
        except sqlite3.Error as exc:
            raise StateError(f"{self.path}: {what}: {exc}") from exc

    def schema_version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    def close(self) -> None:
        self.db.close()

    # tokens
    def add_token(self, token: TokenRecord) -> None:
        with self._write(f"add token {token.token_id}") as db:
            db.execute(
                "INSERT INTO tokens VALUES (?,?,?,?,?,?,?,?)",
                (
                    token.token_id,
                    token.secret_hash,
                    token.expires_at,
                    token.uses_left,
                    token.site,
                    json.dumps(token.labels),
                    int(token.require_approval),
                    token.created_at or time.time(),
                ),
            )

    def get_token(self, token_id: str) -> TokenRecord | None:
        row = self.db.execute("SELECT * FROM tokens WHERE token_id=?", (token_id,)).fetchone()
        return _token(row) if row else None

    def use_token(self, token_id: str) -> bool:
        with self._write(f"use token {token_id}") as db:
            cur = db.execute(
                "UPDATE tokens SET uses_left = uses_left - 1 WHERE token_id=? AND uses_left > 0", (token_id,)
            )
        return cur.rowcount == 1

    def list_tokens(self) -> list[TokenRecord]:
        return [_token(r) for r in self.db.execute("SELECT * FROM tokens ORDER BY created_at")]

    # nodes
    def create_node(self, node: Node) -> None:
        with self._write(f"create node {node.node_id}") as db:
            db.execute(
                f"INSERT INTO nodes ({_NODE_COLS}) VALUES ({','.join('?' * 20)})",  # noqa: S608 constant columns
                (
                    node.node_id,
                    node.state,
                    node.token_id,
                    node.key_fingerprint,
                    node.site,
                    json.dumps(node.labels),
                    node.created_at or time.time(),
                    node.serial,
                    node.cert_not_after,
                    node.cluster,
                    node.role,
                    int(node.cluster_init),
                    json.dumps(node.addresses),
                    node.observed,
                    node.api_port,
                    json.dumps(node.inventory),
                    json.dumps(node.status),
                    node.last_seen,
                    node.dmi_serial,
                    node.approved_by,
                ),
            )
            if node.approved_by:
                _event(db, node.node_id, "approved", node.approved_by, "at enrollment")

    def get_node(self, node_id: str) -> Node | None:
        sql = f"SELECT {_NODE_COLS} FROM nodes WHERE node_id=?"  # noqa: S608 constant columns
        row = self.db.execute(sql, (node_id,)).fetchone()
        return _node(row) if row else None

    def list_nodes(self) -> list[Node]:
        sql = f"SELECT {_NODE_COLS} FROM nodes ORDER BY node_id"  # noqa: S608 constant columns
        return [_node(r) for r in self.db.execute(sql)]

    def set_state(self, node_id: str, state: NodeState, by: str = "") -> bool:
        with self._write(f"set node {node_id} {state}") as db:
            sql = "UPDATE nodes SET state=?, approved_by=? WHERE node_id=?"
            done = db.execute(sql, (state, by if state == "approved" else "", node_id)).rowcount == 1
            if done and by:
                _event(db, node_id, state, by, "")
            return done

    def record_cert(self, node_id: str, serial: int, not_after: float) -> None:
        with self._write(f"record certificate {serial:x} of node {node_id}") as db:
            db.execute("INSERT INTO certs VALUES (?,?,?,NULL)", (f"{serial:x}", node_id, not_after))
            db.execute(
                "UPDATE nodes SET serial=?, cert_not_after=? WHERE node_id=?", (f"{serial:x}", not_after, node_id)
            )

    def record_register(
        self,
        node_id: str,
        *,
        addresses: list[str],
        observed: str,
        api_port: int,
        inventory: dict[str, Any],
        dmi_serial: str,
        site: str,
        labels: dict[str, str],
    ) -> None:
        with self._write(f"register node {node_id}") as db:
            db.execute(
                "UPDATE nodes SET addresses=?, observed=?, api_port=?, inventory=?, dmi_serial=?, site=?, "
                "labels=?, last_seen=? WHERE node_id=?",
                (
                    json.dumps(addresses),
                    observed,
                    api_port,
                    json.dumps(inventory),
                    dmi_serial,
                    site,
                    json.dumps(labels),
                    time.time(),
                    node_id,
                ),
            )

    def record_heartbeat(self, node_id: str, status: dict[str, Any], observed: str) -> None:
        with self._write(f"heartbeat of node {node_id}") as db:
            db.execute(
                "UPDATE nodes SET status=?, observed=?, last_seen=? WHERE node_id=?",
                (json.dumps(status), observed, time.time(), node_id),
            )

    def set_assignment(self, node_id: str, cluster: str, role: str, cluster_init: bool) -> None:
        with self._write(f"assign node {node_id}") as db:
            db.execute(
                "UPDATE nodes SET cluster=?, role=?, cluster_init=? WHERE node_id=?",
                (cluster, role, int(cluster_init), node_id),
            )

    # certificates
    def cert_owner(self, serial: int) -> str | None:
        row = self.db.execute(
            "SELECT node_id FROM certs WHERE serial=? AND revoked_at IS NULL", (f"{serial:x}",)
        ).fetchone()
        return str(row[0]) if row else None

    def add_cert(self, serial: int, owner: str, not_after: float) -> None:
        with self._write(f"record certificate {serial:x} of {owner}") as db:
            db.execute("INSERT INTO certs VALUES (?,?,?,NULL)", (f"{serial:x}", owner, not_after))

    def revoke_cert(self, serial: int) -> bool:
        with self._write(f"revoke certificate {serial:x}") as db:
            n = db.execute(
                "UPDATE certs SET revoked_at=? WHERE serial=? AND revoked_at IS NULL", (time.time(), f"{serial:x}")
            ).rowcount
            if n:
                db.execute("UPDATE meta SET value = value + 1 WHERE key='crl_number'")
        return bool(n)

    def revoke_node(self, node_id: str) -> int:
        now = time.time()
        with self._write(f"revoke node {node_id}") as db:
            db.execute("UPDATE nodes SET state='revoked' WHERE node_id=?", (node_id,))
            n = db.execute(
                "UPDATE certs SET revoked_at=? WHERE node_id=? AND revoked_at IS NULL", (now, node_id)
            ).rowcount
            db.execute("UPDATE meta SET value = value + 1 WHERE key='crl_number'")
        return int(n)

    def revoked(self) -> list[tuple[int, float]]:
        return [
            (int(r[0], 16), float(r[1]))
            for r in self.db.execute(
                "SELECT serial, revoked_at FROM certs WHERE revoked_at IS NOT NULL AND not_after > ?",
                (time.time() - 86400,),
            )
        ]

    def crl_number(self) -> int:
        return int(self.db.execute("SELECT value FROM meta WHERE key='crl_number'").fetchone()[0])

    # clusters
    def get_cluster(self, name: str) -> Cluster | None:
        row = self.db.execute("SELECT * FROM clusters WHERE name=?", (name,)).fetchone()
        if row is None:
            return None
        return Cluster(
            name=row["name"],
            distribution=row["distribution"],
            version=row["version"],
            servers=row["servers"],
            server_token=row["server_token"],
            agent_token=row["agent_token"],
        )

    def put_cluster(self, cluster: Cluster) -> None:
        with self._write(f"store cluster {cluster.name}") as db:
            db.execute(
                "INSERT OR REPLACE INTO clusters VALUES (?,?,?,?,?,?)",
                (
                    cluster.name,
                    cluster.distribution,
                    cluster.version,
                    cluster.servers,
                    cluster.server_token,
                    cluster.agent_token,
                ),
            )

    def set_join_tokens(self, name: str, server: str, agent: str) -> None:
        with self._write(f"join tokens of cluster {name}") as db:
            db.execute("UPDATE clusters SET server_token=?, agent_token=? WHERE name=?", (server, agent, name))

    # rules and the audit trail
    def put_rule(self, kind: str, name: str, spec: str) -> bool:
        with self._write(f"add {kind} {name}") as db:
            sql = "INSERT OR IGNORE INTO rules VALUES (?,?,?,?)"
            return db.execute(sql, (kind, name, spec, time.time())).rowcount == 1

    def rules(self, kind: str) -> list[str]:
        return [str(r[0]) for r in self.db.execute("SELECT spec FROM rules WHERE kind=? ORDER BY name", (kind,))]

    def remove_rule(self, kind: str, name: str) -> bool:
        with self._write(f"remove {kind} {name}") as db:
            return db.execute("DELETE FROM rules WHERE kind=? AND name=?", (kind, name)).rowcount == 1

    def add_event(self, node_id: str, action: str, actor: str, detail: str) -> None:
        with self._write(f"audit {action} of node {node_id}") as db:
            _event(db, node_id, action, actor, detail)

    def events(self, node_id: str | None = None) -> list[tuple[float, str, str, str, str]]:
        sql = "SELECT at, node_id, action, actor, detail FROM node_events"
        rows = (
            self.db.execute(sql + " WHERE node_id=? ORDER BY rowid", (node_id,))
            if node_id
            else self.db.execute(sql + " ORDER BY rowid")
        )
        return [(float(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4])) for r in rows]

    def cluster_members(self, name: str) -> list[Node]:
        rows = self.db.execute(
            f"SELECT {_NODE_COLS} FROM nodes WHERE cluster=? ORDER BY created_at",  # noqa: S608 constant columns
            (name,),
        )
        return [_node(r) for r in rows]
