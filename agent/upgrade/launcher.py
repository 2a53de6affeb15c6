"""``agentd-launch``: the small, stable first process of edge-agent.service.

STANDARD LIBRARY ONLY. systemd starts ``/opt/edge-agent/venv/bin/agentd-launch run
...``; the launcher picks the version to run (see :mod:`agent.upgrade.slots`),
counts the start attempts of a candidate, rolls back a candidate that crashed
too often or outlived its health deadline, and ``os.execv``s
``<venv>/bin/agentd run ...`` so systemd's main PID (and sd_notify) stay the
same. For a candidate it leaves behind one detached guard process that rolls
back and stops the candidate if it has not been committed by the deadline;
systemd's ``Restart=`` then brings the previous version up. The deadline is on
CLOCK_BOOTTIME (:mod:`agent.upgrade.clock`): an NTP step does not move it.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

from agent.paths import Paths
from agent.upgrade.clock import BOOT_ID, SystemClock
from agent.upgrade.slots import FACTORY, Launch, Slots

FACTORY_VENV = "/opt/edge-agent/venv"
SLOT_ENV = "EDGE_AGENT_SLOT"
STOP_GRACE = 10.0


def _say(msg: str) -> None:
    print(f"agentd-launch: {msg}", file=sys.stderr, flush=True)


def root_from(args: list[str]) -> Path:
    for i, a in enumerate(args):
        if a == "--root" and i + 1 < len(args):
            return Path(args[i + 1])
        if a.startswith("--root="):
            return Path(a.split("=", 1)[1])
    return Path("/")


def slots_for(root: Path) -> Slots:
    paths = Paths(root)
    return Slots(paths.versions_dir, paths.under(FACTORY_VENV), clock=SystemClock(paths.under(BOOT_ID)))


def _guard(slots: Slots, launch: Launch, main_pid: int) -> None:
    """Wait for the commit; at the deadline roll back and stop the candidate."""
    assert launch.guard_until is not None
    clock = slots.clock
    while clock.boottime() < launch.guard_until:
        time.sleep(min(0.5, max(0.05, launch.guard_until - clock.boottime())))
        trial = slots.trial()
        if trial is None or trial.version != launch.version or trial.starts != launch.trial_starts:
            return  # committed, rolled back, or a later start took over
    reason = f"version {launch.version} did not become healthy within the deadline"
    if not slots.rollback_if(launch.version, launch.trial_starts, reason):
        return
    _say(f"{reason}: rolled back; stopping pid {main_pid}")
    try:
        os.kill(main_pid, signal.SIGTERM)
        end = time.monotonic() + STOP_GRACE
        while time.monotonic() < end:
            os.kill(main_pid, 0)
            time.sleep(0.1)
        os.kill(main_pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def spawn_guard(slots: Slots, launch: Launch) -> None:
    main_pid = os.getpid()
    pid = os.fork()
    if pid:
        os.waitpid(pid, 0)
        return
    try:  # first child: detach, fork the guard, exit so the guard is not our zombie
        os.setsid()
        if os.fork() == 0:
            os.closerange(3, 1 << 16)
            _guard(slots, launch, main_pid)
    except BaseException as exc:  # the guard must never run the caller's code path
        _say(f"deadline guard failed: {exc}")
    finally:
        os._exit(0)


def _exec(agentd: Path, args: list[str], env: dict[str, str]) -> OSError:
    """Replace this process (same PID for systemd); returns only on failure."""
    try:
        os.execve(agentd, [str(agentd), *args], env)  # noqa: S606 - exec is the point
    except OSError as exc:
        return exc


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv) or ["run"]
    slots = slots_for(root_from(args))
    env = dict(os.environ)
    for _ in range(4):
        try:
            launch = slots.choose()
        except OSError as exc:
            _say(f"cannot read or update {slots.dir} ({exc}); running the factory version")
            launch = Launch(FACTORY, slots.agentd(FACTORY), "factory fallback")
        _say(launch.note)
        if launch.guard_until is not None:
            spawn_guard(slots, launch)
        env[SLOT_ENV] = launch.version
        err = _exec(launch.agentd, args, env)
        _say(f"cannot execute {launch.agentd}: {err}")
        if launch.guard_until is not None:
            slots.rollback_if(launch.version, launch.trial_starts, f"cannot execute {launch.agentd}: {err}")
            continue  # the next choice is the previous version
        if launch.version != FACTORY:
            env[SLOT_ENV] = FACTORY
            err = _exec(slots.agentd(FACTORY), args, env)
            _say(f"cannot execute the factory version {slots.agentd(FACTORY)}: {err}")
        return 127
    return 127


if __name__ == "__main__":
    sys.exit(main())
