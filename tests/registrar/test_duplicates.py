"""DuplicateIdentity kept in the registry, on every backend: a reboot is no duplicate, alternating instances
are, and two boxes reaching two replicas (two connections to one registry) are flagged just the same; an
older registrar's per-replica guard file is adopted, not lost."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from agent.errors import StateError
from agent.registrar.database import open_registry
from agent.registrar.duplicates import KEEP
from agent.registrar.registry import Node, Registry

RULE = "site-network"


def enrolled(registry: Registry, node_id: str, serial: int) -> None:
    registry.create_node(Node(node_id, "approved", "t", "f", site="lab"))
    registry.record_cert(node_id, serial, 2e9)


def beat(registry: Registry, node_id: str, serial: int, instance: str) -> int:
    """The registrar's answer to one heartbeat: 200 stored, 409 refused, 403 not a member."""
    if registry.heartbeat(node_id, serial, instance, {"health": "ok"}, "127.0.0.1", RULE) is not None:
        return 200
    if registry.member_view(serial, RULE) is None:
        return 403
    verdict = registry.record_instance(node_id, instance, {"health": "ok"}, "127.0.0.1")
    return 403 if verdict is None else 200 if verdict.accept else 409


def test_a_reboot_is_not_a_duplicate_but_instances_that_alternate_are(registry: Registry) -> None:
    enrolled(registry, "n1", 0xA1)
    enrolled(registry, "n2", 0xA2)
    for instance in ("boot-a/hw1", "boot-a/hw1", "boot-b/hw1", "boot-b/hw1", "boot-c/hw1"):  # three boots
        assert beat(registry, "n1", 0xA1, instance) == 200
    assert registry.duplicates() == {}
    assert beat(registry, "n1", 0xA1, "") == 200  # an older agent that names no instance is not judged
    assert registry.get_node("n1").instance == "boot-c/hw1"  # type: ignore[union-attr]

    # the same boot id on two boards: the hardware part alternates
    assert beat(registry, "n2", 0xA2, "boot-x/hw1") == 200
    assert beat(registry, "n2", 0xA2, "boot-x/hw2") == 200
    assert beat(registry, "n2", 0xA2, "boot-x/hw1") == 200  # the original comes back: flagged, and still heard
    dup = registry.duplicates()["n2"]
    assert (dup.original, dup.second) == ("boot-x/hw1", "boot-x/hw2")
    assert beat(registry, "n2", 0xA2, "boot-x/hw2") == 409
    assert beat(registry, "n2", 0xA2, "boot-x/hw1") == 200
    assert set(registry.duplicates()) == {"n2"}  # n1 untouched

    assert registry.resolve_duplicate("n2") and not registry.resolve_duplicate("n2")
    assert beat(registry, "n2", 0xA2, "boot-x/hw2") == 200  # starts afresh: the box heard next is the node
    assert registry.duplicates() == {}


def test_a_revoked_certificate_is_not_heard(registry: Registry) -> None:
    enrolled(registry, "n1", 0xA1)
    assert beat(registry, "n1", 0xA1, "b/h") == 200
    registry.revoke_node("n1")
    before = registry.get_node("n1")
    assert beat(registry, "n1", 0xA1, "b/h") == 403
    assert registry.get_node("n1") == before  # nothing stored
    assert beat(registry, "n1", 0xB7, "b/h") == 403  # not its certificate


def test_many_reboots_keep_a_bounded_memory(registry: Registry) -> None:
    enrolled(registry, "n1", 0xA1)
    for boot in range(3 * KEEP):
        assert beat(registry, "n1", 0xA1, f"boot-{boot}/hw") == 200
    assert registry.duplicates() == {}
    # the first boots are forgotten: one of them coming back is taken for a new boot, not a copy
    assert beat(registry, "n1", 0xA1, "boot-0/hw") == 200 and registry.duplicates() == {}
    assert beat(registry, "n1", 0xA1, f"boot-{3 * KEEP - 1}/hw") == 200  # remembered, alternating: flagged
    assert set(registry.duplicates()) == {"n1"}


def test_two_boxes_reaching_two_replicas_are_flagged(registry_url: str, tmp_path: Path) -> None:
    one = open_registry(registry_url, tmp_path / "replica-1")
    two = open_registry(registry_url, tmp_path / "replica-2")
    try:
        enrolled(one, "n1", 0xA1)
        assert beat(one, "n1", 0xA1, "boot-a/hw1") == 200  # the original box, through replica 1
        assert beat(two, "n1", 0xA1, "boot-b/hw2") == 200  # the copy, through replica 2
        assert beat(one, "n1", 0xA1, "boot-a/hw1") == 200  # alternating across replicas: flagged
        assert set(two.duplicates()) == {"n1"}
        assert beat(two, "n1", 0xA1, "boot-b/hw2") == 409
        assert beat(one, "n1", 0xA1, "boot-b/hw2") == 409
        assert beat(two, "n1", 0xA1, "boot-a/hw1") == 200
    finally:
        one.close()
        two.close()


def test_an_older_registrars_guard_file_is_adopted(registry_url: str, tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    old = sqlite3.connect(state / "identity-guard.sqlite")  # as a registrar before schema 5 kept it
    old.executescript(
        """CREATE TABLE instances (node_id TEXT NOT NULL, instance TEXT NOT NULL, first_seen REAL NOT NULL,
            last_seen REAL NOT NULL, PRIMARY KEY (node_id, instance));
        CREATE TABLE latest (node_id TEXT PRIMARY KEY, instance TEXT NOT NULL);
        CREATE TABLE duplicates (node_id TEXT PRIMARY KEY, original TEXT NOT NULL, second TEXT NOT NULL,
            flagged_at REAL NOT NULL);
        INSERT INTO instances VALUES ('n1', 'a/1', 1.0, 5.0), ('n1', 'b/2', 2.0, 6.0), ('n2', 'c/3', 1.0, 9.0);
        INSERT INTO latest VALUES ('n1', 'b/2'), ('n2', 'c/3');
        INSERT INTO duplicates VALUES ('n1', 'a/1', 'b/2', 7.0);"""
    )
    old.close()
    first = open_registry(registry_url, tmp_path / "elsewhere")
    try:
        enrolled(first, "n1", 0xA1)
        enrolled(first, "n2", 0xA2)
    finally:
        first.close()

    registry = open_registry(registry_url, state)
    try:
        assert not (state / "identity-guard.sqlite").exists()
        assert (state / "identity-guard.sqlite.imported").is_file()  # kept, renamed
        dup = registry.duplicates()["n1"]
        assert (dup.original, dup.second, dup.flagged_at) == ("a/1", "b/2", 7.0)
        assert beat(registry, "n1", 0xA1, "b/2") == 409  # still refused after the upgrade
        assert beat(registry, "n1", 0xA1, "a/1") == 200
        assert beat(registry, "n2", 0xA2, "c/3") == 200  # heard as before
        assert beat(registry, "n2", 0xA2, "d/4") == 200  # a reboot
        assert beat(registry, "n2", 0xA2, "c/3") == 200  # the remembered one is back: flagged, still heard
        assert beat(registry, "n2", 0xA2, "d/4") == 409 and set(registry.duplicates()) == {"n1", "n2"}
    finally:
        registry.close()


def test_an_unreadable_guard_file_is_named_and_kept(registry_url: str, tmp_path: Path) -> None:
    (tmp_path / "identity-guard.sqlite").write_bytes(b"not a database at all" * 100)
    with pytest.raises(StateError, match=r"identity-guard\.sqlite: .*move it aside"):
        open_registry(registry_url, tmp_path)
    assert (tmp_path / "identity-guard.sqlite").read_bytes().startswith(b"not a database")
