"""The whole exception tree of edge-agent, in one place.

Every error the agent raises on purpose derives from :class:`AgentError`.
Third-party errors (OSError from a write, aiohttp client errors, pydantic
validation errors, cryptography errors) are translated at the boundary that
sees them, with ``raise X(...) from exc``, so callers only ever catch these.

    AgentError
    ├── ConfigError            one or more problems in a config file (file, key path, expected)
    ├── StateError             durable state unreadable or unwritable
    ├── ExecError              a subprocess run through agent.sysexec failed
    │   ├── CommandNotFound    the program is not on the runner's PATH
    │   ├── CommandNotRunnable it exists but the kernel will not run it (ENOEXEC: truncated, wrong arch)
    │   ├── CommandFailed      non-zero exit (argv, exit code, stderr tail)
    │   └── CommandTimeout     did not finish within its timeout; it was killed
    ├── InventoryError         a collector could not run at all
    ├── RuntimeInstallError    k3s/k0s binary or config could not be put in place
    ├── RuntimeRemoveError     k3s/k0s could not be stopped or removed safely (a mount remains, reset refused)
    ├── DownloadError          an http(s) download failed or came short (agent.download)
    ├── FleetError             talking to the registrar
    │   ├── PinMismatch        the registrar's CA does not match the pinned hash
    │   ├── EnrollmentPending  202 + Retry-After: waiting for approval
    │   ├── EnrollmentDenied   401/403: token wrong, expired, used up, or node revoked
    │   └── FleetUnavailable   network error or 5xx: retry later
    └── BundleError            an upgrade bundle was refused (signature, hash, path, arch)
        └── AlreadyCurrent     the box already runs that version (a rollout counts it as done)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class AgentError(Exception):
    """Base of every error edge-agent raises on purpose."""


@dataclass(frozen=True)
class ConfigProblem:
    """One problem in one config source: where, which key, what was expected."""

    source: str
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.source}: {self.key}" if self.key else self.source
        return f"{where}: {self.message}"


class ConfigError(AgentError):
    def __init__(self, problems: Sequence[ConfigProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(str(p) for p in self.problems))


class StateError(AgentError):
    pass


class ExecError(AgentError):
    def __init__(self, argv: Sequence[str], message: str) -> None:
        self.argv = tuple(argv)
        super().__init__(message)


class CommandNotFound(ExecError):
    def __init__(self, argv: Sequence[str]) -> None:
        super().__init__(argv, f"{argv[0]}: command not found")


class CommandNotRunnable(ExecError):
    def __init__(self, argv: Sequence[str], reason: str) -> None:
        self.reason = reason
        super().__init__(argv, f"{argv[0]}: cannot run: {reason}")


class CommandFailed(ExecError):
    def __init__(self, argv: Sequence[str], returncode: int, stdout: str, stderr: str) -> None:
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        tail = stderr.strip().splitlines()[-1:] or [""]
        super().__init__(argv, f"{argv[0]} exited {returncode}: {tail[0][:300]}")

    @property
    def stderr_tail(self) -> str:
        return "\n".join(self.stderr.strip().splitlines()[-5:])


class CommandTimeout(ExecError):
    def __init__(self, argv: Sequence[str], timeout: float) -> None:
        self.timeout = timeout
        super().__init__(argv, f"{argv[0]} did not finish within {timeout:g}s and was killed")


class InventoryError(AgentError):
    pass


class RuntimeInstallError(AgentError):
    pass


class RuntimeRemoveError(AgentError):
    pass


class DownloadError(AgentError):
    pass


class FleetError(AgentError):
    pass


class PinMismatch(FleetError):
    pass


class EnrollmentPending(FleetError):
    def __init__(self, retry_after: float, message: str = "waiting for approval") -> None:
        self.retry_after = retry_after
        super().__init__(message)


class EnrollmentDenied(FleetError):
    pass


class FleetUnavailable(FleetError):
    pass


class BundleError(AgentError):
    pass


class AlreadyCurrent(BundleError):
    pass
