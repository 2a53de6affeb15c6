"""The embedded registry: one SQLite file in WAL mode, schema versioned by ``PRAGMA user_version``.

The migrations are the ones every backend shares (agent.registrar.schema); a file
newer than this code is refused rather than guessed at. The file is 0600:
it holds join tokens the registrar hands to members. BEGIN IMMEDIATE takes the
file's write lock first, so a read-then-write method (enroll_node, assign_node)
is serialised against every other process using the file.

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
from dataclasses import replace
from pathlib import Path
from typing import Any

from agent.errors import StateError
from agent.registrar.dbfile import open_private, transaction
from agent.registrar.registry import Cluster, Decide, Node, NodeState
from agent.registrar.rows import NODE_COLS as _NODE_COLS
from agent.registrar.rows import cluster_of, node_of, node_values, token_of, token_values
from agent.registrar.schema import MIGRATIONS, SCHEMA
from agent.registrar.tokens import TokenRecord

DB_NAME = "registry.sqlite"
__all__ = ["DB_NAME", "MIGRATIONS", "SCHEMA", "SqliteRegistry"]


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
            db.execute("INSERT INTO tokens VALUES (?,?,?,?,?,?,?,?)", token_values(token, time.time()))

    def get_token(self, token_id: str) -> TokenRecord | None:
        row = self.db.execute("SELECT * FROM tokens WHERE token_id=?", (token_id,)).fetchone()
        return token_of(row) if row else None

    def use_token(self, token_id: str) -> bool:
        with self._write(f"use token {token_id}") as db:
            cur = db.execute(
                "UPDATE tokens SET uses_left = uses_left - 1 WHERE token_id=? AND uses_left > 0", (token_id,)
            )
        return cur.rowcount == 1

    def list_tokens(self) -> list[TokenRecord]:
        return [token_of(r) for r in self.db.execute("SELECT * FROM tokens ORDER BY created_at")]

    # nodes
    def create_node(self, node: Node) -> None:
        with self._write(f"create node {node.node_id}") as db:
            db.execute(
                f"INSERT INTO nodes ({_NODE_COLS}) VALUES ({','.join('?' * 20)})",  # noqa: S608 constant columns
                node_values(node, time.time()),
            )
            if node.approved_by:
                _event(db, node.node_id, "approved", node.approved_by, "at enrollment")

    def enroll_node(self, node: Node) -> Node | None:
        with self._write(f"enroll node {node.node_id}") as db:
            row = db.execute(f"SELECT {_NODE_COLS} FROM nodes WHERE node_id=?", (node.node_id,)).fetchone()  # noqa: S608
            if row is not None:
                return node_of(row)
            used = db.execute(
                "UPDATE tokens SET uses_left = uses_left - 1 WHERE token_id=? AND uses_left > 0", (node.token_id,)
            ).rowcount
            if used != 1:
                return None
            node = replace(node, created_at=node.created_at or time.time())
            db.execute(
                f"INSERT INTO nodes ({_NODE_COLS}) VALUES ({','.join('?' * 20)})",  # noqa: S608 constant columns
                node_values(node, node.created_at),
            )
            if node.approved_by:
                _event(db, node.node_id, "approved", node.approved_by, "at enrollment")
        return node

    def assign_node(self, node_id: str, cluster: Cluster, decide: Decide) -> tuple[Node, bool]:
        with self._write(f"assign node {node_id}") as db:
            self._ensure_cluster(db, cluster)
            stored = self.get_cluster(cluster.name)
            row = db.execute(f"SELECT {_NODE_COLS} FROM nodes WHERE node_id=?", (node_id,)).fetchone()  # noqa: S608
            if row is None or stored is None:
                raise StateError(f"{self.path}: assign node {node_id}: no such node")
            node = node_of(row)
            if node.role:
                return node, False
            role, init = decide(stored, self.cluster_servers(cluster.name), node)
            db.execute(
                "UPDATE nodes SET cluster=?, role=?, cluster_init=? WHERE node_id=?",
                (cluster.name, role, int(init), node_id),
            )
        return replace(node, cluster=cluster.name, role=role, cluster_init=init), True

    def get_node(self, node_id: str) -> Node | None:
        sql = f"SELECT {_NODE_COLS} FROM nodes WHERE node_id=?"  # noqa: S608 constant columns
        row = self.db.execute(sql, (node_id,)).fetchone()
        return node_of(row) if row else None

    def list_nodes(self) -> list[Node]:
        sql = f"SELECT {_NODE_COLS} FROM nodes ORDER BY node_id"  # noqa: S608 constant columns
        return [node_of(r) for r in self.db.execute(sql)]

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
        return cluster_of(row) if row else None

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

    @staticmethod
    def _ensure_cluster(db: sqlite3.Connection, cluster: Cluster) -> None:
        db.execute(
            "INSERT OR IGNORE INTO clusters VALUES (?,?,?,?,?,?)",
            (cluster.name, cluster.distribution, cluster.version, cluster.servers, cluster.server_token,
             cluster.agent_token),
        )  # fmt: skip

    def ensure_cluster(self, cluster: Cluster) -> Cluster:
        with self._write(f"store cluster {cluster.name}") as db:
            self._ensure_cluster(db, cluster)
        stored = self.get_cluster(cluster.name)
        assert stored is not None
        return stored

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

    # shared by replicas
    def guess_level(self, source: str, burst: float, rate: float, now: float) -> float:
        row = self.db.execute("SELECT level, at FROM guesses WHERE source=?", (source,)).fetchone()
        return burst if row is None else min(burst, float(row[0]) + (now - float(row[1])) * rate)

    def guess_failed(self, source: str, burst: float, rate: float, now: float) -> None:
        with self._write(f"failed guess from {source}") as db:
            db.execute(
                "INSERT INTO guesses VALUES (?, ?, ?) ON CONFLICT(source) DO UPDATE SET "
                "level = MIN(?, guesses.level + (? - guesses.at) * ?) - 1, at = ?",
                (source, burst - 1, now, burst, now, rate, now),
            )
            db.execute("DELETE FROM guesses WHERE at < ?", (now - burst / rate,))  # full again: forget

    def take_lease(self, name: str, holder: str, ttl: float, now: float) -> bool:
        with self._write(f"lease {name}") as db:
            return (
                db.execute(
                    "INSERT INTO leases VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE SET holder=excluded.holder, "
                    "expires_at=excluded.expires_at WHERE leases.holder=excluded.holder OR leases.expires_at < ?",
                    (name, holder, now + ttl, now),
                ).rowcount
                == 1
            )

    def leases(self, prefix: str, now: float) -> list[tuple[str, str]]:
        rows = self.db.execute(
            "SELECT name, holder FROM leases WHERE substr(name, 1, ?) = ? AND expires_at >= ? ORDER BY name",
            (len(prefix), prefix, now),
        )
        return [(str(r[0]), str(r[1])) for r in rows]

    def put_poll_results(self, rows: list[tuple[str, str, float, str]]) -> None:
        with self._write(f"store {len(rows)} poll results") as db:
            db.executemany(
                "INSERT INTO poll_results VALUES (?,?,?,?) ON CONFLICT(node_id) DO UPDATE SET row=excluded.row, "
                "polled_at=excluded.polled_at, polled_by=excluded.polled_by",
                rows,
            )

    def poll_results(self) -> list[tuple[str, str, float, str]]:
        rows = self.db.execute("SELECT node_id, row, polled_at, polled_by FROM poll_results ORDER BY node_id")
        return [(str(r[0]), str(r[1]), float(r[2]), str(r[3])) for r in rows]

    def cluster_servers(self, name: str) -> list[Node]:
        rows = self.db.execute(
            f"SELECT {_NODE_COLS} FROM nodes WHERE cluster=? AND role='server' ORDER BY created_at",  # noqa: S608
            (name,),
        )
        return [node_of(r) for r in rows]

    def cluster_members(self, name: str) -> list[Node]:
        rows = self.db.execute(
            f"SELECT {_NODE_COLS} FROM nodes WHERE cluster=? ORDER BY created_at",  # noqa: S608 constant columns
            (name,),
        )
        return [node_of(r) for r in rows]
