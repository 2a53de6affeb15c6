"""Registrar parts without the network: guess limiter, assignment, registry storage, tokens."""

from __future__ import annotations

import sqlite3
import stat

import pytest

from agent.errors import StateError
from agent.registrar import sqlite as sqlite_registry
from agent.registrar.assign import assignment_for, choose_role
from agent.registrar.ratelimit import GuessLimiter
from agent.registrar.registry import Cluster, Node
from agent.registrar.sqlite import SqliteRegistry
from agent.registrar.tokens import TokenRecord, matches, mint, split


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_guess_limiter_blocks_after_burst_and_refills():
    clock = Clock()
    lim = GuessLimiter(burst=3, per_seconds=30, clock=clock)
    for _ in range(3):
        assert lim.retry_after("10.0.0.1") == 0
        lim.failed("10.0.0.1")
    assert lim.retry_after("10.0.0.1") == pytest.approx(10.0)
    assert lim.retry_after("10.0.0.2") == 0  # per source
    clock.t += 10
    assert lim.retry_after("10.0.0.1") == 0


def test_guess_limiter_memory_is_bounded():
    lim = GuessLimiter(burst=2, per_seconds=10, clock=Clock(), max_sources=100)
    for i in range(1000):
        lim.failed(f"10.0.{i // 256}.{i % 256}")
    assert len(lim._buckets) <= 100


def node(node_id: str, role: str = "", init: bool = False, **kw) -> Node:
    return Node(node_id, "approved", "t", "fp", site="s", cluster="s", role=role, cluster_init=init, **kw)


def test_roles_first_initialises_then_servers_then_agents():
    three = Cluster("s", "k3s", "v1.30.4+k3s1", servers=3)
    members: list[Node] = []
    roles = []
    for i in range(5):
        n = node(f"n{i}")
        role, init = choose_role(three, members, n)
        members.append(node(n.node_id, role, init))
        roles.append((role, init))
    assert roles == [("server", True), ("server", False), ("server", False), ("agent", False), ("agent", False)]
    one = Cluster("s", "k3s", "", servers=1)
    assert choose_role(one, members[:1], node("x")) == ("agent", False)
    assert choose_role(one, [], node("x", "agent")) == ("agent", False)  # a role once given is kept


def test_joiners_wait_for_the_real_token_and_get_the_right_one():
    init = node("n0", "server", True, addresses=["10.1.0.5"])
    server, agent = node("n1", "server"), node("n2", "agent")
    cluster = Cluster("s", "k3s", "", 3)
    doc, waiting = assignment_for(cluster, [init, server, agent], agent)
    assert doc is None and "n0" in waiting
    cluster = Cluster("s", "k3s", "", 3, server_token="K10aa::server:x", agent_token="K10aa::node:y")
    doc, _ = assignment_for(cluster, [init, server, agent], agent)
    assert doc is not None and doc["join_token"] == "K10aa::node:y" and doc["server_url"] == "https://10.1.0.5:6443"
    doc, _ = assignment_for(cluster, [init, server, agent], server)
    assert doc is not None and doc["join_token"] == "K10aa::server:x" and doc["role"] == "server"
    doc, _ = assignment_for(cluster, [init, server, agent], init)
    # the first server keeps reading its own token: the K10 form it reported would be refused on restart
    assert doc is not None and doc["cluster_init"] and doc["join_token"] == "" and doc["server_url"] == ""
    v6 = node("n0", "server", True, addresses=["fd00::5"])
    doc, _ = assignment_for(cluster, [v6, agent], agent)
    assert doc is not None and doc["server_url"] == "https://[fd00::5]:6443"


def test_tokens_are_stored_hashed_and_compared():
    token_id, secret_hash, token = mint()
    parts = split(token)
    assert parts is not None and parts[0] == token_id and parts[1] not in secret_hash
    rec = TokenRecord(token_id, secret_hash, 0, 1)
    assert matches(rec, parts[1]) and not matches(rec, parts[1] + "x")
    assert split("garbage") is None


def test_sqlite_registry_schema_wal_mode_and_file_mode(tmp_path):
    path = tmp_path / "registry.sqlite"
    reg = SqliteRegistry(path)
    assert reg.schema_version() == sqlite_registry.SCHEMA
    assert reg.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    token_id, h, _ = mint()
    reg.add_token(TokenRecord(token_id, h, 2e9, 1))
    assert reg.use_token(token_id) and not reg.use_token(token_id)
    reg.create_node(node("n1"))
    reg.record_cert("n1", 0xABC, 2e9)
    assert reg.cert_owner(0xABC) == "n1"
    before = reg.crl_number()
    assert reg.revoke_node("n1") == 1
    assert reg.cert_owner(0xABC) is None and reg.crl_number() == before + 1
    assert [s for s, _ in reg.revoked()] == [0xABC]
    reg.close()
    again = SqliteRegistry(path)  # reopening migrates nothing and keeps the data
    assert again.get_node("n1").state == "revoked"
    again.close()


def test_sqlite_registry_refuses_a_newer_schema(tmp_path):
    path = tmp_path / "registry.sqlite"
    SqliteRegistry(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {sqlite_registry.SCHEMA + 1}")
    db.commit()
    db.close()
    with pytest.raises(StateError, match="newer"):
        SqliteRegistry(path)


def test_agents_are_never_handed_the_server_token():
    init = node("n0", "server", True, addresses=["10.1.0.5"])
    server, agent = node("n1", "server"), node("n2", "agent")
    no_agent_token = Cluster("s", "k3s", "", 3, server_token="K10aa::server:x")
    doc, waiting = assignment_for(no_agent_token, [init, server, agent], agent)
    assert doc is None and "separate agent token" in waiting
    doc, _ = assignment_for(no_agent_token, [init, server, agent], server)
    assert doc is not None and doc["join_token"] == "K10aa::server:x"


def test_only_a_separate_agent_form_token_is_kept_for_agents():
    from agent.registrar.membership import agent_token

    server = "K10aa::server:x"
    assert agent_token("k3s", server, "K10aa::node:y") == "K10aa::node:y"
    assert agent_token("k3s", server, server) == ""  # agent-token linked to the server token
    assert agent_token("k3s", server, "K10aa::server:y") == ""  # a server-form token joins servers
    assert agent_token("k3s", server, "") == ""
    assert agent_token("k0s", "controller-token", "worker-token") == "worker-token"
