"""The one subprocess seam.

k3s, k0s, systemctl, nvidia-smi and every other program the agent runs go
through a :class:`Runner`. The production runner resolves programs on its own
``PATH`` (so tests put stand-in programs first on it and exercise real
processes), always applies a timeout, kills the whole process group when the
timeout expires, and raises errors that carry argv, exit code and stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from agent.errors import CommandFailed, CommandNotFound, CommandTimeout
from agent.execspec import BASE_ENV, DEFAULT_PATH, resolve, spawn_error, tool_env

__all__ = ["DEFAULT_PATH", "Completed", "ProcessRunner", "Runner"]


@dataclass(frozen=True)
class Completed:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


class Runner(Protocol):
    def which(self, program: str) -> str | None: ...

    async def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float,
        env: Mapping[str, str] | None = None,
        stdin: bytes | None = None,
        check: bool = True,
    ) -> Completed: ...


@dataclass
class ProcessRunner:
    """Runs real programs. ``path`` is the search path; ``base_env`` the environment they get."""

    path: str = DEFAULT_PATH
    base_env: Mapping[str, str] = field(default_factory=lambda: dict(BASE_ENV))

    def which(self, program: str) -> str | None:
        return resolve(program, self.path)

    async def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float,
        env: Mapping[str, str] | None = None,
        stdin: bytes | None = None,
        check: bool = True,
    ) -> Completed:
        argv = tuple(argv)
        exe = self.which(argv[0])
        if exe is None:
            raise CommandNotFound(argv)
        full_env = tool_env(self.path, self.base_env, env)
        try:
            proc = await asyncio.create_subprocess_exec(
                exe,
                *argv[1:],
                stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=full_env,
                start_new_session=True,
            )
        except OSError as exc:
            raise spawn_error(argv, exc) from exc
        try:
            out, err = await asyncio.wait_for(proc.communicate(stdin), timeout)
        except (TimeoutError, asyncio.CancelledError):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(Exception):
                await asyncio.shield(proc.wait())
            if asyncio.current_task() is not None and asyncio.current_task().cancelling():  # type: ignore[union-attr]
                raise
            raise CommandTimeout(argv, timeout) from None
        result = Completed(argv, proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace"))
        if check and result.returncode != 0:
            raise CommandFailed(argv, result.returncode, result.stdout, result.stderr)
        return result
