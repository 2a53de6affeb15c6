"""Cluster assignment (pure): who initialises, who joins as server, who joins as agent.

The first node of a cluster initialises it (k3s ``--cluster-init``); the next
ones join as servers until the cluster's server count (1 or 3) is reached;
the rest join as agents. A joiner gets its assignment only once the first
server has reported the cluster's real join tokens: servers get the server
token, agents only the agent token (k3s ``K10<hash>::node:<password>``, k0s a
worker token), which cannot join a server; never the server token.
"""

from __future__ import annotations

from typing import Any

from agent.registrar.registry import Cluster, Node

K8S_API_PORT = 6443


def choose_role(cluster: Cluster, members: list[Node], node: Node, want: str = "") -> tuple[str, bool]:
    """(role, cluster_init) for ``node``; a role once given is kept. ``want`` is a machine class's
    role (agent.registrar.classes): "agent" is always an agent, "server" (like no class) a server
    only while the cluster has room."""
    if node.role:
        return node.role, node.cluster_init
    if want == "agent":
        return "agent", False
    servers = [m for m in members if m.role == "server" and m.state != "revoked"]
    if not servers:
        return "server", True
    if len(servers) < cluster.servers:
        return "server", False
    return "agent", False


def _url_host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def node_address(node: Node) -> str:
    return node.addresses[0] if node.addresses else node.observed


def assignment_for(cluster: Cluster, members: list[Node], node: Node) -> tuple[dict[str, Any] | None, str]:
    """The assignment document for ``node``, or None and why it has to wait."""
    base: dict[str, Any] = {
        "cluster": cluster.name,
        "distribution": cluster.distribution,
        "version": cluster.version,
        "role": node.role,
        "cluster_init": node.cluster_init,
        "labels": dict(node.labels),
        "taints": [],
    }
    if node.cluster_init:
        # The initialising server makes the cluster's token itself and reads it from its own disk;
        # handing it back the K10 form it reported would be refused (k3s takes only a short token on
        # the first server) and would change its config on every restart.
        return {**base, "server_url": "", "join_token": ""}, ""
    init = next((m for m in members if m.cluster_init and m.state != "revoked"), None)
    if init is None:
        return None, f"cluster {cluster.name} has no initialising server"
    if not cluster.server_token:
        return None, f"waiting for {init.node_id}, first server of cluster {cluster.name}, to report its join token"
    token = cluster.server_token if node.role == "server" else cluster.agent_token
    if not token:
        return None, (
            f"waiting for {init.node_id}, first server of cluster {cluster.name}, to report a separate agent token"
        )
    address = node_address(init)
    if not address:
        return None, f"first server {init.node_id} of cluster {cluster.name} has not reported an address"
    return {**base, "server_url": f"https://{_url_host(address)}:{K8S_API_PORT}", "join_token": token}, ""
