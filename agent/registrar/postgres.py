"""The registry several replicas share: PostgreSQL through psycopg 3 and a psycopg_pool connection pool.

Schema: the migrations every backend shares, applied at open under an advisory lock (agent.registrar.pgschema).

The statements and methods are the ones every backend shares (agent.registrar.statements, .sqlstore);
this module keeps how they reach the database. A write of several statements is one transaction
(``conn.transaction()``: COMMIT at the end, ROLLBACK on any exception); a write of one statement runs
in autocommit, which is its own transaction, without the BEGIN and COMMIT round trips (a heartbeat is
one UPDATE ... RETURNING). Every call runs on one cursor of a pooled connection, closed after it.
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
import logging
import time
from collections.abc import Iterator

import psycopg
from psycopg.rows import DictRow, dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from agent.errors import Abandon, RegistryUnavailable, StateError
from agent.registrar.pgschema import migrate, redacted
from agent.registrar.sqlstore import SqlRegistry
from agent.registrar.statements import Dialect, Statements

log = logging.getLogger("edge-registrar.postgres")

FAIL_FAST = 1.0
Conn = psycopg.Connection[DictRow]
Cur = psycopg.Cursor[DictRow]


def _configure(conn: Conn) -> None:
    """Every pooled connection plans each prepared statement once: the registry's statements are key and
    index lookups, whose generic plan is the custom one, and re-planning the heartbeat's six-table
    statement at every execution cost PostgreSQL about three times its run (bench/fleet_bench.py)."""
    conn.execute("SET plan_cache_mode = force_generic_plan")


class PostgresRegistry(SqlRegistry):
    # decisions that read before they write lock the rows they read; the audit trail is in time order; a
    # heartbeat stores its status and reads its answer in one statement
    SQL = Statements(Dialect(placeholder="%s", least="LEAST", event_order="at", lock=" FOR UPDATE", modifying_cte=True))

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 4, timeout: float = 2.0) -> None:
        self.url = url
        self.name = redacted(url)
        self.where = f"database {self.name}"
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
            configure=_configure,
            name="edge-registrar",
        )
        try:
            self.pool.open(wait=True, timeout=10.0)
        except PoolTimeout as exc:
            self.pool.close()
            raise StateError(f"database {self.name}: cannot connect: {self._why(exc)}") from exc
        try:
            with self.pool.connection() as conn:
                migrate(conn, self.name)
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
    def _conn(self, what: str) -> Iterator[Cur]:
        """A cursor on a pooled connection, closed after the block; a database out of reach becomes
        RegistryUnavailable, any other refusal a StateError naming the database and what failed."""
        if time.monotonic() < self._down_until:
            raise RegistryUnavailable(f"database {self.name}: {what}: unreachable (retrying)")
        try:
            with self.pool.connection() as conn, conn.cursor() as cur:
                yield cur
        except (PoolTimeout, psycopg.OperationalError) as exc:
            self._down_until = time.monotonic() + FAIL_FAST
            raise RegistryUnavailable(f"database {self.name}: {what}: {self._why(exc)}") from exc
        except psycopg.Error as exc:
            raise StateError(f"database {self.name}: {what}: {exc}") from exc

    def _read(self, what: str) -> contextlib.AbstractContextManager[Cur]:
        return self._conn(what)

    @contextlib.contextmanager
    def _write(self, what: str) -> Iterator[Cur]:
        """One transaction: COMMIT when the block ends, ROLLBACK on any exception (``Abandon``: quietly)."""
        with self._conn(what) as cur:
            try:
                with cur.connection.transaction():
                    yield cur
            except Abandon:
                pass

    def _single(self, what: str) -> contextlib.AbstractContextManager[Cur]:
        return self._conn(what)  # autocommit: one statement is its own transaction

    def schema_version(self) -> int:
        row = self._one("schema version", "SELECT version FROM schema_version")
        return int(row["version"]) if row else 0

    def close(self) -> None:
        self.pool.close()
