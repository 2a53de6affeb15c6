"""Running a tool without an event loop: the one-shot scan's side of the subprocess seam.

:class:`BlockingRunner` runs a program as :class:`agent.sysexec.ProcessRunner` does
(agent.execspec: resolved on its own search path, the same environment and spawn
errors; in a session of its own, the whole process group killed when the timeout
expires) but waits in the calling thread: ``agentctl inventory --local`` runs
nvidia-smi without asyncio. subprocess is imported only when a tool runs: most
boxes have no NVIDIA GPU, and a one-shot scan then starts no process.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence

from agent.errors import CommandFailed, CommandNotFound, CommandTimeout
from agent.execspec import BASE_ENV, DEFAULT_PATH, resolve, spawn_error, tool_env


def tool_path() -> str:
    """The search path agentd gives the tools it runs: its own PATH, else the agent's default."""
    return os.environ.get("PATH", DEFAULT_PATH)


class BlockingRunner:
    def __init__(self, path: str) -> None:
        self.path = path

    def run_blocking(self, argv: Sequence[str], *, timeout: float) -> str:
        """The program's standard output; raises as ProcessRunner.run does (a non-zero exit included)."""
        import signal
        import subprocess

        argv = tuple(argv)
        exe = resolve(argv[0], self.path)
        if exe is None:
            raise CommandNotFound(argv)
        try:
            proc = subprocess.Popen(
                [exe, *argv[1:]],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=tool_env(self.path, BASE_ENV, None),
                start_new_session=True,
            )
        except OSError as exc:
            raise spawn_error(argv, exc) from exc
        with proc:
            try:
                out, err = proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.communicate()  # the group is gone: its pipes close
                raise CommandTimeout(argv, timeout) from None
        stdout = out.decode(errors="replace")
        if proc.returncode != 0:
            raise CommandFailed(argv, proc.returncode, stdout, err.decode(errors="replace"))
        return stdout
