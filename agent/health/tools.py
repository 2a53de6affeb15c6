"""What a failed health tool call means: a condition reason and a message naming the program."""

from __future__ import annotations

from agent.errors import CommandFailed, CommandNotFound, CommandTimeout, ExecError


def tool_failure(exc: ExecError, program: str, what: str, stem: str) -> tuple[str, str]:
    """(reason, message) for a call of ``program`` that raised ``exc`` while reading ``what``;
    reasons are ``stem`` + Missing | Timeout | Failed."""
    if isinstance(exc, CommandNotFound):
        return f"{stem}Missing", f"{program} not found on PATH; {what} cannot be read"
    if isinstance(exc, CommandTimeout):
        return f"{stem}Timeout", f"{program} did not answer within {exc.timeout:g}s reading {what} and was killed"
    if isinstance(exc, CommandFailed):
        tail = exc.stderr_tail.strip().splitlines()[:1] or exc.stdout.strip().splitlines()[:1] or [""]
        return f"{stem}Failed", f"{program} exited {exc.returncode} reading {what}: {tail[0][:200]}"
    return f"{stem}Failed", f"{program} could not run for {what}: {exc}"
