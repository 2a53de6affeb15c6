"""The registry's methods, written once over any SQL backend (agent.registrar.statements).

A backend (agent.registrar.sqlite, agent.registrar.postgres) gives its statements (``SQL``) and how
it reaches its database: ``_read`` (a connection or cursor to read on), ``_write`` (one transaction: COMMIT at
the end, ROLLBACK on any exception, ``Abandon`` rolled back quietly) and ``_single`` (a connection
for one statement, atomic by itself). Rows are read by column name.
"""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from typing import Any, ClassVar, Protocol

from agent.errors import Abandon, StateError
from agent.registrar.duplicates import KEEP, Duplicate, Verdict, judge
from agent.registrar.registry import Cluster, ClusterView, Decide, Node, NodeState, Registration
from agent.registrar.rows import IN_VIEW, Row, node_of, record_of, token_of, values_of
from agent.registrar.statements import Statements
from agent.registrar.tokens import TokenRecord


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


class Db(Protocol):
    """What either driver executes on: a sqlite3 connection, a psycopg cursor."""

    def execute(self, sql: str, params: Sequence[Any], /) -> Cursor: ...
    def executemany(self, sql: str, rows: Iterable[Sequence[Any]], /) -> object: ...


class SqlRegistry(ABC):
    SQL: ClassVar[Statements]
    where: str  # the store, for messages: its file, or "database <url without password>"

    @abstractmethod
    def _read(self, what: str) -> AbstractContextManager[Db]: ...
    @abstractmethod
    def _write(self, what: str) -> AbstractContextManager[Db]: ...
    @abstractmethod
    def _single(self, what: str) -> AbstractContextManager[Db]: ...

    def _one(self, what: str, sql: str, args: Sequence[Any] = ()) -> Row | None:
        with self._read(what) as db:
            row: Row | None = db.execute(sql, args).fetchone()
            return row

    def _all(self, what: str, sql: str, args: Sequence[Any] = ()) -> list[Row]:
        with self._read(what) as db:
            return db.execute(sql, args).fetchall()

    def _run(self, what: str, sql: str, args: Sequence[Any]) -> int:
        """One statement that writes; how many rows it changed."""
        with self._single(what) as db:
            return db.execute(sql, args).rowcount

    def _event(self, db: Db, node_id: str, action: str, actor: str, detail: str) -> None:
        db.execute(self.SQL.add_event, (time.time(), node_id, action, actor, detail))

    # tokens
    def add_token(self, token: TokenRecord) -> None:
        self._run(f"add token {token.token_id}", self.SQL.add_token, values_of(token, time.time()))

    def get_token(self, token_id: str) -> TokenRecord | None:
        row = self._one(f"read token {token_id}", self.SQL.get_token, (token_id,))
        return token_of(row) if row else None

    def use_token(self, token_id: str) -> bool:
        return self._run(f"use token {token_id}", self.SQL.use_token, (token_id,)) == 1

    def list_tokens(self) -> list[TokenRecord]:
        return [token_of(r) for r in self._all("list tokens", self.SQL.list_tokens)]

    # nodes
    def create_node(self, node: Node) -> None:
        with self._write(f"create node {node.node_id}") as db:
            db.execute(self.SQL.add_node, values_of(node, time.time()))
            if node.approved_by:
                self._event(db, node.node_id, "approved", node.approved_by, "at enrollment")

    def enroll_node(self, node: Node) -> Node | None:
        node = replace(node, created_at=node.created_at or time.time())
        with self._write(f"enroll node {node.node_id}") as db:
            if db.execute(self.SQL.enroll_node, values_of(node)).rowcount != 1:
                row = db.execute(self.SQL.get_node, (node.node_id,)).fetchone()
                return node_of(row) if row else None
            if db.execute(self.SQL.use_token, (node.token_id,)).rowcount != 1:
                raise Abandon  # the token has no use left: nothing is created
            if node.approved_by:
                self._event(db, node.node_id, "approved", node.approved_by, "at enrollment")
            return node
        return None

    def get_node(self, node_id: str) -> Node | None:
        row = self._one(f"read node {node_id}", self.SQL.get_node, (node_id,))
        return node_of(row) if row else None

    def certified_node(self, serial: int) -> Node | None:
        row = self._one(f"read certificate {serial:x}", self.SQL.certified_node, (f"{serial:x}",))
        return node_of(row) if row else None

    def list_nodes(self) -> list[Node]:
        return [node_of(r) for r in self._all("list nodes", self.SQL.list_nodes)]

    def set_state(self, node_id: str, state: NodeState, by: str = "") -> bool:
        with self._write(f"set node {node_id} {state}") as db:
            args = (state, by if state == "approved" else "", node_id)
            done = db.execute(self.SQL.set_state, args).rowcount == 1
            if done and by:
                self._event(db, node_id, state, by, "")
            return done

    def record_cert(self, node_id: str, serial: int, not_after: float) -> None:
        with self._write(f"record certificate {serial:x} of node {node_id}") as db:
            db.execute(self.SQL.add_cert, (f"{serial:x}", node_id, not_after))
            db.execute(self.SQL.node_cert, (f"{serial:x}", not_after, node_id))

    def record_register(self, node_id: str, registration: Registration) -> None:
        r = registration
        args = (json.dumps(r.addresses), r.observed, r.api_port, json.dumps(r.inventory), r.dmi_serial, r.site,
                json.dumps(r.labels), time.time(), node_id)  # fmt: skip
        self._run(f"register node {node_id}", self.SQL.register, args)

    def record_heartbeat(self, node_id: str, status: dict[str, Any], observed: str) -> Node | None:
        with self._single(f"heartbeat of node {node_id}") as db:
            rows = db.execute(self.SQL.heartbeat, (json.dumps(status), observed, time.time(), node_id)).fetchall()
        return node_of(rows[0]) if rows else None

    def heartbeat(
        self, node_id: str, serial: int, instance: str, status: dict[str, Any] | None, observed: str, rule_kind: str
    ) -> tuple[Node, ClusterView] | None:
        beat = (_document(status), observed, time.time(), node_id, instance, instance, f"{serial:x}")
        what = f"heartbeat of node {node_id}"
        if self.SQL.beat_view:  # one statement
            with self._single(what) as db:
                rows = db.execute(self.SQL.beat_view, (*beat, rule_kind)).fetchall()
        else:
            with self._write(what) as db:
                if db.execute(self.SQL.beat, beat).rowcount != 1:
                    return None
                rows = db.execute(self.SQL.member_view, (rule_kind, f"{serial:x}")).fetchall()
        return (record_of(Node, rows[0], only=IN_VIEW), _view_of(rows)) if rows else None

    def record_instance(
        self, node_id: str, instance: str, status: dict[str, Any] | None, observed: str
    ) -> Verdict | None:
        now = time.time()
        with self._write(f"heartbeat of node {node_id} as {instance or 'no instance'}") as db:
            row = db.execute(self.SQL.node_instance, (node_id,)).fetchone()
            if row is None:
                return None
            current = str(row["instance"])
            flagged = db.execute(self.SQL.duplicate_of, (node_id,)).fetchone()
            rows = db.execute(self.SQL.seen_instances, (node_id,)).fetchall()
            seen = {str(r["instance"]): float(r["first_seen"]) for r in rows}  # the latest first
            verdict = judge(node_id, instance, current, seen, _duplicate(flagged) if flagged else None, now)
            if verdict.new_flag and verdict.flag is not None:
                f = verdict.flag
                db.execute(self.SQL.add_duplicate, (f.node_id, f.original, f.second, f.flagged_at))
            if verdict.current != current:
                db.execute(self.SQL.set_instance, (verdict.current, node_id))
            if verdict.seen_now:
                if current and current != instance:  # the one heard before is left now
                    db.execute(self.SQL.see_instance, (node_id, current, seen.get(current, now), now))
                db.execute(self.SQL.see_instance, (node_id, instance, seen.get(instance, now), now))
                for old in [i for i in seen if i not in (instance, current)][KEEP - 2 :]:
                    db.execute(self.SQL.forget_instance, (node_id, old))
            if verdict.accept:
                db.execute(self.SQL.store_beat, (_document(status), observed, now, node_id))
            return verdict
        return None

    def duplicates(self) -> dict[str, Duplicate]:
        rows = self._all("read DuplicateIdentity flags", self.SQL.duplicates)
        return {str(r["node_id"]): _duplicate(r) for r in rows}

    def resolve_duplicate(self, node_id: str) -> bool:
        with self._write(f"resolve DuplicateIdentity of node {node_id}") as db:
            if db.execute(self.SQL.remove_duplicate, (node_id,)).rowcount != 1:
                raise Abandon  # not flagged: nothing is forgotten
            db.execute(self.SQL.forget_instances, (node_id,))
            db.execute(self.SQL.set_instance, ("", node_id))
            return True
        return False

    def adopt_instances(
        self, seen: list[tuple[str, str, float, float]], current: list[tuple[str, str]], flags: list[Duplicate]
    ) -> None:
        with self._write(f"adopt {len(seen)} instances and {len(flags)} DuplicateIdentity flags") as db:
            db.executemany(self.SQL.adopt_instance, seen)
            db.executemany(self.SQL.adopt_current, [(instance, node_id) for node_id, instance in current])
            db.executemany(self.SQL.add_duplicate, [(f.node_id, f.original, f.second, f.flagged_at) for f in flags])
            # a flagged node is heard as its original
            db.executemany(self.SQL.set_instance, [(f.original, f.node_id) for f in flags])

    def set_assignment(self, node_id: str, cluster: str, role: str, cluster_init: bool) -> None:
        self._run(f"assign node {node_id}", self.SQL.set_assignment, (cluster, role, int(cluster_init), node_id))

    def assign_node(self, node_id: str, cluster: Cluster, decide: Decide) -> tuple[Node, bool]:
        with self._write(f"assign node {node_id}") as db:
            db.execute(self.SQL.ensure_cluster, values_of(cluster))
            stored = db.execute(self.SQL.lock_cluster, (cluster.name,)).fetchone()
            row = db.execute(self.SQL.lock_node, (node_id,)).fetchone()
            if row is None or stored is None:
                raise StateError(f"{self.where}: assign node {node_id}: no such node")
            node = node_of(row)
            if node.role:
                return node, False
            servers = [node_of(r) for r in db.execute(self.SQL.servers, (cluster.name,)).fetchall()]
            role, init = decide(record_of(Cluster, stored), servers, node)
            db.execute(self.SQL.set_assignment, (cluster.name, role, int(init), node_id))
        return replace(node, cluster=cluster.name, role=role, cluster_init=init), True

    # certificates
    def cert_owner(self, serial: int) -> str | None:
        row = self._one(f"read certificate {serial:x}", self.SQL.cert_owner, (f"{serial:x}",))
        return str(row["node_id"]) if row else None

    def add_cert(self, serial: int, owner: str, not_after: float) -> None:
        self._run(f"record certificate {serial:x} of {owner}", self.SQL.add_cert, (f"{serial:x}", owner, not_after))

    def revoke_cert(self, serial: int) -> bool:
        with self._write(f"revoke certificate {serial:x}") as db:
            n = db.execute(self.SQL.revoke_cert, (time.time(), f"{serial:x}")).rowcount
            if n:
                db.execute(self.SQL.next_crl, ())
            return bool(n)

    def revoke_node(self, node_id: str) -> int:
        now = time.time()
        with self._write(f"revoke node {node_id}") as db:
            db.execute(self.SQL.revoke_node, (node_id,))
            n = db.execute(self.SQL.revoke_certs_of, (now, node_id)).rowcount
            db.execute(self.SQL.next_crl, ())
            return int(n)

    def revoked(self) -> list[tuple[int, float]]:
        rows = self._all("read revoked certificates", self.SQL.revoked, (time.time() - 86400,))
        return [(int(r["serial"], 16), float(r["revoked_at"])) for r in rows]

    def crl_number(self) -> int:
        row = self._one("read the CRL number", self.SQL.crl_number)
        assert row is not None
        return int(row["value"])

    # clusters
    def get_cluster(self, name: str) -> Cluster | None:
        row = self._one(f"read cluster {name}", self.SQL.get_cluster, (name,))
        return record_of(Cluster, row) if row else None

    def put_cluster(self, cluster: Cluster) -> None:
        self._run(f"store cluster {cluster.name}", self.SQL.put_cluster, values_of(cluster))

    def ensure_cluster(self, cluster: Cluster) -> Cluster:
        with self._write(f"store cluster {cluster.name}") as db:
            db.execute(self.SQL.ensure_cluster, values_of(cluster))
            row = db.execute(self.SQL.get_cluster, (cluster.name,)).fetchone()
        assert row is not None
        return record_of(Cluster, row)

    def set_join_tokens(self, name: str, server: str, agent: str) -> None:
        self._run(f"join tokens of cluster {name}", self.SQL.join_tokens, (server, agent, name))

    def cluster_view(self, name: str, rule_kind: str, rule_name: str) -> ClusterView:
        return _view_of(self._all(f"read cluster {name}", self.SQL.cluster_view, (name, rule_kind, rule_name, name)))

    def member_view(self, serial: int, rule_kind: str) -> tuple[Node, ClusterView] | None:
        rows = self._all(f"read certificate {serial:x}", self.SQL.member_view, (rule_kind, f"{serial:x}"))
        return (record_of(Node, rows[0], only=IN_VIEW), _view_of(rows)) if rows else None

    def cluster_servers(self, name: str) -> list[Node]:
        return [node_of(r) for r in self._all(f"servers of cluster {name}", self.SQL.servers, (name,))]

    def cluster_members(self, name: str) -> list[Node]:
        return [node_of(r) for r in self._all(f"members of cluster {name}", self.SQL.members, (name,))]

    # rules and the audit trail
    def put_rule(self, kind: str, name: str, spec: str) -> bool:
        return self._run(f"add {kind} {name}", self.SQL.put_rule, (kind, name, spec, time.time())) == 1

    def rules(self, kind: str) -> list[str]:
        return [str(r["spec"]) for r in self._all(f"read {kind} rules", self.SQL.rules, (kind,))]

    def remove_rule(self, kind: str, name: str) -> bool:
        return self._run(f"remove {kind} {name}", self.SQL.remove_rule, (kind, name)) == 1

    def add_event(self, node_id: str, action: str, actor: str, detail: str) -> None:
        with self._single(f"audit {action} of node {node_id}") as db:
            self._event(db, node_id, action, actor, detail)

    def events(self, node_id: str | None = None) -> list[tuple[float, str, str, str, str]]:
        what = "read the audit trail"
        rows = self._all(what, self.SQL.events_of, (node_id,)) if node_id else self._all(what, self.SQL.events)
        return [(float(r["at"]), str(r["node_id"]), str(r["action"]), str(r["actor"]), str(r["detail"])) for r in rows]

    # shared by replicas
    def guess_level(self, source: str, burst: float, rate: float, now: float) -> float:
        row = self._one(f"guess budget of {source}", self.SQL.guess_level, (source,))
        return burst if row is None else min(burst, float(row["level"]) + (now - float(row["at"])) * rate)

    def guess_failed(self, source: str, burst: float, rate: float, now: float) -> None:
        with self._write(f"failed guess from {source}") as db:
            db.execute(self.SQL.guess_failed, (source, burst - 1, now, burst, now, rate, now))
            db.execute(self.SQL.forget_guesses, (now - burst / rate,))  # full again: forget

    def take_lease(self, name: str, holder: str, ttl: float, now: float) -> bool:
        return self._run(f"lease {name}", self.SQL.take_lease, (name, holder, now + ttl, now)) == 1

    def leases(self, prefix: str, now: float) -> list[tuple[str, str]]:
        rows = self._all(f"read leases {prefix}*", self.SQL.leases, (prefix, prefix, now))
        return [(str(r["name"]), str(r["holder"])) for r in rows]

    def put_poll_results(self, rows: list[tuple[str, str, float, str]]) -> None:
        with self._write(f"store {len(rows)} poll results") as db:
            db.executemany(self.SQL.put_poll_results, rows)

    def poll_results(self) -> list[tuple[str, str, float, str]]:
        rows = self._all("read poll results", self.SQL.poll_results)
        return [(str(r["node_id"]), str(r["row"]), float(r["polled_at"]), str(r["polled_by"])) for r in rows]


def _document(status: dict[str, Any] | None) -> str | None:
    """A heartbeat's status as stored; None keeps the one stored."""
    return None if status is None else json.dumps(status)


def _duplicate(row: Row) -> Duplicate:
    return Duplicate(str(row["node_id"]), str(row["original"]), str(row["second"]), float(row["flagged_at"]))


def _view_of(rows: list[Row]) -> ClusterView:
    first = rows[0]
    return ClusterView(
        cluster=record_of(Cluster, first, "c_") if first["c_name"] is not None else None,
        servers=[record_of(Node, r, "s_", IN_VIEW) for r in rows if r["s_node_id"] is not None],
        rule=first["rule_spec"],
        crl_number=int(first["crl_number"]),
    )
