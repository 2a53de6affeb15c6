"""The identity guard's file of a registrar before schema 5 (``<state-dir>/identity-guard.sqlite``, one per
replica), handed to the registry once: its instances and DuplicateIdentity flags are copied in (what the
registry has already is kept), then the file is renamed ``identity-guard.sqlite.imported`` (kept, never
deleted; agent.registrar.dbfile.retire). Reads that file; writes the registry (``Registry.adopt_instances``)
and renames the file.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from agent.errors import StateError
from agent.registrar.dbfile import retire
from agent.registrar.duplicates import LEGACY_DB, Duplicate
from agent.registrar.registry import Registry

log = logging.getLogger("edge-registrar.identity")


def adopt_legacy_guard(registry: Registry, state_dir: Path) -> bool:
    """Copy ``state_dir``'s old guard file into ``registry`` and rename it; False when there is none."""
    path = state_dir / LEGACY_DB
    if not path.is_file():
        return False
    try:
        db = sqlite3.connect(path)  # read-write, so what its write-ahead log holds is read too
        try:
            seen = [(str(n), str(i), float(f), float(last)) for n, i, f, last in db.execute(
                "SELECT node_id, instance, first_seen, last_seen FROM instances")]  # fmt: skip
            current = [(str(n), str(i)) for n, i in db.execute("SELECT node_id, instance FROM latest")]
            flags = [Duplicate(str(n), str(o), str(s), float(at)) for n, o, s, at in db.execute(
                "SELECT node_id, original, second, flagged_at FROM duplicates")]  # fmt: skip
        finally:
            db.close()
    except sqlite3.Error as exc:
        raise StateError(
            f"{path}: identity guard of an older registrar unreadable ({exc}); expected its tables instances, latest "
            f"and duplicates; move it aside to start without what it remembered"
        ) from exc
    registry.adopt_instances(seen, current, flags)
    try:
        target = retire(path)
    except OSError as exc:  # adopted already (copied again harmlessly at the next open): said, not raised
        log.warning("%s: adopted into the registry; cannot rename it (%s)", path, exc)
        return True
    log.info("%s: %d instances and %d DuplicateIdentity flags now kept in the registry; the old file is kept as %s",
             path, len(seen), len(flags), target)  # fmt: skip
    return True
