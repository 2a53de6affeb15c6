"""The whole exception tree of edge-agent, in one place.

Every error the agent raises on purpose derives from :class:`AgentError`.
Third-party errors (OSError from a write, aiohttp client errors, pydantic
validation errors, cryptography errors) are translated at the boundary that
sees them, with ``raise X(...) from exc``, so callers only ever catch these.

    AgentError
    ├── ConfigError            one or more problems in a config file (file, key path, expected)
    │   └── NodeNameError      the node name (agent.node_name, else the hostname) is not an RFC 1123 subdomain
    ├── StateError             durable state unreadable or unwritable
    │   └── RegistryUnavailable  the registrar's database cannot be reached now (the server answers 503)
    ├── ExecError              a subprocess run through agent.sysexec failed
    │   ├── CommandNotFound    the program is not on the runner's PATH
    │   ├── CommandNotRunnable it exists but the kernel will not run it (ENOEXEC: truncated, wrong arch)
    │   ├── CommandFailed      non-zero exit (argv, exit code, stderr tail)
    │   └── CommandTimeout     did not finish within its timeout; it was killed
    ├── InventoryError         a collector could not run at all
    │   └── HotplugError       the netlink monitor could not be opened (no permission, no netlink here)
    ├── RuntimeInstallError    k3s/k0s binary or config could not be put in place
    ├── RuntimeRemoveError     k3s/k0s could not be stopped or removed safely (a mount remains, reset refused)
    ├── DownloadError          an http(s) download failed or came short (agent.download)
    ├── FleetError             talking to the registrar
    │   ├── PinMismatch        the registrar's CA does not match the pinned hash
    │   ├── EnrollmentPending  202 + Retry-After: waiting for approval
    │   ├── EnrollmentDenied   401/403: token wrong, expired, used up, or node revoked
    │   ├── FleetUnavailable   network error or 5xx: retry later
    │   ├── NoMachineId        /etc/machine-id is missing or empty (systemd fills it on first boot): wait
    │   └── RegistrarDown      this registrar cannot be reached (refused, timeout, 502-504): another replica may answer
    ├── BundleError            an upgrade bundle was refused (signature, hash, path, arch)
    │   └── AlreadyCurrent     the box already runs that version (a rollout counts it as done)
    ├── UpgradeRefused         a sound bundle or binary that policy refuses (wrong kind, deferred too long)
    │   ├── VersionBlocked     an unforced request for a version that failed on this box
    │   └── SkewError          a downgrade, a skipped minor, a kubelet newer than a server
    │       └── AlreadyInstalled  that exact version is what runs
    ├── UpgradeBusy            another upgrade is in progress (the API answers 409)
    ├── HttpProblem            a handler answers with an RFC 9457 problem document (status, title, detail)
    ├── Unreachable            agentctl: the agent could not be asked or gave no usable answer (exit 2)
    └── RegistrarError         edge-registrar (the fleet side; it imports this module, boxes never import it)
        ├── CaError            the CA files are missing or unusable
        ├── WeakKey            a CSR's public key is not one the registrar certifies
        ├── BadCsr             an EST body that is not a PKCS#10 request with a valid signature
        ├── BadRequirement     a policy/class requirement that cannot be understood (names it, says what was expected)
        ├── RolloutError       a rollout cannot be created or resumed (named why)
        ├── BoxAnswerError     the poll's connection to a box failed, or its answer was not HTTP/1.1 as expected
        └── UsageError         edge-registrar was called with arguments it cannot act on
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent.upgrade.record import UpgradeRecord


class AgentError(Exception):
    """Base of every error edge-agent raises on purpose."""


class ConfigProblem:
    """One problem in one config source: where, which key, what was expected.
    (A plain class: agentctl imports this module, and dataclasses would cost it ~8 ms.)"""

    __slots__ = ("key", "message", "source")

    def __init__(self, source: str, key: str, message: str) -> None:
        self.source, self.key, self.message = source, key, message

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ConfigProblem):
            return NotImplemented
        return (self.source, self.key, self.message) == (other.source, other.key, other.message)

    def __hash__(self) -> int:
        return hash((self.source, self.key, self.message))

    def __repr__(self) -> str:
        return f"ConfigProblem({self.source!r}, {self.key!r}, {self.message!r})"

    def __str__(self) -> str:
        where = f"{self.source}: {self.key}" if self.key else self.source
        return f"{where}: {self.message}"


class ConfigError(AgentError):
    def __init__(self, problems: Sequence[ConfigProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(str(p) for p in self.problems))


class NodeNameError(ConfigError):
    """The node name the kubelet would get (agent.node_name, else the hostname) is not valid."""


class StateError(AgentError):
    pass


class RegistryUnavailable(StateError):
    """The registry's database cannot be reached now; worth retrying later (the server answers 503)."""


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


class HotplugError(InventoryError):
    """The netlink monitor could not be opened (no permission, no netlink in this namespace)."""


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
    """``retry_after``: the seconds the registrar asked for (a 503's or 429's Retry-After), else None."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class NoMachineId(FleetError):
    """/etc/machine-id is missing or empty (systemd fills it on first boot): wait."""


class RegistrarDown(FleetUnavailable):
    """This registrar cannot be reached (or its proxy says it is down): another replica may answer.

    ``reason`` is the short why, e.g. "connection refused", for the status line."""

    def __init__(self, message: str, reason: str, *, retry_after: float | None = None) -> None:
        super().__init__(message, retry_after=retry_after)
        self.reason = reason


class BundleError(AgentError):
    pass


class AlreadyCurrent(BundleError):
    pass


class UpgradeRefused(AgentError):
    """A sound bundle or binary that policy refuses: wrong kind for this box, a blocked version,
    version skew, deferred past its limit. The API answers 422; the runtime shows Installed=False."""


class VersionBlocked(UpgradeRefused):
    """An unforced request for a version that failed on this box."""

    def __init__(self, kind: str, version: str, failures: int) -> None:
        self.kind, self.version, self.failures = kind, version, failures
        times = "once" if failures == 1 else f"{failures} times"
        super().__init__(
            f"{kind} version {version} failed {times} on this box and is blocked; "
            "only a request with force tries it again"
        )


class SkewError(UpgradeRefused):
    """The Kubernetes version skew policy forbids the change (contracts/k3s-k0s.md, skew)."""


class AlreadyInstalled(SkewError):
    """That exact version is what runs."""


class UpgradeBusy(AgentError):
    """Another upgrade is in progress (the API answers 409)."""

    def __init__(self, active: UpgradeRecord, message: str = "") -> None:
        self.active = active
        super().__init__(message or f"upgrade {active.id} is {active.state}; one upgrade at a time")


class HttpProblem(AgentError):
    """Raised by a handler (or a helper it calls) to answer with a problem document;
    the app's middleware turns it into the response (agent.api.http.problem)."""

    def __init__(self, status: int, title: str, detail: str = "", **extra: Any) -> None:
        super().__init__(f"{status} {title}: {detail}")
        self.status, self.title, self.detail, self.extra = status, title, detail, extra


class Unreachable(AgentError):
    """agentctl: the agent could not be asked or gave no usable answer (exit code 2)."""


class RegistrarError(AgentError):
    """Base of the fleet side's own errors (edge-registrar)."""


class CaError(RegistrarError):
    """The CA files are missing or unusable."""


class WeakKey(RegistrarError):
    """A CSR's public key is not one the registrar certifies."""


class BadCsr(RegistrarError):
    """An EST body that is not a base64 DER PKCS#10 request, or whose signature does not verify."""


class BadRequirement(RegistrarError):
    """A requirement that cannot be understood; the message names it and what was expected."""


class RolloutError(RegistrarError):
    """A rollout cannot be created or resumed (named why)."""


class BoxAnswerError(RegistrarError):
    """The fleet poll's connection to a box failed, or the box's answer was not HTTP/1.1 as expected."""


class Abandon(RegistrarError):
    """Raised inside a registry write (agent.registrar.sqlstore): the transaction is rolled back and the
    block left without an error."""


class UsageError(RegistrarError):
    """edge-registrar was called with arguments it cannot act on."""
