"""The versions directory: side-by-side agent versions, the switch, commit and rollback.

STANDARD LIBRARY ONLY (the launcher imports it before any venv is trusted).

Layout under ``/var/lib/edge-agent/versions``::

    <version>/venv/bin/agentd     one complete environment per version
    current -> <version>          what the launcher runs; changed by ONE atomic symlink rename
    launch.json                   the trial of a candidate, failure counts, the last rollback

The factory venv (``/opt/edge-agent/venv``, baked into the image) is used when
``current`` is missing or broken, and is where a rollback lands when there was
no earlier version. Every step is ordered so that a SIGKILL anywhere leaves
the box on the old or the new version:

switch:   (1) launch.json gets the trial  (2) current -> new
          killed after (1): current still names the old version, so the
          launcher drops the trial and runs the old one.
rollback: (1) trial marked rolling_back, failure counted  (2) current -> previous
          (3) trial cleared, last_rollback recorded
          killed after (1) or (2): the launcher finishes the rollback.
commit:   one write of launch.json (trial cleared, committed recorded).

Deadlines (see :mod:`agent.upgrade.clock`): a trial keeps ``boot_id`` and
``boot_deadline``, a CLOCK_BOOTTIME value of that boot, so a wall-clock step
neither rolls back a healthy candidate nor extends a real deadline. A trial
recorded in another boot (the box rebooted during the trial) gets its whole
``deadline_s`` again from the first start after the reboot; ``max_starts``
still bounds a candidate that keeps the box rebooting. A trial in the old
wall-clock form (no ``boot_deadline``: written by an older agent or launcher)
keeps what was left of its wall-clock budget, at most ``deadline_s``, and is
rewritten in the new form at the next start. ``switched_at`` stays wall time,
for people and for older launchers.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from agent.fsio import atomic_symlink, atomic_write_json
from agent.upgrade.clock import Clock, SystemClock

STATE_NAME = "launch.json"
CURRENT = "current"
STAGED_MARKER = ".staged"  # written last by staging: a version without it is half-installed
FACTORY = "factory"
BLOCK_AFTER_FAILURES = 1  # one failed trial blocks the version (agent.upgrade.blocks)
DEFAULT_MAX_STARTS = 3
_VERSION_DIR = re.compile(r"^v?[0-9][A-Za-z0-9.+_-]*$")  # the manifest's version alphabet


@dataclass(frozen=True)
class Trial:
    version: str
    previous: str | None  # None: the factory venv
    switched_at: float  # wall time, for display only
    deadline_s: float
    max_starts: int
    starts: int = 0
    upgrade_id: str = ""
    rolling_back: bool = False
    reason: str = ""
    boot_id: str = ""  # the boot boot_deadline belongs to
    boot_deadline: float | None = None  # CLOCK_BOOTTIME; None: the old wall-clock form

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Trial:
        return cls(
            version=str(d["version"]),
            previous=d.get("previous"),
            switched_at=float(d["switched_at"]),
            deadline_s=float(d["deadline_s"]),
            max_starts=int(d.get("max_starts", DEFAULT_MAX_STARTS)),
            starts=int(d.get("starts", 0)),
            upgrade_id=str(d.get("upgrade_id", "")),
            rolling_back=bool(d.get("rolling_back", False)),
            reason=str(d.get("reason", "")),
            boot_id=str(d.get("boot_id", "")),
            boot_deadline=None if d.get("boot_deadline") is None else float(d["boot_deadline"]),
        )

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Launch:
    """What the launcher decided: the agentd to exec, and why."""

    version: str  # a version directory name, or "factory"
    agentd: Path
    note: str
    guard_until: float | None = None  # CLOCK_BOOTTIME: a candidate on trial is rolled back if not committed by then
    trial_starts: int = 0


StepHook = Callable[[str], None]


def _no_hook(step: str) -> None:
    return None


class Slots:
    """``step_hook`` is called after every durable step (named like "switch:1");
    crash tests use it to SIGKILL a process at exactly that point."""

    def __init__(
        self, versions_dir: Path, factory_venv: Path, step_hook: StepHook = _no_hook, clock: Clock | None = None
    ) -> None:
        self.dir = versions_dir
        self.factory_venv = factory_venv
        self.state_file = versions_dir / STATE_NAME
        self.current_link = versions_dir / CURRENT
        self._step = step_hook
        self.clock: Clock = clock or SystemClock()

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Serialise read-modify-write of launch.json between launcher, guard and daemon."""
        self.dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.dir / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    # -- reading -----------------------------------------------------------
    def read(self) -> dict[str, Any]:
        doc: dict[str, Any] = {}
        with contextlib.suppress(FileNotFoundError):
            try:
                loaded = json.loads(self.state_file.read_text())
                doc = loaded if isinstance(loaded, dict) else {}
            except (ValueError, OSError):
                aside = self.state_file.with_name(f"{STATE_NAME}.corrupt-{int(time.time())}")
                with contextlib.suppress(OSError):
                    self.state_file.replace(aside)
        doc.setdefault("schema", 1)
        doc.setdefault("trial", None)
        doc.setdefault("failures", {})
        doc.setdefault("last_rollback", None)
        doc.setdefault("committed", None)
        return doc

    def _write(self, doc: dict[str, Any]) -> None:
        atomic_write_json(self.state_file, doc, mode=0o644)

    def trial(self, doc: dict[str, Any] | None = None) -> Trial | None:
        raw = (doc or self.read()).get("trial")
        if not isinstance(raw, dict):
            return None
        try:
            return Trial.from_json(raw)
        except (KeyError, TypeError, ValueError):
            return None

    # -- deadlines -----------------------------------------------------------
    def armed(self, trial: Trial) -> Trial:
        """The trial with its deadline on this boot's CLOCK_BOOTTIME (see the module doc)."""
        boot = self.clock.boot_id()
        if trial.boot_deadline is not None and trial.boot_id == boot:
            return trial
        if trial.boot_deadline is None:  # the old wall-clock form
            left = min(max(trial.switched_at + trial.deadline_s - self.clock.wall(), 0.0), trial.deadline_s)
        else:  # recorded in another boot: the budget restarts
            left = trial.deadline_s
        return replace(trial, boot_id=boot, boot_deadline=self.clock.boottime() + left)

    def remaining(self, trial: Trial) -> float:
        """Seconds until the trial's deadline (zero or less: past it)."""
        deadline = self.armed(trial).boot_deadline
        assert deadline is not None
        return deadline - self.clock.boottime()

    def current(self) -> str | None:
        try:
            target = os.readlink(self.current_link)
        except OSError:
            return None
        return Path(target).name or None

    def venv(self, version: str | None) -> Path:
        return self.factory_venv if version in (None, FACTORY) else self.dir / str(version) / "venv"

    def agentd(self, version: str | None) -> Path:
        return self.venv(version) / "bin" / "agentd"

    def staged(self, version: str) -> bool:
        return (self.dir / version / STAGED_MARKER).is_file()

    def runnable(self, version: str | None) -> bool:
        if version not in (None, FACTORY) and not self.staged(str(version)):
            return False
        return os.access(self.agentd(version), os.X_OK)

    def installed(self) -> list[str]:
        if not self.dir.is_dir():
            return []
        return sorted(
            p.name for p in self.dir.iterdir() if p.is_dir() and not p.is_symlink() and _VERSION_DIR.match(p.name)
        )

    def failures(self, version: str) -> int:
        return int(self.read()["failures"].get(version, 0))

    def blocked(self, version: str) -> bool:
        return self.failures(version) >= BLOCK_AFTER_FAILURES

    # -- changing ----------------------------------------------------------
    def _switch(
        self,
        version: str,
        *,
        deadline_s: float,
        max_starts: int = DEFAULT_MAX_STARTS,
        upgrade_id: str = "",
    ) -> Trial:
        if not self.runnable(version):
            raise FileNotFoundError(f"{self.agentd(version)}: version {version} is not staged")
        doc = self.read()
        previous = self.current()
        if previous is not None and not self.runnable(previous):
            previous = None
        trial = Trial(
            version=version,
            previous=previous,
            switched_at=self.clock.wall(),
            deadline_s=deadline_s,
            max_starts=max_starts,
            upgrade_id=upgrade_id,
            boot_id=self.clock.boot_id(),
            boot_deadline=self.clock.boottime() + deadline_s,
        )
        doc["trial"] = trial.to_json()
        self._write(doc)  # (1)
        self._step("switch:1")
        atomic_symlink(version, self.current_link)  # (2) the switch
        self._step("switch:2")
        return trial

    def _commit(self, version: str) -> bool:
        doc = self.read()
        trial = self.trial(doc)
        if trial is None or trial.version != version or trial.rolling_back or self.current() != version:
            return False
        doc["trial"] = None
        doc["committed"] = version
        doc["failures"].pop(version, None)
        self._write(doc)
        self._step("commit:1")
        return True

    def _rollback(self, reason: str, *, now: float | None = None) -> Trial | None:
        """Undo the trial (idempotent: finishes an interrupted rollback)."""
        doc = self.read()
        trial = self.trial(doc)
        if trial is None:
            return None
        if not trial.rolling_back:
            trial = Trial(**{**trial.to_json(), "rolling_back": True, "reason": reason})
            doc["trial"] = trial.to_json()
            doc["failures"][trial.version] = int(doc["failures"].get(trial.version, 0)) + 1
            self._write(doc)  # (1)
            self._step("rollback:1")
        if trial.previous is not None and self.runnable(trial.previous):
            atomic_symlink(trial.previous, self.current_link)  # (2)
        else:
            with contextlib.suppress(FileNotFoundError):
                self.current_link.unlink()
        self._step("rollback:2")
        doc["trial"] = None
        doc["last_rollback"] = {
            "version": trial.version,
            "to": trial.previous or FACTORY,
            "reason": trial.reason,
            "upgrade_id": trial.upgrade_id,
            "at": self.clock.wall() if now is None else now,
            "failures": doc["failures"][trial.version],
        }
        self._write(doc)  # (3)
        self._step("rollback:3")
        return trial

    def unblock(self, version: str) -> None:
        with self.locked():
            doc = self.read()
            if doc["failures"].pop(version, None) is not None:
                self._write(doc)

    def _abandon_unswitched_trial(self) -> None:
        """A trial whose symlink change never happened (killed between the two steps)."""
        doc = self.read()
        trial = self.trial(doc)
        if trial is not None and not trial.rolling_back and self.current() != trial.version:
            doc["trial"] = None
            self._write(doc)

    # -- the launcher's decision ---------------------------------------------
    def _choose(self) -> Launch:
        trial = self.trial()
        if trial is not None and trial.rolling_back:
            self._rollback(trial.reason)
            trial = None
        elif trial is not None and self.current() != trial.version:
            self._abandon_unswitched_trial()
            trial = None
        if trial is not None:
            trial = self.armed(trial)
            reason = ""
            if self.remaining(trial) <= 0:
                reason = f"version {trial.version} did not become healthy within {trial.deadline_s:g}s"
            elif trial.starts >= trial.max_starts:
                reason = f"version {trial.version} was started {trial.starts} times without becoming healthy"
            elif not self.runnable(trial.version):
                reason = f"version {trial.version} has no runnable {self.agentd(trial.version)}"
            if reason:
                self._rollback(reason)
            else:
                doc = self.read()
                bumped = Trial(**{**trial.to_json(), "starts": trial.starts + 1})
                doc["trial"] = bumped.to_json()
                self._write(doc)
                return Launch(
                    trial.version,
                    self.agentd(trial.version),
                    f"trying candidate {trial.version} (start {bumped.starts}/{trial.max_starts})",
                    guard_until=trial.boot_deadline,
                    trial_starts=bumped.starts,
                )
        current = self.current()
        if current is not None and self.runnable(current):
            return Launch(current, self.agentd(current), f"running committed version {current}")
        note = (
            f"version {current} is not runnable; " if current is not None else "no version installed; "
        ) + f"running the factory version at {self.factory_venv}"
        return Launch(FACTORY, self.agentd(FACTORY), note)

    # -- locked entry points ---------------------------------------------------
    def switch(
        self,
        version: str,
        *,
        deadline_s: float,
        max_starts: int = DEFAULT_MAX_STARTS,
        upgrade_id: str = "",
    ) -> Trial:
        with self.locked():
            return self._switch(version, deadline_s=deadline_s, max_starts=max_starts, upgrade_id=upgrade_id)

    def commit(self, version: str) -> bool:
        with self.locked():
            return self._commit(version)

    def rollback(self, reason: str, *, now: float | None = None) -> Trial | None:
        with self.locked():
            return self._rollback(reason, now=now)

    def rollback_if(self, version: str, starts: int, reason: str) -> bool:
        """Roll back only if this exact trial start is still undecided (the deadline guard)."""
        with self.locked():
            trial = self.trial()
            if trial is None or trial.version != version or trial.starts != starts:
                return False
            self._rollback(reason)
            return True

    def choose(self) -> Launch:
        with self.locked():
            return self._choose()
