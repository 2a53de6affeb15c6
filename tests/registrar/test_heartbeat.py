"""A heartbeat on every backend: one that leaves its status out keeps the stored one and is still heard;
what it answers with is the node and its cluster as an answer needs them, without the inventory."""

from __future__ import annotations

from agent.registrar.registry import Cluster, Node, Registration, Registry

RULE = "site-network"


def test_a_status_left_out_keeps_the_stored_one(registry: Registry) -> None:
    registry.put_cluster(Cluster("lab", "k3s", "", 1, "K10s::server:x", "K10a::node:y"))
    registry.create_node(Node("s1", "approved", "t", "f", site="lab", cluster="lab", role="server", cluster_init=True))
    registry.record_cert("s1", 0xC1, 2e9)
    big = {f"disk{i}": {"serial": f"S{i:08d}", "wear": i} for i in range(200)}
    registry.record_register("s1", Registration(["10.0.0.5"], "127.0.0.1", 7443, big, "DMI1", "lab", {}))

    assert registry.heartbeat("s1", 0xC1, "b/h", {"health": "?"}, "127.0.0.1", RULE) is None  # a box not heard yet
    verdict = registry.record_instance("s1", "b/h", {"health": "healthy"}, "127.0.0.1")  # ... is judged first
    assert verdict is not None and verdict.accept
    seen = registry.heartbeat("s1", 0xC1, "b/h", {"health": "degraded"}, "127.0.0.1", RULE)
    assert seen is not None
    node, view = seen
    assert (node.node_id, node.role, node.cluster) == ("s1", "server", "lab")
    assert node.inventory == {} and view.servers[0].inventory == {}  # not read for an answer
    assert view.servers[0].addresses == ["10.0.0.5"] and view.cluster is not None
    first = registry.get_node("s1")
    assert first is not None and first.status == {"health": "degraded"} and first.inventory == big

    assert registry.heartbeat("s1", 0xC1, "b/h", None, "127.0.0.2", RULE) is not None
    after = registry.get_node("s1")
    assert after is not None and after.status == {"health": "degraded"}  # kept
    assert after.last_seen >= first.last_seen and after.observed == "127.0.0.2"  # still heard
