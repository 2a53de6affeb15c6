"""The registry several replicas share: PostgreSQL through psycopg 3 and a psycopg_pool connection pool.

Schema: the migrations every backend shares, applied at open under an advisory lock (agent.registrar.pgschema).

Every write is one transaction (``conn.transaction()``: COMMIT at the end, ROLLBACK on any exception).
Decisions that read before they write hold row locks: ``assign_node`` locks the cluster's row
(``SELECT ... FOR UPDATE``), so replicas assigning boxes of one cluster at the same instant take turns
and only one becomes the initialising server; ``enroll_node`` inserts with ``ON CONFLICT DO NOTHING``
and takes the token's use in the same transaction, so a box enrolled twice at once (two replicas)
costs one use and makes one node.

When the database cannot be reached every call raises ``RegistryUnavailable`` (the server answers 503
with Retry-After); for ``FAIL_FAST`` seconds after such a failure calls fail at once instead of each
waiting for the pool, and the pool reconnects by itself when the database is back.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import psycopg
from psycopg.rows import DictRow, dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from agent.errors import RegistryUnavailable, StateError
from agent.registrar.pgschema import migrate, redacted
from agent.registrar.registry import Cluster, Decide, Node, NodeState
from agent.registrar.rows import NODE_COLS, cluster_of, node_of, node_values, token_of, token_values
from agent.registrar.tokens import TokenRecord

log = logging.getLogger("edge-registrar.postgres")

FAIL_FAST = 1.0
_NODE_VALUES = ",".join(["%s"] * 20)
_SELECT_NODE = f"SELECT {NODE_COLS} FROM nodes WHERE node_id=%s"  # noqa: S608 constant columns
_SERVERS = f"SELECT {NODE_COLS} FROM nodes WHERE cluster=%s AND role='server' ORDER BY created_at"  # noqa: S608
Conn = psycopg.Connection[DictRow]


class PostgresRegistry:
    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 4, timeout: float = 2.0) -> None:
        self.url = url
        self.name = redacted(url)
        self._down_until = 0.0
        self.pool: ConnectionPool[Conn] = ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            timeout=timeout,
            open=False,
            reconnect_timeout=365 * 86400.0,  # keep trying through an outage: never give up the pool
            kwargs={"autocommit": True, "row_factory": dict_row},
            connection_class=psycopg.Connection[DictRow],
            name="edge-registrar",
        )
        try:
            self.pool.open(wait=True, timeout=10.0)
        except PoolTimeout as exc:
            self.pool.close()
            raise StateError(f"database {self.name}: cannot connect: {self._why(exc)}") from exc
        try:
            migrate(self.pool, self.name)
        except StateError:
            self.pool.close()
            raise
        except psycopg.Error as exc:
            self.pool.close()
            raise StateError(f"database {self.name}: registry unusable: {exc}") from exc

    @staticmethod
    def _why(exc: Exception) -> str:
        cause = exc.__cause__ or exc.__context__
        return str(cause or exc).strip() or type(exc).__name__

    @contextlib.contextmanager
    def _conn(self, what: str) -> Iterator[Conn]:
        """A pooled connection; a database out of reach becomes RegistryUnavailable, any other
        refusal a StateError naming the database and what failed."""
        if time.monotonic() < self._down_until:
            raise RegistryUnavailable(f"database {self.name}: {what}: unreachable (retrying)")
        try:
            with self.pool.connection() as conn:
                yield conn
        except (PoolTimeout, psycopg.OperationalError) as exc:
            self._down_until = time.monotonic() + FAIL_FAST
            raise RegistryUnavailable(f"database {self.name}: {what}: {self._why(exc)}") from exc
        except psycopg.Error as exc:
            raise StateError(f"database {self.name}: {what}: {exc}") from exc

    @contextlib.contextmanager
    def _write(self, what: str) -> Iterator[Conn]:
        """One transaction: COMMIT when the block ends, ROLLBACK on any exception."""
        with self._conn(what) as conn, conn.transaction():
            yield conn

    def _one(self, what: str, sql: str, args: tuple[Any, ...] = ()) -> DictRow | None:
        with self._conn(what) as conn:
            return conn.execute(sql.encode(), args).fetchone()

    def _all(self, what: str, sql: str, args: tuple[Any, ...] = ()) -> list[DictRow]:
        with self._conn(what) as conn:
            return conn.execute(sql.encode(), args).fetchall()

    def schema_version(self) -> int:
        row = self._one("schema version", "SELECT version FROM schema_version")
        return int(row["version"]) if row else 0

    def close(self) -> None:
        self.pool.close()

    # tokens
    def add_token(self, token: TokenRecord) -> None:
        with self._write(f"add token {token.token_id}") as db:
            db.execute("INSERT INTO tokens VALUES (%s,%s,%s,%s,%s,%s,%s,%s)", token_values(token, time.time()))

    def get_token(self, token_id: str) -> TokenRecord | None:
        row = self._one(f"read token {token_id}", "SELECT * FROM tokens WHERE token_id=%s", (token_id,))
        return token_of(row) if row else None

    def use_token(self, token_id: str) -> bool:
        with self._write(f"use token {token_id}") as db:
            cur = db.execute(
                "UPDATE tokens SET uses_left = uses_left - 1 WHERE token_id=%s AND uses_left > 0", (token_id,)
            )
            return cur.rowcount == 1

    def list_tokens(self) -> list[TokenRecord]:
        return [token_of(r) for r in self._all("list tokens", "SELECT * FROM tokens ORDER BY created_at")]

    # nodes
    def create_node(self, node: Node) -> None:
        with self._write(f"create node {node.node_id}") as db:
            sql = f"INSERT INTO nodes ({NODE_COLS}) VALUES ({_NODE_VALUES})"  # noqa: S608 constant columns
            db.execute(sql.encode(), node_values(node, time.time()))
            if node.approved_by:
                self._event(db, node.node_id, "approved", node.approved_by, "at enrollment")

    def enroll_node(self, node: Node) -> Node | None:
        node = replace(node, created_at=node.created_at or time.time())
        with self._write(f"enroll node {node.node_id}") as db:
            sql = f"INSERT INTO nodes ({NODE_COLS}) VALUES ({_NODE_VALUES}) ON CONFLICT (node_id) DO NOTHING"  # noqa: S608
            if db.execute(sql.encode(), node_values(node, node.created_at)).rowcount != 1:
                row = db.execute(_SELECT_NODE.encode(), (node.node_id,)).fetchone()
                return node_of(row) if row else None
            used = db.execute(
                "UPDATE tokens SET uses_left = uses_left - 1 WHERE token_id=%s AND uses_left > 0", (node.token_id,)
            ).rowcount
            if used != 1:
                raise _NoUseLeft
            if node.approved_by:
                self._event(db, node.node_id, "approved", node.approved_by, "at enrollment")
            return node
        return None  # _NoUseLeft rolled it back

    def get_node(self, node_id: str) -> Node | None:
        row = self._one(f"read node {node_id}", _SELECT_NODE, (node_id,))
        return node_of(row) if row else None

    def list_nodes(self) -> list[Node]:
        sql = f"SELECT {NODE_COLS} FROM nodes ORDER BY node_id"  # noqa: S608 constant columns
        return [node_of(r) for r in self._all("list nodes", sql)]

    def set_state(self, node_id: str, state: NodeState, by: str = "") -> bool:
        with self._write(f"set node {node_id} {state}") as db:
            sql = "UPDATE nodes SET state=%s, approved_by=%s WHERE node_id=%s"
            done = db.execute(sql, (state, by if state == "approved" else "", node_id)).rowcount == 1
            if done and by:
                self._event(db, node_id, state, by, "")
            return done

    def record_cert(self, node_id: str, serial: int, not_after: float) -> None:
        with self._write(f"record certificate {serial:x} of node {node_id}") as db:
            db.execute("INSERT INTO certs VALUES (%s,%s,%s,NULL)", (f"{serial:x}", node_id, not_after))
            db.execute(
                "UPDATE nodes SET serial=%s, cert_not_after=%s WHERE node_id=%s", (f"{serial:x}", not_after, node_id)
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
                "UPDATE nodes SET addresses=%s, observed=%s, api_port=%s, inventory=%s, dmi_serial=%s, site=%s, "
                "labels=%s, last_seen=%s WHERE node_id=%s",
                (json.dumps(addresses), observed, api_port, json.dumps(inventory), dmi_serial, site,
                 json.dumps(labels), time.time(), node_id),
            )  # fmt: skip

    def record_heartbeat(self, node_id: str, status: dict[str, Any], observed: str) -> None:
        with self._write(f"heartbeat of node {node_id}") as db:
            db.execute(
                "UPDATE nodes SET status=%s, observed=%s, last_seen=%s WHERE node_id=%s",
                (json.dumps(status), observed, time.time(), node_id),
            )

    def set_assignment(self, node_id: str, cluster: str, role: str, cluster_init: bool) -> None:
        with self._write(f"assign node {node_id}") as db:
            db.execute(
                "UPDATE nodes SET cluster=%s, role=%s, cluster_init=%s WHERE node_id=%s",
                (cluster, role, int(cluster_init), node_id),
            )

    def assign_node(self, node_id: str, cluster: Cluster, decide: Decide) -> tuple[Node, bool]:
        with self._write(f"assign node {node_id}") as db:
            self._ensure_cluster(db, cluster)
            stored = db.execute("SELECT * FROM clusters WHERE name=%s FOR UPDATE", (cluster.name,)).fetchone()
            row = db.execute((_SELECT_NODE + " FOR UPDATE").encode(), (node_id,)).fetchone()
            if row is None or stored is None:
                raise StateError(f"database {self.name}: assign node {node_id}: no such node")
            node = node_of(row)
            if node.role:
                return node, False
            servers = [node_of(r) for r in db.execute(_SERVERS.encode(), (cluster.name,))]
            role, init = decide(cluster_of(stored), servers, node)
            db.execute(
                "UPDATE nodes SET cluster=%s, role=%s, cluster_init=%s WHERE node_id=%s",
                (cluster.name, role, int(init), node_id),
            )
        return replace(node, cluster=cluster.name, role=role, cluster_init=init), True

    # certificates
    def cert_owner(self, serial: int) -> str | None:
        row = self._one(
            f"read certificate {serial:x}",
            "SELECT node_id FROM certs WHERE serial=%s AND revoked_at IS NULL",
            (f"{serial:x}",),
        )
        return str(row["node_id"]) if row else None

    def add_cert(self, serial: int, owner: str, not_after: float) -> None:
        with self._write(f"record certificate {serial:x} of {owner}") as db:
            db.execute("INSERT INTO certs VALUES (%s,%s,%s,NULL)", (f"{serial:x}", owner, not_after))

    def revoke_cert(self, serial: int) -> bool:
        with self._write(f"revoke certificate {serial:x}") as db:
            n = db.execute(
                "UPDATE certs SET revoked_at=%s WHERE serial=%s AND revoked_at IS NULL", (time.time(), f"{serial:x}")
            ).rowcount
            if n:
                db.execute("UPDATE meta SET value = value + 1 WHERE key='crl_number'")
            return bool(n)

    def revoke_node(self, node_id: str) -> int:
        now = time.time()
        with self._write(f"revoke node {node_id}") as db:
            db.execute("UPDATE nodes SET state='revoked' WHERE node_id=%s", (node_id,))
            n = db.execute(
                "UPDATE certs SET revoked_at=%s WHERE node_id=%s AND revoked_at IS NULL", (now, node_id)
            ).rowcount
            db.execute("UPDATE meta SET value = value + 1 WHERE key='crl_number'")
            return int(n)

    def revoked(self) -> list[tuple[int, float]]:
        rows = self._all(
            "read revoked certificates",
            "SELECT serial, revoked_at FROM certs WHERE revoked_at IS NOT NULL AND not_after > %s",
            (time.time() - 86400,),
        )
        return [(int(r["serial"], 16), float(r["revoked_at"])) for r in rows]

    def crl_number(self) -> int:
        row = self._one("read the CRL number", "SELECT value FROM meta WHERE key='crl_number'")
        assert row is not None
        return int(row["value"])

    # clusters
    def get_cluster(self, name: str) -> Cluster | None:
        row = self._one(f"read cluster {name}", "SELECT * FROM clusters WHERE name=%s", (name,))
        return cluster_of(row) if row else None

    def put_cluster(self, cluster: Cluster) -> None:
        with self._write(f"store cluster {cluster.name}") as db:
            db.execute(
                "INSERT INTO clusters VALUES (%s,%s,%s,%s,%s,%s) ON CONFLICT (name) DO UPDATE SET "
                "distribution=EXCLUDED.distribution, version=EXCLUDED.version, servers=EXCLUDED.servers, "
                "server_token=EXCLUDED.server_token, agent_token=EXCLUDED.agent_token",
                (cluster.name, cluster.distribution, cluster.version, cluster.servers, cluster.server_token,
                 cluster.agent_token),
            )  # fmt: skip

    @staticmethod
    def _ensure_cluster(db: Conn, cluster: Cluster) -> None:
        db.execute(
            "INSERT INTO clusters VALUES (%s,%s,%s,%s,%s,%s) ON CONFLICT (name) DO NOTHING",
            (cluster.name, cluster.distribution, cluster.version, cluster.servers, cluster.server_token,
             cluster.agent_token),
        )  # fmt: skip

    def ensure_cluster(self, cluster: Cluster) -> Cluster:
        with self._write(f"store cluster {cluster.name}") as db:
            self._ensure_cluster(db, cluster)
            row = db.execute("SELECT * FROM clusters WHERE name=%s", (cluster.name,)).fetchone()
            assert row is not None
            return cluster_of(row)

    def set_join_tokens(self, name: str, server: str, agent: str) -> None:
        with self._write(f"join tokens of cluster {name}") as db:
            db.execute("UPDATE clusters SET server_token=%s, agent_token=%s WHERE name=%s", (server, agent, name))

    def cluster_servers(self, name: str) -> list[Node]:
        return [node_of(r) for r in self._all(f"servers of cluster {name}", _SERVERS, (name,))]

    def cluster_members(self, name: str) -> list[Node]:
        sql = f"SELECT {NODE_COLS} FROM nodes WHERE cluster=%s ORDER BY created_at"  # noqa: S608 constant columns
        return [node_of(r) for r in self._all(f"members of cluster {name}", sql, (name,))]

    # rules and the audit trail
    def put_rule(self, kind: str, name: str, spec: str) -> bool:
        with self._write(f"add {kind} {name}") as db:
            sql = "INSERT INTO rules VALUES (%s,%s,%s,%s) ON CONFLICT DO NOTHING"
            return db.execute(sql, (kind, name, spec, time.time())).rowcount == 1

    def rules(self, kind: str) -> list[str]:
        rows = self._all(f"read {kind} rules", "SELECT spec FROM rules WHERE kind=%s ORDER BY name", (kind,))
        return [str(r["spec"]) for r in rows]

    def remove_rule(self, kind: str, name: str) -> bool:
        with self._write(f"remove {kind} {name}") as db:
            return db.execute("DELETE FROM rules WHERE kind=%s AND name=%s", (kind, name)).rowcount == 1

    @staticmethod
    def _event(db: Conn, node_id: str, action: str, actor: str, detail: str) -> None:
        db.execute("INSERT INTO node_events VALUES (%s,%s,%s,%s,%s)", (time.time(), node_id, action, actor, detail))

    def add_event(self, node_id: str, action: str, actor: str, detail: str) -> None:
        with self._write(f"audit {action} of node {node_id}") as db:
            self._event(db, node_id, action, actor, detail)

    def events(self, node_id: str | None = None) -> list[tuple[float, str, str, str, str]]:
        sql = "SELECT at, node_id, action, actor, detail FROM node_events"
        rows = (
            self._all("read the audit trail", sql + " WHERE node_id=%s ORDER BY at", (node_id,))
            if node_id
            else self._all("read the audit trail", sql + " ORDER BY at")
        )
        return [(float(r["at"]), str(r["node_id"]), str(r["action"]), str(r["actor"]), str(r["detail"])) for r in rows]

    # shared by replicas
    def guess_level(self, source: str, burst: float, rate: float, now: float) -> float:
        row = self._one(f"guess budget of {source}", "SELECT level, at FROM guesses WHERE source=%s", (source,))
        return burst if row is None else min(burst, float(row["level"]) + (now - float(row["at"])) * rate)

    def guess_failed(self, source: str, burst: float, rate: float, now: float) -> None:
        with self._write(f"failed guess from {source}") as db:
            db.execute(
                "INSERT INTO guesses VALUES (%s, %s, %s) ON CONFLICT (source) DO UPDATE SET "
                "level = LEAST(%s, guesses.level + (%s - guesses.at) * %s) - 1, at = %s",
                (source, burst - 1, now, burst, now, rate, now),
            )
            db.execute("DELETE FROM guesses WHERE at < %s", (now - burst / rate,))  # full again: forget

    def take_lease(self, name: str, holder: str, ttl: float, now: float) -> bool:
        with self._write(f"lease {name}") as db:
            return (
                db.execute(
                    "INSERT INTO leases VALUES (%s, %s, %s) ON CONFLICT (name) DO UPDATE SET holder=EXCLUDED.holder,"
                    " expires_at=EXCLUDED.expires_at WHERE leases.holder=EXCLUDED.holder OR leases.expires_at < %s",
                    (name, holder, now + ttl, now),
                ).rowcount
                == 1
            )

    def leases(self, prefix: str, now: float) -> list[tuple[str, str]]:
        rows = self._all(
            f"read leases {prefix}*",
            "SELECT name, holder FROM leases WHERE starts_with(name, %s) AND expires_at >= %s ORDER BY name",
            (prefix, now),
        )
        return [(str(r["name"]), str(r["holder"])) for r in rows]

    def put_poll_results(self, rows: list[tuple[str, str, float, str]]) -> None:
        with self._write(f"store {len(rows)} poll results") as db, db.cursor() as cur:
            cur.executemany(
                "INSERT INTO poll_results VALUES (%s,%s,%s,%s) ON CONFLICT (node_id) DO UPDATE SET row=EXCLUDED.row, "
                "polled_at=EXCLUDED.polled_at, polled_by=EXCLUDED.polled_by",
                rows,
            )

    def poll_results(self) -> list[tuple[str, str, float, str]]:
        rows = self._all(
            "read poll results", "SELECT node_id, row, polled_at, polled_by FROM poll_results ORDER BY node_id"
        )
        return [(str(r["node_id"]), str(r["row"]), float(r["polled_at"]), str(r["polled_by"])) for r in rows]


class _NoUseLeft(psycopg.Rollback):
    """Roll the enrollment back: its token has no use left."""
