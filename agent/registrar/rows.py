"""Registry rows (by column name, from any backend) to records, and the column list of ``nodes``."""

from __future__ import annotations

import json
from typing import Any, Protocol

from agent.registrar.registry import Cluster, Node
from agent.registrar.tokens import TokenRecord

NODE_COLS = (
    "node_id, state, token_id, key_fingerprint, site, labels, created_at, serial, cert_not_after, "
    "cluster, role, cluster_init, addresses, observed, api_port, inventory, status, last_seen, dmi_serial, "
    "approved_by"
)


class Row(Protocol):
    """A row whose columns are read by name (sqlite3.Row, psycopg's dict rows)."""

    def __getitem__(self, key: str, /) -> Any: ...


def node_values(node: Node, created_at: float) -> tuple[Any, ...]:
    """``node`` as the values of NODE_COLS, in order."""
    return (
        node.node_id,
        node.state,
        node.token_id,
        node.key_fingerprint,
        node.site,
        json.dumps(node.labels),
        node.created_at or created_at,
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
    )


def node_of(row: Row) -> Node:
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


def token_of(row: Row) -> TokenRecord:
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


def cluster_of(row: Row) -> Cluster:
    return Cluster(
        name=row["name"],
        distribution=row["distribution"],
        version=row["version"],
        servers=row["servers"],
        server_token=row["server_token"],
        agent_token=row["agent_token"],
    )


def token_values(token: TokenRecord, created_at: float) -> tuple[Any, ...]:
    return (
        token.token_id,
        token.secret_hash,
        token.expires_at,
        token.uses_left,
        token.site,
        json.dumps(token.labels),
        int(token.require_approval),
        token.created_at or created_at,
    )
