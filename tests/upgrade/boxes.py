"""A scratch box for launcher tests: fake agent versions as tiny executables, and a
stand-in for systemd's ``Restart=always`` that keeps ``agentd-launch run`` running.

A fake ``agentd`` records its start, then (mode ``good``) commits itself, as the
real UpgradeController does once healthy, and serves a one-line "API" on the
box's unix socket that answers with its version. ``crash`` exits at once;
``hang`` serves the API but never commits (it never becomes healthy).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from agent.paths import Paths
from agent.upgrade.launcher import FACTORY_VENV
from agent.upgrade.slots import STAGED_MARKER, Slots

REPO = Path(__file__).resolve().parents[2]

FAKE_AGENTD = """#!{python}
import os, socket, sys
VERSION, MODE, ROOT, REPO = {version!r}, {mode!r}, {root!r}, {repo!r}
with open(os.path.join(ROOT, "starts.log"), "a") as f:
    f.write(f"{{VERSION}} {{os.getpid()}} {{os.environ.get('EDGE_AGENT_SLOT')}} {{' '.join(sys.argv[1:])}}\\n")
if MODE == "crash":
    sys.exit(3)
path = os.path.join(ROOT, "run/edge-agent/agent.sock")
os.makedirs(os.path.dirname(path), exist_ok=True)
try:
    os.unlink(path)
except FileNotFoundError:
    pass
srv = socket.socket(socket.AF_UNIX)
srv.bind(path)
srv.listen(8)
if MODE == "good":
    sys.path.insert(0, REPO)
    from pathlib import Path
    from agent.upgrade.slots import Slots
    Slots(Path(ROOT, "var/lib/edge-agent/versions"), Path(ROOT, "opt/edge-agent/venv")).commit(VERSION)
while True:
    conn, _ = srv.accept()
    conn.sendall(VERSION.encode())
    conn.close()
"""


def slots(root: Path) -> Slots:
    paths = Paths(root)
    return Slots(paths.versions_dir, paths.under(FACTORY_VENV))


def fake_version(root: Path, version: str, mode: str) -> Path:
    """Install a fake agent version ("factory" for the image's venv)."""
    s = slots(root)
    agentd = s.agentd(version)
    agentd.parent.mkdir(parents=True, exist_ok=True)
    agentd.write_text(
        FAKE_AGENTD.format(python=sys.executable, version=version, mode=mode, root=str(root), repo=str(REPO))
    )
    agentd.chmod(0o755)
    if version != "factory":
        (s.dir / version / STAGED_MARKER).write_text("staged\n")
    return agentd


def candidate_on_trial(root: Path, candidate: str, **switch: Any) -> Slots:
    """The factory venv and 1.0 (both good), 1.0 committed, then a switch to 2.0 (``candidate``:
    good, crash or hang) with ``switch`` (deadline_s, max_starts)."""
    for version, mode in (("factory", "good"), ("1.0", "good"), ("2.0", candidate)):
        fake_version(root, version, mode)
    s = slots(root)
    s.switch("1.0", deadline_s=30)
    assert s.commit("1.0")
    s.switch("2.0", **switch)
    return s


def api_version(root: Path, timeout: float = 0.5) -> str | None:
    path = Paths(root).socket
    try:
        with socket.socket(socket.AF_UNIX) as c:
            c.settimeout(timeout)
            c.connect(str(path))
            return c.recv(100).decode()
    except OSError:
        return None


def wait_api(root: Path, want: str, timeout: float) -> float:
    """Seconds until the box's API answers with version ``want``; AssertionError after timeout."""
    t0 = time.monotonic()
    seen: str | None = None
    while time.monotonic() - t0 < timeout:
        seen = api_version(root)
        if seen == want:
            return time.monotonic() - t0
        time.sleep(0.05)
    raise AssertionError(f"box did not answer as {want} within {timeout}s (last answer: {seen})")


def starts(root: Path) -> list[str]:
    log = root / "starts.log"
    return [line.split()[0] for line in log.read_text().splitlines()] if log.exists() else []


class FakeSystemd:
    """``Restart=always`` + ``RestartSec=0.1`` for ``agentd-launch run --root ROOT``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.proc: subprocess.Popen[bytes] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self.log = root / "launcher.log"

    def __enter__(self) -> FakeSystemd:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
        self._thread.join(5)

    def _loop(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        with self.log.open("ab") as log:
            while not self._stop.is_set():
                self.proc = subprocess.Popen(
                    [sys.executable, "-m", "agent.upgrade.launcher", "run", "--root", str(self.root)],
                    stdout=log,
                    stderr=log,
                    stdin=subprocess.DEVNULL,
                    env=env,
                )
                self.proc.wait()
                self._stop.wait(0.1)
