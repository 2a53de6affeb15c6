"""The rollout store: each rollout's plan, every node's progress and an audit trail, in one SQLite file.

``<state-dir>/rollouts.sqlite`` holds:
- ``rollouts``: bundle, selector, batch size, state, and the target ``kind``/``version``
  once the first box has read the bundle's manifest (the registrar never downloads it);
- ``rollout_nodes``: per node its batch, state (pending, running, committed, skipped,
  blocked, failed), the agent's upgrade id, the reason, and ``retry`` (send it with force);
- ``rollout_events``: who asked for what and when (create, resume, every ``--retry NODE``).

Older files are migrated in place (columns added, tables created) when opened.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any

from agent.errors import StateError
from agent.registrar.dbfile import open_private, transaction
from agent.registrar.registry import Node

DB_NAME = "rollouts.sqlite"

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS rollouts (
        id TEXT PRIMARY KEY, bundle TEXT NOT NULL, selector TEXT NOT NULL, force INTEGER NOT NULL,
        batch_size INTEGER NOT NULL, canary INTEGER NOT NULL, state TEXT NOT NULL, reason TEXT NOT NULL,
        created_at REAL NOT NULL, updated_at REAL NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS rollout_nodes (
        rollout_id TEXT NOT NULL, node_id TEXT NOT NULL, batch INTEGER NOT NULL, position INTEGER NOT NULL,
        role TEXT NOT NULL, state TEXT NOT NULL, upgrade_id TEXT NOT NULL, reason TEXT NOT NULL,
        updated_at REAL NOT NULL, PRIMARY KEY (rollout_id, node_id))""",
    """CREATE TABLE IF NOT EXISTS rollout_events (
        rollout_id TEXT NOT NULL, at REAL NOT NULL, node_id TEXT NOT NULL, event TEXT NOT NULL,
        detail TEXT NOT NULL)""",
]
# (table, column, declaration): added to files made before the column existed
COLUMNS = [
    ("rollouts", "kind", "TEXT NOT NULL DEFAULT ''"),
    ("rollouts", "version", "TEXT NOT NULL DEFAULT ''"),
    ("rollout_nodes", "retry", "INTEGER NOT NULL DEFAULT 0"),
]


class RolloutStore:
    def __init__(self, state_dir: Path) -> None:
        path = state_dir / DB_NAME
        try:
            self.db = open_private(path)
            for stmt in SCHEMA:
                self.db.execute(stmt)
            for table, column, decl in COLUMNS:
                have = {r[1] for r in self.db.execute(f"PRAGMA table_info({table})")}
                if column not in have:
                    self.db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {decl}")
        except sqlite3.Error as exc:
            raise StateError(f"{path}: rollout store unusable: {exc}") from exc

    def close(self) -> None:
        self.db.close()

    def create(
        self,
        bundle: str,
        selector: dict[str, str],
        batches: list[list[Node]],
        *,
        force: bool,
        batch_size: int,
        canary: int,
    ) -> str:
        rid = "r-" + uuid.uuid4().hex[:10]
        now = time.time()
        with transaction(self.db) as db:
            db.execute(
                "INSERT INTO rollouts (id, bundle, selector, force, batch_size, canary, state, reason, created_at,"
                " updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (rid, bundle, json.dumps(selector, sort_keys=True), int(force), batch_size, canary, "created", "",
                 now, now),
            )  # fmt: skip
            pos = 0
            for b, batch in enumerate(batches):
                for n in batch:
                    db.execute(
                        "INSERT INTO rollout_nodes (rollout_id, node_id, batch, position, role, state, upgrade_id,"
                        " reason, updated_at) VALUES (?,?,?,?,?,?,?,?,?)",
                        (rid, n.node_id, b, pos, n.role or "", "pending", "", "", now),
                    )
                    pos += 1
            detail = f"bundle {bundle}" + (" with force" if force else "")
            db.execute("INSERT INTO rollout_events VALUES (?,?,?,?,?)", (rid, now, "", "created", detail))
        return rid

    def get(self, rid: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT * FROM rollouts WHERE id=?", (rid,)).fetchone()
        if row is None:
            return None
        doc = dict(row)
        doc["selector"] = json.loads(doc["selector"])
        doc["force"] = bool(doc["force"])
        doc["nodes"] = [
            {**dict(r), "retry": bool(r["retry"])}
            for r in self.db.execute(
                "SELECT node_id, batch, position, role, state, upgrade_id, reason, retry, updated_at"
                " FROM rollout_nodes WHERE rollout_id=? ORDER BY position",
                (rid,),
            )
        ]
        counts: dict[str, int] = {}
        for n in doc["nodes"]:
            counts[n["state"]] = counts.get(n["state"], 0) + 1
        doc["counts"] = counts
        doc["events"] = [
            dict(r)
            for r in self.db.execute(
                "SELECT at, node_id, event, detail FROM rollout_events WHERE rollout_id=? ORDER BY at, rowid", (rid,)
            )
        ]
        return doc

    def list(self) -> list[dict[str, Any]]:
        ids = [r[0] for r in self.db.execute("SELECT id FROM rollouts ORDER BY created_at DESC")]
        return [d for d in (self.get(i) for i in ids) if d is not None]

    def set_state(self, rid: str, state: str, reason: str = "") -> None:
        self.db.execute(
            "UPDATE rollouts SET state=?, reason=?, updated_at=? WHERE id=?", (state, reason, time.time(), rid)
        )

    def set_target(self, rid: str, kind: str, version: str) -> None:
        """What the bundle is, as the first box to read its manifest reported it."""
        self.db.execute("UPDATE rollouts SET kind=?, version=? WHERE id=? AND version=''", (kind, version, rid))

    def set_node(self, rid: str, node_id: str, state: str, upgrade_id: str = "", reason: str = "") -> None:
        self.db.execute(
            "UPDATE rollout_nodes SET state=?, upgrade_id=?, reason=?, updated_at=? WHERE rollout_id=? AND node_id=?",
            (state, upgrade_id, reason, time.time(), rid, node_id),
        )

    def retry_node(self, rid: str, node_id: str, detail: str) -> None:
        """The operator's explicit ``--retry NODE``: pending again, sent with force, and written down."""
        now = time.time()
        with transaction(self.db) as db:
            db.execute(
                "UPDATE rollout_nodes SET state='pending', upgrade_id='', reason='', retry=1, updated_at=?"
                " WHERE rollout_id=? AND node_id=?",
                (now, rid, node_id),
            )
            db.execute("INSERT INTO rollout_events VALUES (?,?,?,?,?)", (rid, now, node_id, "retry", detail))

    def event(self, rid: str, event: str, detail: str = "", node_id: str = "") -> None:
        self.db.execute("INSERT INTO rollout_events VALUES (?,?,?,?,?)", (rid, time.time(), node_id, event, detail))
