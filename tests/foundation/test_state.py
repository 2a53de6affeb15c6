"""Atomic writes and the versioned state file, including SIGKILL in the middle of writes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent.fsio import atomic_write, remove_stale_temps
from agent.state import SCHEMA, StateStore, migrate

WRITER = """
import sys
from pathlib import Path
from agent.state import StateStore
store = StateStore(Path(sys.argv[1]))
store.load()
n = store.get("counter").get("n", 0)
blob = "x" * 200_000
print("go", flush=True)
while True:
    n += 1
    store.put("counter", {"n": n, "blob": blob, "check": n * 7})
"""


def test_atomic_write_sets_mode_before_rename_and_skips_identical(tmp_path: Path) -> None:
    f = tmp_path / "d/key.pem"
    assert atomic_write(f, b"secret", mode=0o600) is True
    assert f.stat().st_mode & 0o777 == 0o600
    mtime = f.stat().st_mtime_ns
    time.sleep(0.01)
    assert atomic_write(f, b"secret", mode=0o600) is False
    assert f.stat().st_mtime_ns == mtime
    assert atomic_write(f, b"secret", mode=0o640) is True
    assert f.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in f.parent.iterdir()] == ["key.pem"]


@pytest.mark.slow
def test_sigkill_during_state_writes_never_leaves_a_partial_file(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    seen = 0
    for i in range(25):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE)
        assert proc.stdout is not None
        proc.stdout.readline()
        time.sleep(0.02 + (i % 5) * 0.013)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        doc = json.loads(path.read_text())  # never partial: always parses
        counter = doc["sections"]["counter"]
        assert counter["check"] == counter["n"] * 7 and len(counter["blob"]) == 200_000
        assert counter["n"] >= seen
        seen = counter["n"]
        remove_stale_temps(tmp_path)
    assert seen > 25
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_corrupt_state_is_set_aside_and_reported(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text('{"schema": 1, "sections": {"fleet": ')
    store = StateStore(path)
    store.load()
    assert store.problem and "unreadable" in store.problem
    assert store.get("fleet") == {}
    aside = list(tmp_path.glob("state.json.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_text().startswith('{"schema": 1')


@pytest.mark.parametrize(
    "raw",
    [b"\xff\xfe\x00garbage", b'{"sections": {}}', b'{"schema": 0, "sections": {}}', b"[1, 2]", b""],
    ids=["not-utf8", "no-schema", "schema-0", "not-an-object", "empty"],
)
def test_any_corrupt_state_is_set_aside_never_fatal(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(raw)
    store = StateStore(path)
    store.load()
    assert store.problem and not path.exists()
    store.put("fleet", {"ok": True})
    assert json.loads(path.read_text())["sections"]["fleet"] == {"ok": True}


def test_state_from_a_newer_agent_is_not_trusted(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text(json.dumps({"schema": SCHEMA + 1, "sections": {}}))
    store = StateStore(path)
    store.load()
    assert store.problem and "newer" in store.problem


def test_migration_hook_runs_in_order() -> None:
    migrations = {
        1: lambda d: {**d, "sections": {**d["sections"], "a": {"v": 2}}},
        2: lambda d: {**d, "sections": {**d["sections"], "b": {"from": d["sections"]["a"]["v"]}}},
    }
    out = migrate({"schema": 1, "sections": {}}, schema=3, migrations=migrations)
    assert out == {"schema": 3, "sections": {"a": {"v": 2}, "b": {"from": 2}}}


def test_staged_file_is_all_or_nothing(tmp_path: Path) -> None:
    from agent.fsio import StagedFile, sha256_file

    dest = tmp_path / "bin/k3s"
    dest.parent.mkdir()
    dest.write_bytes(b"old")
    with pytest.raises(RuntimeError), StagedFile(dest) as staged:
        staged.write(b"new-but-")
        raise RuntimeError("download dropped")
    assert dest.read_bytes() == b"old" and sorted(p.name for p in dest.parent.iterdir()) == ["k3s"]
    with StagedFile(dest) as staged:
        staged.write(b"new")
        digest = staged.finish()
        staged.commit(0o755)
    assert dest.read_bytes() == b"new" and dest.stat().st_mode & 0o777 == 0o755
    assert digest == sha256_file(dest)
