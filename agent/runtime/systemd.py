"""systemctl and journalctl through the subprocess seam, always with our own timeouts."""

from __future__ import annotations

from dataclasses import dataclass

from agent.errors import CommandFailed
from agent.sysexec import Runner

QUERY_TIMEOUT = 15.0


@dataclass(frozen=True)
class UnitState:
    active: str = "inactive"
    sub: str = "dead"
    main_pid: int = 0
    load: str = "not-found"
    restarts: int = 0

    @property
    def running(self) -> bool:
        return self.active == "active"

    @property
    def starting(self) -> bool:
        return self.active in ("active", "activating", "reloading")


class Systemd:
    def __init__(self, runner: Runner) -> None:
        self.runner = runner

    async def show(self, unit: str) -> UnitState:
        result = await self.runner.run(
            ["systemctl", "show", "-p", "ActiveState,SubState,MainPID,LoadState,NRestarts", f"{unit}.service"],
            timeout=QUERY_TIMEOUT,
        )
        props = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
        return UnitState(
            active=props.get("ActiveState", "inactive"),
            sub=props.get("SubState", "dead"),
            main_pid=int(props.get("MainPID", "0") or 0),
            load=props.get("LoadState", "not-found"),
            restarts=int(props.get("NRestarts", "0") or 0),
        )

    async def daemon_reload(self) -> None:
        await self.runner.run(["systemctl", "daemon-reload"], timeout=QUERY_TIMEOUT)

    async def enable(self, unit: str) -> None:
        await self.runner.run(["systemctl", "enable", f"{unit}.service"], timeout=QUERY_TIMEOUT)

    async def disable(self, unit: str) -> None:
        await self.runner.run(["systemctl", "disable", f"{unit}.service"], timeout=QUERY_TIMEOUT, check=False)

    async def start(self, unit: str, timeout: float) -> None:
        """May block until READY for Type=notify units: raises CommandTimeout after ``timeout``."""
        await self.runner.run(["systemctl", "start", f"{unit}.service"], timeout=timeout)

    async def restart(self, unit: str, timeout: float) -> None:
        await self.runner.run(["systemctl", "restart", f"{unit}.service"], timeout=timeout)

    async def stop(self, unit: str, timeout: float = 120.0) -> None:
        await self.runner.run(["systemctl", "stop", f"{unit}.service"], timeout=timeout)

    async def journal(self, unit: str, lines: int = 50) -> list[str]:
        """The unit's last log lines; [] when the journal cannot be read."""
        try:
            result = await self.runner.run(
                ["journalctl", "-u", f"{unit}.service", "-n", str(lines), "-o", "cat", "--no-pager"],
                timeout=QUERY_TIMEOUT,
            )
        except CommandFailed:
            return []
        return [line for line in result.stdout.splitlines() if line and line != "-- No entries --"]
