"""The rollout store beside the registry, on every backend: claims give a node one driver, an older
``rollouts.sqlite`` is migrated in place."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from agent.registrar.registry import Node
from agent.registrar.rollout_store import RolloutStore

BUNDLE = "https://releases.example/b.tar"


def test_a_node_has_one_driver_until_its_claim_runs_out_or_it_is_final(registry_url: str, tmp_path: Path) -> None:
    store = RolloutStore.beside(registry_url, tmp_path)
    other = RolloutStore.beside(registry_url, tmp_path)  # another replica's connection
    try:
        nodes = [Node("a1", "approved", "t", "f", role="agent"), Node("a2", "approved", "t", "f", role="agent")]
        rid = store.create(BUNDLE, {"site": "lab"}, [nodes], force=False, batch_size=2, canary=1, driver="replicas")
        assert other.running_on_replicas() == [rid]
        assert store.claim(rid, "a1", "r-a", ttl=10, now=100)
        assert not other.claim(rid, "a1", "r-b", ttl=10, now=105)  # r-a drives it
        assert store.claim(rid, "a1", "r-a", ttl=10, now=108)  # renewed: until 118
        assert not other.claim(rid, "a1", "r-b", ttl=10, now=115)
        assert other.claim(rid, "a1", "r-b", ttl=10, now=119)  # r-a stopped renewing: r-b takes it over
        other.set_node(rid, "a1", "running", "u-1")
        other.set_node(rid, "a1", "committed", "u-1", "healthy", by="r-b")
        assert not store.claim(rid, "a1", "r-a", ttl=10, now=200)  # final: nobody drives it again
        assert other.pause(rid, "a2: rolled-back") and not store.pause(rid, "a2: again")
        doc = store.get(rid)
        assert doc is not None and doc["state"] == "paused" and doc["reason"] == "a2: rolled-back"
        row = next(n for n in doc["nodes"] if n["node_id"] == "a1")
        assert (row["state"], row["upgrade_id"], row["driven_by"]) == ("committed", "u-1", "r-b")
        assert store.running_on_replicas() == []
        assert [e["event"] for e in doc["events"]] == ["created"]
    finally:
        store.close()
        other.close()


def test_an_older_rollouts_file_is_migrated_in_place(tmp_path: Path) -> None:
    old = sqlite3.connect(tmp_path / "rollouts.sqlite")
    old.executescript(
        """CREATE TABLE rollouts (id TEXT PRIMARY KEY, bundle TEXT NOT NULL, selector TEXT NOT NULL,
            force INTEGER NOT NULL, batch_size INTEGER NOT NULL, canary INTEGER NOT NULL, state TEXT NOT NULL,
            reason TEXT NOT NULL, created_at REAL NOT NULL, updated_at REAL NOT NULL);
        CREATE TABLE rollout_nodes (rollout_id TEXT NOT NULL, node_id TEXT NOT NULL, batch INTEGER NOT NULL,
            position INTEGER NOT NULL, role TEXT NOT NULL, state TEXT NOT NULL, upgrade_id TEXT NOT NULL,
            reason TEXT NOT NULL, updated_at REAL NOT NULL, PRIMARY KEY (rollout_id, node_id));
        CREATE TABLE rollout_events (rollout_id TEXT NOT NULL, at REAL NOT NULL, node_id TEXT NOT NULL,
            event TEXT NOT NULL, detail TEXT NOT NULL);
        INSERT INTO rollouts VALUES ('r-old', 'https://x/b.tar', '{"site": "lab"}', 0, 5, 1, 'paused', 'a1: failed',
            1.0, 2.0);
        INSERT INTO rollout_nodes VALUES ('r-old', 'a1', 0, 0, 'agent', 'failed', 'u-9', 'rolled-back', 2.0);
        INSERT INTO rollout_events VALUES ('r-old', 1.0, '', 'created', 'bundle https://x/b.tar');"""
    )
    old.close()
    store = RolloutStore(tmp_path)
    try:
        doc = store.get("r-old")
        assert doc is not None and (doc["state"], doc["driver"], doc["version"]) == ("paused", "", "")
        assert doc["nodes"][0]["state"] == "failed" and doc["nodes"][0]["retry"] is False
        rid = store.create(BUNDLE, {}, [[Node("b1", "approved", "t", "f")]], force=True, batch_size=1, canary=1)
        assert [d["id"] for d in store.list()] == [rid, "r-old"]
    finally:
        store.close()
