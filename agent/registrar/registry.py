"""What the registrar remembers, behind a small interface (``Registry``).

Records are plain dataclasses; ``agent.registrar.sqlite.SqliteRegistry`` is the
embedded default, ``agent.registrar.postgres.PostgresRegistry`` the one several
replicas share (``agent.registrar.database.open_registry`` picks by URL). Every
write is one transaction, so the CLI (approve, revoke), a running server and its
other replicas share the store without lost updates; a decision that reads before
it writes (enrollment, role assignment, the guess budget) is one method, taken
under the backend's lock, never a read here and a write there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from agent.registrar.duplicates import Duplicate, Verdict
from agent.registrar.tokens import TokenRecord

NodeState = Literal["pending", "approved", "revoked"]


@dataclass(frozen=True)
class Node:
    node_id: str
    state: NodeState
    token_id: str
    key_fingerprint: str
    site: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    created_at: float = 0.0
    serial: str = ""  # hex serial of the newest certificate
    cert_not_after: float = 0.0
    cluster: str = ""
    role: str = ""  # "", "server" or "agent"
    cluster_init: bool = False
    addresses: list[str] = field(default_factory=list)
    observed: str = ""
    api_port: int = 7443
    inventory: dict[str, Any] = field(default_factory=dict)
    status: dict[str, Any] = field(default_factory=dict)
    last_seen: float = 0.0
    dmi_serial: str = ""
    approved_by: str = ""  # "token:<id>", "policy:<name>" or "operator:<user>" (agent.registrar.policy)
    instance: str = ""  # the box heard as this node now: boot/hardware (agent.registrar.duplicates)


@dataclass(frozen=True)
class Cluster:
    name: str
    distribution: Literal["k3s", "k0s"]
    version: str
    servers: int
    server_token: str = ""
    agent_token: str = ""


@dataclass(frozen=True)
class Registration:
    """What a node registers (``POST /v1/fleet/register``): where it is reachable and what it is."""

    addresses: list[str]
    observed: str  # the address its request came from
    api_port: int
    inventory: dict[str, Any]
    dmi_serial: str
    site: str
    labels: dict[str, str]


@dataclass(frozen=True)
class ClusterView:
    """What a member's answer needs of its cluster, read at once."""

    cluster: Cluster | None  # None: not stored yet
    servers: list[Node]  # by arrival; what an answer reads of them (rows.IN_VIEW), defaults for the rest
    rule: str | None  # the spec of the rule asked for, None when there is none
    crl_number: int


Decide = Callable[[Cluster, list[Node], Node], tuple[str, bool]]


class Registry(Protocol):
    # tokens
    def add_token(self, token: TokenRecord) -> None: ...
    def get_token(self, token_id: str) -> TokenRecord | None: ...
    def use_token(self, token_id: str) -> bool:
        """Take one use; False when none is left."""
        ...

    def list_tokens(self) -> list[TokenRecord]: ...

    # nodes
    def create_node(self, node: Node) -> None: ...
    def enroll_node(self, node: Node) -> Node | None:
        """Create ``node`` and take one use of its token, in one transaction. A node of that id already
        there (an earlier or a concurrent request made it) is returned as it is and no use is taken;
        None when the token has no use left (nothing is created)."""
        ...

    def assign_node(self, node_id: str, cluster: Cluster, decide: Decide) -> tuple[Node, bool]:
        """When the node has no role yet: ``decide(cluster, servers, node)`` gives (role, cluster_init)
        and it is stored, in one transaction that holds the cluster (stored as ``cluster`` when missing)
        locked against every other writer. Returns the node and whether this call assigned it."""
        ...

    def get_node(self, node_id: str) -> Node | None: ...
    def certified_node(self, serial: int) -> Node | None:
        """The node the certificate of that serial was issued to, while it is not revoked, in one read
        (None: revoked, unknown, or an operator's certificate)."""
        ...

    def member_view(self, serial: int, rule_kind: str) -> tuple[Node, ClusterView] | None:
        """``certified_node`` and the ``cluster_view`` of its cluster (the rule named by its site), in one read;
        the node as an answer needs it (agent.registrar.rows.IN_VIEW: not its inventory or status)."""
        ...

    def list_nodes(self) -> list[Node]: ...
    def set_state(self, node_id: str, state: NodeState, by: str = "") -> bool: ...  # by: who, for the audit
    def record_cert(self, node_id: str, serial: int, not_after: float) -> None: ...
    def record_register(self, node_id: str, registration: Registration) -> None: ...
    def record_heartbeat(self, node_id: str, status: dict[str, Any], observed: str) -> Node | None:
        """Store the status a node reports and when; the node as stored now (None: no such node)."""
        ...

    def heartbeat(
        self, node_id: str, serial: int, instance: str, status: dict[str, Any] | None, observed: str, rule_kind: str
    ) -> tuple[Node, ClusterView] | None:
        """A heartbeat's common case, in one statement where the backend can: the status of node ``node_id``
        (None: the one stored stays) stored when ``serial`` is its certificate and not revoked, it is approved
        or pending, and ``instance`` is the box it is heard as now (or '': an older agent); then the node and
        the view its answer needs, as ``member_view`` reads them. None when not so: the caller reads why
        (``member_view``) and judges a new instance (``record_instance``)."""
        ...

    def record_instance(
        self, node_id: str, instance: str, status: dict[str, Any] | None, observed: str
    ) -> Verdict | None:
        """A heartbeat from an instance the node is not heard as now, judged (agent.registrar.duplicates.judge)
        against the instances seen and the node's flag, in one transaction holding the node's row; its
        status stored when the verdict accepts it. None: no such node."""
        ...

    def duplicates(self) -> dict[str, Duplicate]:
        """The nodes flagged DuplicateIdentity, by node id."""
        ...

    def resolve_duplicate(self, node_id: str) -> bool:
        """The operator's decision: forget the flag and the instances seen, so the node starts afresh.
        False: it was not flagged."""
        ...

    def adopt_instances(
        self, seen: list[tuple[str, str, float, float]], current: list[tuple[str, str]], flags: list[Duplicate]
    ) -> None:
        """What an older registrar's per-replica guard file remembered (agent.registrar.legacy_guard), in one
        transaction: (node_id, instance, first_seen, last_seen), (node_id, instance heard now), and flags;
        what the registry has already is kept."""
        ...

    def set_assignment(self, node_id: str, cluster: str, role: str, cluster_init: bool) -> None: ...

    # certificates
    def add_cert(self, serial: int, owner: str, not_after: float) -> None:
        """Remember a certificate issued to an operator (``owner``) so it can be revoked."""
        ...

    def revoke_cert(self, serial: int) -> bool: ...
    def cert_owner(self, serial: int) -> str | None: ...
    def revoke_node(self, node_id: str) -> int:
        """Mark the node revoked and every certificate of it; returns how many certificates."""
        ...

    def revoked(self) -> list[tuple[int, float]]: ...
    def crl_number(self) -> int: ...

    # clusters
    def get_cluster(self, name: str) -> Cluster | None: ...
    def put_cluster(self, cluster: Cluster) -> None: ...
    def ensure_cluster(self, cluster: Cluster) -> Cluster:
        """The stored cluster of that name, else ``cluster``, stored now (never replaces one)."""
        ...

    def set_join_tokens(self, name: str, server: str, agent: str) -> None: ...
    def cluster_view(self, name: str, rule_kind: str, rule_name: str) -> ClusterView:
        """The cluster, its servers, the rule of that kind and name, and the CRL number, in one read:
        what every heartbeat answers with."""
        ...

    def cluster_members(self, name: str) -> list[Node]: ...
    def cluster_servers(self, name: str) -> list[Node]:
        """The cluster's members with role server, by arrival: all that role and join decisions need,
        read at every heartbeat (a cluster of 10,000 agents is not read whole each time)."""
        ...

    # approval policies and machine classes (kind "policy" or "class"), as their JSON documents
    def put_rule(self, kind: str, name: str, spec: str) -> bool: ...  # False: that kind and name exist
    def rules(self, kind: str) -> list[str]: ...
    def remove_rule(self, kind: str, name: str) -> bool: ...
    # the audit trail of nodes: (time, node_id, action, actor, detail)
    def add_event(self, node_id: str, action: str, actor: str, detail: str) -> None: ...
    def events(self, node_id: str | None = None) -> list[tuple[float, str, str, str, str]]: ...
    # shared by replicas: the failed-guess budget per source (agent.registrar.ratelimit) and leases
    def guess_level(self, source: str, burst: float, rate: float, now: float) -> float: ...
    def guess_failed(self, source: str, burst: float, rate: float, now: float) -> None: ...
    def take_lease(self, name: str, holder: str, ttl: float, now: float) -> bool:
        """Hold ``name`` until now+ttl: True when it was free, expired or already ours."""
        ...

    def leases(self, prefix: str, now: float) -> list[tuple[str, str]]:
        """(name, holder) of the live leases whose name starts with ``prefix``, by name."""
        ...

    def put_poll_results(self, rows: list[tuple[str, str, float, str]]) -> None:
        """(node_id, row JSON, polled_at, polled_by) of one replica's sweep, in one transaction."""
        ...

    def poll_results(self) -> list[tuple[str, str, float, str]]: ...

    def close(self) -> None: ...
