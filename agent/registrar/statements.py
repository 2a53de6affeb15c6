# ruff: noqa: S608, S105 -- every string here is a constant statement: column lists and dialect words are
# this module's own, never input, and "token" in a name is a table, not a password.
"""Every statement of the registry, written once, in the SQL SQLite and PostgreSQL share.

Statements are written with ``?`` placeholders; a backend whose driver wants ``%s`` (psycopg) gets
them converted once, when its ``Statements`` is made. What the two dialects do differently is named
in a ``Dialect``, which each backend module gives: the smaller-of function, the order of the audit
trail, and the row locks a read-then-write decision takes.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from agent.registrar.registry import Cluster, Node
from agent.registrar.rows import IN_VIEW, NODE_COLS, columns
from agent.registrar.tokens import TokenRecord


@dataclass(frozen=True)
class Dialect:
    placeholder: str = "?"  # "?" (sqlite3) or "%s" (psycopg)
    least: str = "MIN"  # the smaller of two values: MIN(a, b) in SQLite, LEAST(a, b) in PostgreSQL
    event_order: str = "rowid"  # the audit trail in the order it was written
    lock: str = ""  # appended to the reads of a read-then-write decision (" FOR UPDATE")
    modifying_cte: bool = False  # WITH n AS (UPDATE ... RETURNING *) SELECT ...: a heartbeat in one statement


def _values(n: int) -> str:
    return ",".join("?" * n)


class Statements:
    """The statements of one dialect, by what they do."""

    def __init__(self, dialect: Dialect) -> None:
        d = dialect
        nodes = f"SELECT {NODE_COLS} FROM nodes"
        # tokens
        self.add_token = f"INSERT INTO tokens ({columns(TokenRecord)}) VALUES ({_values(8)})"
        self.get_token = "SELECT * FROM tokens WHERE token_id=?"
        self.use_token = "UPDATE tokens SET uses_left = uses_left - 1 WHERE token_id=? AND uses_left > 0"
        self.list_tokens = "SELECT * FROM tokens ORDER BY created_at"
        # nodes
        self.add_node = f"INSERT INTO nodes ({NODE_COLS}) VALUES ({_values(len(fields(Node)))})"
        self.enroll_node = self.add_node + " ON CONFLICT (node_id) DO NOTHING"
        self.get_node = nodes + " WHERE node_id=?"
        self.lock_node = self.get_node + d.lock
        self.list_nodes = nodes + " ORDER BY node_id"
        self.set_state = "UPDATE nodes SET state=?, approved_by=? WHERE node_id=?"
        self.node_cert = "UPDATE nodes SET serial=?, cert_not_after=? WHERE node_id=?"
        self.register = (
            "UPDATE nodes SET addresses=?, observed=?, api_port=?, inventory=?, dmi_serial=?, site=?, labels=?, "
            "last_seen=? WHERE node_id=?"
        )
        # a heartbeat's status: NULL, the one stored stays (the box said it did not change)
        self.store_beat = "UPDATE nodes SET status=COALESCE(?, status), observed=?, last_seen=? WHERE node_id=?"
        self.heartbeat = f"{self.store_beat} RETURNING {NODE_COLS}"
        self.set_assignment = "UPDATE nodes SET cluster=?, role=?, cluster_init=? WHERE node_id=?"
        self.members = nodes + " WHERE cluster=? ORDER BY created_at"
        self.servers = nodes + " WHERE cluster=? AND role='server' ORDER BY created_at"
        self.revoke_node = "UPDATE nodes SET state='revoked' WHERE node_id=?"
        self.certified_node = (
            f"SELECT {columns(Node, 'n')} FROM certs c JOIN nodes n ON n.node_id = c.node_id "
            "WHERE c.serial=? AND c.revoked_at IS NULL"
        )
        # certificates and the CRL
        self.add_cert = "INSERT INTO certs VALUES (?,?,?,NULL)"
        self.cert_owner = "SELECT node_id FROM certs WHERE serial=? AND revoked_at IS NULL"
        self.revoke_cert = "UPDATE certs SET revoked_at=? WHERE serial=? AND revoked_at IS NULL"
        self.revoke_certs_of = "UPDATE certs SET revoked_at=? WHERE node_id=? AND revoked_at IS NULL"
        self.revoked = "SELECT serial, revoked_at FROM certs WHERE revoked_at IS NOT NULL AND not_after > ?"
        self.next_crl = "UPDATE meta SET value = value + 1 WHERE key='crl_number'"
        self.crl_number = "SELECT value FROM meta WHERE key='crl_number'"
        # clusters
        self.get_cluster = "SELECT * FROM clusters WHERE name=?"
        self.lock_cluster = self.get_cluster + d.lock
        self.put_cluster = (
            f"INSERT INTO clusters VALUES ({_values(6)}) ON CONFLICT (name) DO UPDATE SET "
            "distribution=excluded.distribution, version=excluded.version, servers=excluded.servers, "
            "server_token=excluded.server_token, agent_token=excluded.agent_token"
        )
        self.ensure_cluster = f"INSERT INTO clusters VALUES ({_values(6)}) ON CONFLICT (name) DO NOTHING"
        self.join_tokens = "UPDATE clusters SET server_token=?, agent_token=? WHERE name=?"
        # what a member's answer needs, in one read: one row per server of the cluster (one row with no
        # server's columns when there is none); of a cluster and a site given, or of the certificate's node
        # the cluster, its servers and the node itself as an answer needs them: without inventory and status
        member = columns(Node, "n", only=IN_VIEW)
        view = (
            f"m.value AS crl_number, r.spec AS rule_spec, {columns(Cluster, 'c', 'c_')}, "
            f"{columns(Node, 's', 's_', only=IN_VIEW)}"
        )
        self.cluster_view = (
            f"SELECT {view} FROM meta m LEFT JOIN clusters c ON c.name = ? "
            "LEFT JOIN rules r ON r.kind = ? AND r.name = ? LEFT JOIN nodes s ON s.cluster = ? AND s.role = 'server' "
            "WHERE m.key = 'crl_number' ORDER BY s.created_at"
        )
        joins = (
            "JOIN meta m ON m.key = 'crl_number' LEFT JOIN clusters c ON c.name = n.cluster "
            "LEFT JOIN rules r ON r.kind = ? AND r.name = n.site "
            "LEFT JOIN nodes s ON s.cluster = n.cluster AND n.cluster <> '' AND s.role = 'server'"
        )
        self.member_view = (
            f"SELECT {member}, {view} FROM certs x JOIN nodes n ON n.node_id = x.node_id {joins} "
            "WHERE x.serial=? AND x.revoked_at IS NULL ORDER BY s.created_at"
        )
        # a heartbeat from the instance heard now (or from an older agent, which names none) of a node approved
        # or pending, whose certificate is not revoked: its status stored (agent.registrar.duplicates)
        self.beat = (
            f"{self.store_beat} AND (instance=? OR ?='') AND state IN ('approved', 'pending') "
            "AND node_id IN (SELECT node_id FROM certs WHERE serial=? AND revoked_at IS NULL)"
        )
        # ... and what its answer needs, in the same statement (member_view of the row as updated)
        self.beat_view = (
            f"WITH n AS ({self.beat} RETURNING *) SELECT {member}, {view} FROM n {joins} ORDER BY s.created_at"
            if d.modifying_cte
            else ""
        )
        # the instances a node was heard as, and its DuplicateIdentity flag
        self.node_instance = "SELECT instance FROM nodes WHERE node_id=?" + d.lock
        self.set_instance = "UPDATE nodes SET instance=? WHERE node_id=?"
        self.seen_instances = (
            "SELECT instance, first_seen FROM node_instances WHERE node_id=? ORDER BY last_seen DESC, first_seen DESC"
        )
        self.see_instance = (
            "INSERT INTO node_instances VALUES (?,?,?,?) ON CONFLICT (node_id, instance) DO UPDATE SET "
            "last_seen=excluded.last_seen"
        )
        self.adopt_instance = "INSERT INTO node_instances VALUES (?,?,?,?) ON CONFLICT DO NOTHING"
        self.adopt_current = "UPDATE nodes SET instance=? WHERE node_id=? AND instance=''"
        self.forget_instance = "DELETE FROM node_instances WHERE node_id=? AND instance=?"
        self.forget_instances = "DELETE FROM node_instances WHERE node_id=?"
        self.add_duplicate = "INSERT INTO duplicates VALUES (?,?,?,?) ON CONFLICT (node_id) DO NOTHING"
        flags = "SELECT node_id, original, second, flagged_at FROM duplicates"
        self.duplicate_of = flags + " WHERE node_id=?"
        self.duplicates = flags + " ORDER BY node_id"
        self.remove_duplicate = "DELETE FROM duplicates WHERE node_id=?"
        # rules and the audit trail
        self.put_rule = "INSERT INTO rules VALUES (?,?,?,?) ON CONFLICT DO NOTHING"
        self.rules = "SELECT spec FROM rules WHERE kind=? ORDER BY name"
        self.remove_rule = "DELETE FROM rules WHERE kind=? AND name=?"
        self.add_event = "INSERT INTO node_events VALUES (?,?,?,?,?)"
        events = "SELECT at, node_id, action, actor, detail FROM node_events"
        self.events = f"{events} ORDER BY {d.event_order}"
        self.events_of = f"{events} WHERE node_id=? ORDER BY {d.event_order}"
        # shared by replicas: the failed-guess budget, leases, poll results
        self.guess_level = "SELECT level, at FROM guesses WHERE source=?"
        self.guess_failed = (
            "INSERT INTO guesses VALUES (?, ?, ?) ON CONFLICT (source) DO UPDATE SET "
            f"level = {d.least}(?, guesses.level + (? - guesses.at) * ?) - 1, at = ?"
        )
        self.forget_guesses = "DELETE FROM guesses WHERE at < ?"
        self.take_lease = (
            "INSERT INTO leases VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET holder=excluded.holder, "
            "expires_at=excluded.expires_at WHERE leases.holder=excluded.holder OR leases.expires_at < ?"
        )
        self.leases = (
            "SELECT name, holder FROM leases WHERE substr(name, 1, length(?)) = ? AND expires_at >= ? ORDER BY name"
        )
        self.put_poll_results = (
            "INSERT INTO poll_results VALUES (?,?,?,?) ON CONFLICT (node_id) DO UPDATE SET row=excluded.row, "
            "polled_at=excluded.polled_at, polled_by=excluded.polled_by"
        )
        self.poll_results = "SELECT node_id, row, polled_at, polled_by FROM poll_results ORDER BY node_id"
        if d.placeholder != "?":
            for name, sql in vars(self).items():
                assert "%" not in sql, f"{name}: a literal % would need escaping for {d.placeholder}"
                setattr(self, name, sql.replace("?", d.placeholder))
