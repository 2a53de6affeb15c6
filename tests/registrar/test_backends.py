"""The registry's interface, the same tests on every backend (SQLite file, real PostgreSQL 15).

Several "replicas" are several registry objects on one store (their own connections or pools),
driven from threads at the same instant, as separate registrar processes would.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from agent.errors import StateError
from agent.registrar.assign import choose_role
from agent.registrar.database import open_registry
from agent.registrar.ratelimit import SharedGuessLimiter
from agent.registrar.registry import Cluster, Node, Registry
from agent.registrar.rollout_store import RolloutStore
from agent.registrar.rows import IN_VIEW
from agent.registrar.schema import SCHEMA
from agent.registrar.tokens import TokenRecord, mint
from bench.helpers.pgcluster import PgCluster

BUNDLE = "https://releases.example/b.tar"


def token(reg: Registry, uses: int, **kw: Any) -> str:
    token_id, h, _ = mint()
    reg.add_token(TokenRecord(token_id, h, time.time() + 3600, uses, **kw))
    return token_id


def box(node_id: str, token_id: str, **kw: Any) -> Node:
    return Node(node_id, "approved", token_id, "fp-" + node_id, site="lab", approved_by=f"token:{token_id}", **kw)


def at_once(n: int, work: Callable[[int], Any]) -> list[Any]:
    """``work(i)`` in n threads released together; their results (an exception re-raised)."""
    gate = threading.Barrier(n)
    out: list[Any] = [None] * n

    def run(i: int) -> None:
        gate.wait()
        try:
            out[i] = work(i)
        except BaseException as exc:  # handed to the test below
            out[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    for r in out:
        if isinstance(r, BaseException):
            raise r
    return out


@contextlib.contextmanager
def replicas(url: str, tmp_path: Path, n: int) -> Iterator[list[Registry]]:
    """``n`` registry objects on one store, closed when the block ends."""
    regs = [open_registry(url, tmp_path) for _ in range(n)]
    try:
        yield regs
    finally:
        for r in regs:
            r.close()


def test_records_round_trip_and_revocation_moves_the_crl(registry: Registry) -> None:
    assert registry.schema_version() == SCHEMA  # type: ignore[attr-defined]
    tid = token(registry, 2, site="lab", labels={"rack": "r1"})
    got = registry.get_token(tid)
    assert got is not None and got.uses_left == 2 and got.labels == {"rack": "r1"}
    node = registry.enroll_node(box("n1", tid, addresses=["10.0.0.1"], inventory={"gpus": [1]}))
    assert node is not None and node.created_at > 0
    registry.record_cert("n1", 0xABC, 2e9)
    beat = registry.record_heartbeat("n1", {"health": "ok"}, "127.0.0.1")
    stored = registry.get_node("n1")
    assert stored is not None and stored.serial == "abc" and stored.status == {"health": "ok"}
    assert beat == stored  # the heartbeat hands back the node as stored
    assert registry.record_heartbeat("nobody", {}, "127.0.0.1") is None
    assert stored.addresses == ["10.0.0.1"] and stored.inventory == {"gpus": [1]} and stored.last_seen > 0
    assert registry.cert_owner(0xABC) == "n1"
    before = registry.crl_number()
    assert registry.revoke_node("n1") == 1
    assert registry.cert_owner(0xABC) is None and registry.crl_number() == before + 1
    assert [s for s, _ in registry.revoked()] == [0xABC]
    assert [e[1:4] for e in registry.events("n1")] == [("n1", "approved", f"token:{tid}")]
    assert registry.put_rule("policy", "p", "{}") and not registry.put_rule("policy", "p", "{}")
    assert registry.rules("policy") == ["{}"] and registry.remove_rule("policy", "p")


def in_view(node: Node | None) -> dict[str, object]:
    assert node is not None
    return {name: getattr(node, name) for name in IN_VIEW}


def test_what_a_heartbeat_answers_with_is_read_at_once(registry: Registry) -> None:
    tid = token(registry, 5)
    for i in range(4):
        registry.enroll_node(box(f"n{i}", tid))
    registry.record_cert("n2", 0xA2, 2e9)
    registry.record_cert("n3", 0xA3, 2e9)
    registry.add_cert(0xB0, "alice", 2e9)  # an operator's
    cluster = Cluster("lab", "k3s", "v1.30.1+k3s1", servers=3, server_token="K10s", agent_token="K10a")
    registry.put_cluster(cluster)
    for node_id, role in (("n0", "server"), ("n1", "server"), ("n2", "agent")):
        registry.set_assignment(node_id, "lab", role, node_id == "n0")
    registry.put_rule("site-network", "lab", '{"site": "lab"}')
    seen = registry.member_view(0xA2, "site-network")
    assert seen is not None
    node, view = seen
    assert registry.get_node("n2") == registry.certified_node(0xA2)
    assert in_view(node) == in_view(registry.get_node("n2"))  # what an answer reads of it, and only that
    assert node.inventory == {} and node.cert_not_after == 0.0
    assert view == registry.cluster_view("lab", "site-network", "lab")
    assert view.cluster == cluster and [s.node_id for s in view.servers] == ["n0", "n1"]  # by arrival
    assert in_view(view.servers[0]) == in_view(registry.get_node("n0"))
    assert view.rule == '{"site": "lab"}' and view.crl_number == registry.crl_number()
    unplaced = registry.member_view(0xA3, "site-network")  # enrolled, not in a cluster yet
    assert unplaced is not None and unplaced[1].cluster is None and unplaced[1].servers == []
    assert registry.cluster_view("lab", "site-network", "elsewhere").rule is None
    assert registry.certified_node(0xB0) is None and registry.member_view(0xB0, "site-network") is None
    assert registry.revoke_cert(0xA2)
    assert registry.certified_node(0xA2) is None and registry.member_view(0xA2, "site-network") is None
    assert registry.cluster_view("lab", "site-network", "lab").crl_number == view.crl_number + 1


def test_a_failed_write_leaves_nothing_and_the_next_write_works(registry: Registry) -> None:
    tid = token(registry, 5)
    registry.enroll_node(box("n1", tid))
    registry.record_cert("n1", 0x1, 2e9)
    with pytest.raises(StateError, match="record certificate 1 of node n2"):
        registry.record_cert("n2", 0x1, 2e9)  # the serial exists: the whole transaction is rolled back
    assert registry.cert_owner(0x1) == "n1"
    registry.record_cert("n1", 0x2, 2e9)  # not stuck inside a failed transaction
    assert registry.cert_owner(0x2) == "n1"


def test_one_node_and_one_token_use_when_replicas_enroll_a_box_at_once(registry_url: str, tmp_path: Path) -> None:
    with replicas(registry_url, tmp_path, 3) as regs:
        tid = token(regs[0], 2)
        results = at_once(3, lambda i: regs[i].enroll_node(box("same-box", tid)))
        assert all(r is not None and r.node_id == "same-box" for r in results)
        assert len(regs[1].list_nodes()) == 1
        left = regs[2].get_token(tid)
        assert left is not None and left.uses_left == 1  # one use for one node, whoever made it
        one_left = at_once(3, lambda i: regs[i].enroll_node(box(f"other-{i}", tid)))
        assert sum(r is not None for r in one_left) == 1  # the last use: one box gets it
        assert len(regs[0].list_nodes()) == 2


def test_three_replicas_assigning_fifty_boxes_of_one_cluster_at_once(registry_url: str, tmp_path: Path) -> None:
    with replicas(registry_url, tmp_path, 3) as regs:
        tid = token(regs[0], 50)
        for i in range(50):
            assert regs[0].enroll_node(box(f"n{i:02d}", tid)) is not None
        cluster = Cluster("lab", "k3s", "", servers=3)

        def decide(c: Cluster, members: list[Node], node: Node) -> tuple[str, bool]:
            time.sleep(0.002)  # widen the window between reading the members and writing the role
            return choose_role(c, members, node)

        def assign_share(i: int) -> list[bool]:
            return [regs[i].assign_node(f"n{j:02d}", cluster, decide)[1] for j in range(i, 50, 3)]

        assigned = at_once(3, assign_share)
        assert sum(sum(a) for a in assigned) == 50
        members = regs[1].cluster_members("lab")
        assert len(members) == 50
        assert sum(m.cluster_init for m in members) == 1  # one initialising server, never two
        assert sum(m.role == "server" for m in members) == 3 and sum(m.role == "agent" for m in members) == 47
        again = regs[2].assign_node("n07", cluster, decide)
        assert again[1] is False  # a role once given is kept


def test_the_guess_budget_is_shared_by_replicas(registry_url: str, tmp_path: Path) -> None:
    with replicas(registry_url, tmp_path, 2) as regs:
        now = [1_000_000.0]
        limiters = [SharedGuessLimiter(r, burst=4, per_seconds=40, clock=lambda: now[0]) for r in regs]
        for i in range(4):  # the guesser alternates replicas
            assert limiters[i % 2].retry_after("10.9.9.9") == 0
            limiters[i % 2].failed("10.9.9.9")
        assert limiters[0].retry_after("10.9.9.9") == pytest.approx(10.0)
        assert limiters[1].retry_after("10.9.9.9") == pytest.approx(10.0)
        assert limiters[1].retry_after("10.9.9.8") == 0  # per source
        now[0] += 10
        assert limiters[0].retry_after("10.9.9.9") == 0


def test_a_lease_has_one_holder_until_it_expires(registry: Registry) -> None:
    assert registry.take_lease("poll:0", "a", 10, now=100.0)
    assert not registry.take_lease("poll:0", "b", 10, now=105.0)
    assert registry.take_lease("poll:0", "a", 10, now=105.0)  # renewed by its holder
    assert registry.take_lease("poll:1", "b", 10, now=105.0)
    assert registry.leases("poll:", now=106.0) == [("poll:0", "a"), ("poll:1", "b")]
    assert registry.take_lease("poll:0", "b", 10, now=116.0)  # expired: taken over
    assert registry.leases("poll:", now=127.0) == []


def test_replicas_and_rollout_stores_starting_together_migrate_once(registry_url: str, tmp_path: Path) -> None:
    """Three registries and three rollout stores opening one fresh store at the same instant, each in its thread."""

    def open_one(i: int) -> int | str:
        """A registry's schema version, or the id of the rollout a store recorded."""
        if i % 2:
            reg = open_registry(registry_url, tmp_path)
            try:
                return int(reg.schema_version())  # type: ignore[attr-defined]
            finally:
                reg.close()
        store = RolloutStore.beside(registry_url, tmp_path)
        try:
            return store.create(BUNDLE, {}, [[box(f"n{i}", "t")]], force=False, batch_size=1, canary=1)
        finally:
            store.close()

    opened = at_once(6, open_one)
    assert opened[1::2] == [SCHEMA] * 3
    store = RolloutStore.beside(registry_url, tmp_path)
    try:
        assert sorted(d["id"] for d in store.list()) == sorted(opened[0::2])
    finally:
        store.close()
    if registry_url.startswith("sqlite:"):
        conn: Any = sqlite3.connect(registry_url.removeprefix("sqlite://"))
        assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA,)
    else:
        conn = psycopg.connect(registry_url)
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA,)]
    assert conn.execute("SELECT count(*) FROM meta").fetchone() == (1,)  # schema 0 ran once
    conn.close()


def test_a_newer_postgres_schema_is_refused_naming_the_database(pg_cluster: PgCluster, tmp_path: Path) -> None:
    url = pg_cluster.new_database()
    open_registry(url, tmp_path).close()
    with psycopg.connect(url) as conn:
        conn.execute("UPDATE schema_version SET version = %s", (SCHEMA + 1,))
    with pytest.raises(StateError, match=r"database postgresql:///t_\w+\?host=.*newer than this registrar"):
        open_registry(url, tmp_path)


def test_a_bad_database_url_is_refused_with_what_is_expected(tmp_path: Path) -> None:
    with pytest.raises(StateError, match=r"--database 'mysql://x/y': unknown scheme 'mysql'; expected sqlite:///"):
        open_registry("mysql://x/y", tmp_path)
    with pytest.raises(StateError, match="cannot connect"):
        open_registry(f"postgresql:///nope?host={tmp_path}&connect_timeout=2", tmp_path)


def test_the_cli_refuses_a_bad_database_url_naming_the_option(tmp_path: Path) -> None:
    from tests.registrar.program import registrar

    proc = registrar(tmp_path / "state", "--database", "mysql://db/fleet", "nodes", "list", check=False)
    assert proc.returncode == 2
    assert "--database 'mysql://db/fleet': unknown scheme 'mysql'; expected sqlite:///PATH" in proc.stderr
    assert not (tmp_path / "state").exists()  # nothing made on the way


def test_the_cli_uses_the_database_it_is_given(registry_url: str, tmp_path: Path) -> None:
    from tests.registrar.program import registrar

    token = registrar(tmp_path / "a", "--database", registry_url, "token", "create", "--site", "lab").stdout.strip()
    listed = registrar(tmp_path / "b", "--database", registry_url, "token", "list", "-o", "json").stdout
    assert token.split(".")[0] in listed  # another state directory, the same registry
    assert not (tmp_path / "b" / "registry.sqlite").exists()
