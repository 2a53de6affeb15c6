"""One node certificate used by two boxes at once: seen, flagged ``DuplicateIdentity``, the second refused.

Each heartbeat names the box's instance: its boot id (new at every boot) and
its hardware key (agent.fleet.hardware). A reboot or a repair changes the
instance once and the old one never comes back; two boxes sharing one
identity make the instances *alternate* (A, B, A). So an instance that was
seen before and returns after another one is the signal. The node is then
flagged: the earlier instance (the original) keeps heartbeating, every other
instance is refused until an operator runs ``edge-registrar nodes resolve ID``
(after revoking the node or re-imaging the copy).

The guard keeps its own small SQLite file, ``<state-dir>/identity-guard.sqlite``.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from agent.errors import StateError
from agent.registrar.dbfile import open_private, transaction

DB_NAME = "identity-guard.sqlite"
KEEP = 8  # instances remembered per node
SCHEMA = [
    """CREATE TABLE IF NOT EXISTS instances (
        node_id TEXT NOT NULL, instance TEXT NOT NULL, first_seen REAL NOT NULL, last_seen REAL NOT NULL,
        PRIMARY KEY (node_id, instance))""",
    "CREATE TABLE IF NOT EXISTS latest (node_id TEXT PRIMARY KEY, instance TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS duplicates (
        node_id TEXT PRIMARY KEY, original TEXT NOT NULL, second TEXT NOT NULL, flagged_at REAL NOT NULL)""",
]


@dataclass(frozen=True)
class Duplicate:
    node_id: str
    original: str
    second: str
    flagged_at: float

    @property
    def reason(self) -> str:
        return (
            f"DuplicateIdentity: the certificate of node {self.node_id} is used by two boxes at once "
            f"(instances {self.original} and {self.second}, alternating); heartbeats other than the first box's "
            f"are refused until an operator runs 'edge-registrar nodes resolve {self.node_id}'"
        )


def instance_of(boot_id: str, hardware: str) -> str:
    """``boot/hardware`` as reported; '' when the box reported neither (an older agent)."""
    return f"{boot_id[:64]}/{hardware[:64]}" if boot_id or hardware else ""


class IdentityGuard:
    def __init__(self, state_dir: Path) -> None:
        path = state_dir / DB_NAME
        try:
            self.db = open_private(path, check_same_thread=False)
            # a commit at every heartbeat: WAL without an fsync each (the registry does the same);
            # a power loss forgets the last instants seen, never corrupts the file
            self.db.execute("PRAGMA synchronous=NORMAL")
            for stmt in SCHEMA:
                self.db.execute(stmt)
        except sqlite3.Error as exc:
            raise StateError(f"{path}: identity guard unusable: {exc}") from exc

    def close(self) -> None:
        self.db.close()

    def heartbeat(self, node_id: str, instance: str) -> Duplicate | None:
        """Record one heartbeat; the flag when this one is to be refused (None: accept it)."""
        if not instance:
            return None
        now = time.time()
        with transaction(self.db) as db:
            flag = self._flag(node_id)
            if flag is not None:
                return flag if instance != flag.original else None
            rows = db.execute(
                "SELECT instance FROM instances WHERE node_id=? ORDER BY last_seen DESC, first_seen DESC", (node_id,)
            ).fetchall()
            seen = [r[0] for r in rows]
            row = db.execute("SELECT instance FROM latest WHERE node_id=?", (node_id,)).fetchone()
            last = str(row[0]) if row else ""
            if last and instance != last and instance in seen:
                # an earlier instance is back after another: two boxes, not a reboot
                original, second = sorted((instance, last), key=lambda i: self._first_seen(node_id, i))
                db.execute("INSERT INTO duplicates VALUES (?,?,?,?)", (node_id, original, second, now))
                flag = Duplicate(node_id, original, second, now)
                return flag if instance != original else None
            db.execute(
                "INSERT INTO instances VALUES (?,?,?,?) ON CONFLICT(node_id, instance) DO UPDATE SET last_seen=?",
                (node_id, instance, now, now, now),
            )
            db.execute(
                "INSERT INTO latest VALUES (?,?) ON CONFLICT(node_id) DO UPDATE SET instance=?",
                (node_id, instance, instance),
            )
            for old in seen[KEEP - 1 :]:
                if old != instance:
                    db.execute("DELETE FROM instances WHERE node_id=? AND instance=?", (node_id, old))
        return None

    def _first_seen(self, node_id: str, instance: str) -> float:
        row = self.db.execute(
            "SELECT first_seen FROM instances WHERE node_id=? AND instance=?", (node_id, instance)
        ).fetchone()
        return float(row[0]) if row else time.time()

    def _flag(self, node_id: str) -> Duplicate | None:
        row = self.db.execute(
            "SELECT node_id, original, second, flagged_at FROM duplicates WHERE node_id=?", (node_id,)
        ).fetchone()
        return Duplicate(row[0], row[1], row[2], float(row[3])) if row else None

    def flagged(self) -> dict[str, Duplicate]:
        rows = self.db.execute("SELECT node_id, original, second, flagged_at FROM duplicates").fetchall()
        return {r[0]: Duplicate(r[0], r[1], r[2], float(r[3])) for r in rows}

    def resolve(self, node_id: str) -> bool:
        """The operator's decision: forget the flag and the instances seen, so the node starts afresh."""
        with transaction(self.db) as db:
            n = db.execute("DELETE FROM duplicates WHERE node_id=?", (node_id,)).rowcount
            db.execute("DELETE FROM instances WHERE node_id=?", (node_id,))
            db.execute("DELETE FROM latest WHERE node_id=?", (node_id,))
        return n > 0
