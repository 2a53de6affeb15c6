"""What every runner of the subprocess seam does the same way, with or without an event loop.

:class:`agent.sysexec.ProcessRunner` (asyncio, the daemon) and
:class:`agent.inventory.blockingexec.BlockingRunner` (``agentctl inventory --local``)
both resolve a program here, give it this environment and turn a failed spawn into
the same error. Nothing heavy is imported: the one-shot scan's start-up stays small.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from agent.errors import CommandNotFound, CommandNotRunnable, ExecError

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
BASE_ENV: Mapping[str, str] = {"LC_ALL": "C"}


def resolve(program: str, path: str) -> str | None:
    """The executable ``program`` names: itself when it has a slash, else found on ``path``."""
    if "/" in program:
        return program if os.access(program, os.X_OK) else None
    import shutil  # only when a program runs: a one-shot scan of a box without NVIDIA GPUs runs none

    return shutil.which(program, path=path)


def tool_env(path: str, base_env: Mapping[str, str], env: Mapping[str, str] | None) -> dict[str, str]:
    """The whole environment a program gets: its search path, the runner's base, the call's own."""
    return {"PATH": path, **base_env, **(env or {})}


def spawn_error(argv: Sequence[str], exc: OSError) -> ExecError:
    """A spawn that failed: not there (or not ours to run), or not runnable (ENOEXEC, ETXTBSY ...)."""
    if isinstance(exc, FileNotFoundError | PermissionError):
        return CommandNotFound(tuple(argv))
    return CommandNotRunnable(tuple(argv), exc.strerror or str(exc))
