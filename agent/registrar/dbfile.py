"""Opening one of the registrar's SQLite files: private to root (0600 before the first byte), WAL, autocommit.

Callers run their own schema or migrations on the connection it returns and wrap sqlite3.Error with
the file's name (StateError), so an operator sees which file is unusable. ``transaction`` is the one
write transaction all of them use; ``retire`` puts aside an older release's file once its rows are in the registry.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path


def open_private(path: Path, *, check_same_thread: bool = True) -> sqlite3.Connection:
    """Create ``path`` 0600 when missing and connect to it in autocommit mode with rows by name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    db = sqlite3.connect(path, timeout=10.0, isolation_level=None, check_same_thread=check_same_thread)
    db.row_factory = sqlite3.Row
    _wal(db)
    db.execute("PRAGMA busy_timeout=10000")
    return db


def _wal(db: sqlite3.Connection, wait: float = 10.0) -> None:
    """Switch to WAL; SQLite answers "locked" at once, without waiting, while another connection opening
    a fresh file does the same, so this waits for it (as busy_timeout does for everything else)."""
    deadline = time.monotonic() + wait
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def retire(path: Path) -> Path:
    """Rename an older release's file whose rows were just taken into the registry (and its WAL files, when
    left) to ``<name>.imported``, never over another: kept, never deleted, no longer read. Raises OSError."""
    target = path.with_name(path.name + ".imported")
    n = 0
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.imported.{n}")
    path.rename(target)
    for suffix in ("-wal", "-shm"):
        companion = path.with_name(path.name + suffix)
        if companion.exists():
            companion.rename(target.with_name(target.name + suffix))
    return target


@contextlib.contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE; COMMIT when the block ends (a return inside it included), ROLLBACK on any exception."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:  # SQLite itself ends the transaction on some errors
            db.execute("ROLLBACK")
        raise
