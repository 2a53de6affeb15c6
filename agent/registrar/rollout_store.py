"""The rollout store: each rollout's plan, every node's progress and an audit trail.

Kept in the registry's own store, tables of its versioned schema (agent.registrar.rollout_sql:
``registry.sqlite`` for the embedded SQLite, the registry's database for PostgreSQL):
- ``rollouts``: bundle, selector, batch size, state, the target ``kind``/``version`` once the first box
  has read the bundle's manifest (the registrar never downloads it), and ``driver``: '' when the
  command that made it drives it, 'replicas' when the serving replicas do (agent.registrar.rollout_shard);
- ``rollout_nodes``: per node its batch, state (pending, running, committed, skipped, blocked, failed),
  the agent's upgrade id (recorded as soon as the box accepted the upgrade), the reason, ``retry`` (send
  it with force), and on replicas ``claimed_by``/``claimed_until`` (the replica driving it now) and
  ``driven_by`` (the one that recorded its result);
- ``rollout_events``: who asked for what and when (create, resume, every ``--retry NODE``), in the
  order written (``seq``).

Opening the store brings the registry's schema up to date; a ``rollouts.sqlite`` an older release kept
is imported then (agent.registrar.rollout_import).
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

from agent.registrar.registry import Node
from agent.registrar.rollout_sql import EVENT_COLS, Sql, SqliteSql, open_sql
from agent.registrar.sqlite import DB_NAME  # the file the rollouts are in: the registry's

__all__ = ["DB_NAME", "RolloutStore"]

FINAL = ("committed", "skipped", "blocked", "failed")
NODE_COLS = "node_id, batch, position, role, state, upgrade_id, reason, retry, updated_at, claimed_by, driven_by"


class RolloutStore:
    def __init__(self, state_dir: Path | None = None, *, sql: Sql | None = None) -> None:
        """``RolloutStore(state_dir)``: the state directory's registry.sqlite; ``sql=`` any place rollout_sql opens."""
        if sql is None:
            assert state_dir is not None
            sql = SqliteSql(state_dir / DB_NAME)
        self.sql = sql

    @classmethod
    def beside(cls, url: str | None, state_dir: Path) -> RolloutStore:
        """The rollouts of the registry ``url`` names (None: ``state_dir``'s SQLite)."""
        return cls(sql=open_sql(url, state_dir))

    def close(self) -> None:
        self.sql.close()

    def create(
        self,
        bundle: str,
        selector: dict[str, str],
        batches: list[list[Node]],
        *,
        force: bool,
        batch_size: int,
        canary: int,
        driver: str = "",
    ) -> str:
        """Record a rollout; ``driver='replicas'`` hands it to the serving replicas (state running)."""
        rid = "r-" + uuid.uuid4().hex[:10]
        now = time.time()
        state = "running" if driver else "created"
        with self.sql.transaction():
            self.sql.run(
                "INSERT INTO rollouts (id, bundle, selector, force, batch_size, canary, state, reason, created_at,"
                " updated_at, kind, version, driver) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (rid, bundle, json.dumps(selector, sort_keys=True), int(force), batch_size, canary, state, "",
                 now, now, "", "", driver),
            )  # fmt: skip
            pos = 0
            for b, batch in enumerate(batches):
                for n in batch:
                    self.sql.run(
                        "INSERT INTO rollout_nodes (rollout_id, node_id, batch, position, role, state, upgrade_id,"
                        " reason, updated_at) VALUES (?,?,?,?,?,?,?,?,?)",
                        (rid, n.node_id, b, pos, n.role or "", "pending", "", "", now),
                    )
                    pos += 1
            detail = (
                f"bundle {bundle}" + (" with force" if force else "") + (f", driven by the {driver}" if driver else "")
            )
            self._event(rid, now, "", "created", detail)
        return rid

    def get(self, rid: str) -> dict[str, Any] | None:
        found = self.sql.rows(
            "SELECT id, bundle, selector, force, batch_size, canary, state, reason, created_at, updated_at, kind,"
            " version, driver FROM rollouts WHERE id=?",
            (rid,),
        )
        if not found:
            return None
        doc = found[0]
        doc["selector"] = json.loads(doc["selector"])
        doc["force"] = bool(doc["force"])
        doc["nodes"] = [
            {**r, "retry": bool(r["retry"])}
            for r in self.sql.rows(
                f"SELECT {NODE_COLS} FROM rollout_nodes WHERE rollout_id=? ORDER BY position",  # noqa: S608
                (rid,),
            )
        ]
        counts: dict[str, int] = {}
        for n in doc["nodes"]:
            counts[n["state"]] = counts.get(n["state"], 0) + 1
        doc["counts"] = counts
        doc["events"] = self.sql.rows(
            "SELECT at, node_id, event, detail FROM rollout_events WHERE rollout_id=? ORDER BY seq", (rid,)
        )
        return doc

    def running_on_replicas(self) -> list[str]:
        """The rollouts the serving replicas drive now, oldest first."""
        rows = self.sql.rows("SELECT id FROM rollouts WHERE driver='replicas' AND state='running' ORDER BY created_at")
        return [r["id"] for r in rows]

    def list(self) -> list[dict[str, Any]]:
        ids = [r["id"] for r in self.sql.rows("SELECT id FROM rollouts ORDER BY created_at DESC")]
        return [d for d in (self.get(i) for i in ids) if d is not None]

    def set_state(self, rid: str, state: str, reason: str = "") -> None:
        self.sql.run(
            "UPDATE rollouts SET state=?, reason=?, updated_at=? WHERE id=?", (state, reason, time.time(), rid)
        )

    def pause(self, rid: str, reason: str) -> bool:
        """Pause a running rollout (the first failure seen by any replica); False when it was not running."""
        return self._end_run(rid, "paused", reason)

    def finish(self, rid: str, reason: str) -> bool:
        """Mark a running rollout done (every node final); False when another replica did first."""
        return self._end_run(rid, "done", reason)

    def _end_run(self, rid: str, state: str, reason: str) -> bool:
        sql = "UPDATE rollouts SET state=?, reason=?, updated_at=? WHERE id=? AND state='running'"
        return self.sql.run(sql, (state, reason, time.time(), rid)) == 1

    def set_target(self, rid: str, kind: str, version: str) -> None:
        """What the bundle is, as the first box to read its manifest reported it."""
        self.sql.run("UPDATE rollouts SET kind=?, version=? WHERE id=? AND version=''", (kind, version, rid))

    def set_node(
        self, rid: str, node_id: str, state: str, upgrade_id: str = "", reason: str = "", by: str = ""
    ) -> None:
        """A node's progress; a final state releases its claim and names who recorded it."""
        final = state in FINAL
        self.sql.run(
            "UPDATE rollout_nodes SET state=?, upgrade_id=?, reason=?, updated_at=?,"
            " claimed_until=CASE WHEN ? THEN 0 ELSE claimed_until END,"
            " driven_by=CASE WHEN ? THEN ? ELSE driven_by END WHERE rollout_id=? AND node_id=?",
            (state, upgrade_id, reason, time.time(), final, final, by, rid, node_id),
        )

    def claim(self, rid: str, node_id: str, me: str, ttl: float, now: float) -> bool:
        """Drive ``node_id`` (or keep driving it) for ``ttl`` s: True when it was unclaimed, its claim had
        run out (a replica killed while driving it), or ``me`` held it; only while it is not final."""
        return (
            self.sql.run(
                "UPDATE rollout_nodes SET claimed_by=?, claimed_until=? WHERE rollout_id=? AND node_id=?"
                " AND state IN ('pending', 'running') AND (claimed_by='' OR claimed_by=? OR claimed_until<?)",
                (me, now + ttl, rid, node_id, me, now),
            )
            == 1
        )

    def retry_node(self, rid: str, node_id: str, detail: str) -> None:
        """The operator's explicit ``--retry NODE``: pending again, sent with force, and written down."""
        now = time.time()
        with self.sql.transaction():
            self.sql.run(
                "UPDATE rollout_nodes SET state='pending', upgrade_id='', reason='', retry=1, updated_at=?,"
                " claimed_by='', claimed_until=0 WHERE rollout_id=? AND node_id=?",
                (now, rid, node_id),
            )
            self._event(rid, now, node_id, "retry", detail)

    def event(self, rid: str, event: str, detail: str = "", node_id: str = "") -> None:
        self._event(rid, time.time(), node_id, event, detail)

    def _event(self, rid: str, at: float, node_id: str, event: str, detail: str) -> None:
        self.sql.run(
            f"INSERT INTO rollout_events ({EVENT_COLS}) VALUES (?,?,?,?,?)",  # noqa: S608
            (rid, at, node_id, event, detail),
        )
