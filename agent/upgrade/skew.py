"""k3s/k0s version-skew rules (shared/contracts/k3s-k0s.md A7, B5), checked before anything changes.

- never downgrade;
- never skip a minor (one minor at a time, same major);
- servers before agents: an agent is never newer than any server;
- HA servers stay within one minor of each other.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from agent.errors import AlreadyInstalled, SkewError

_V = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)(?:[-+]([A-Za-z0-9.+-]*))?$")


@dataclass(frozen=True, order=True)
class KubeVersion:
    major: int
    minor: int
    patch: int
    build: int  # k3s1 -> 1, k0s.2 -> 2 (the distribution's own release of that Kubernetes patch)
    text: str

    @classmethod
    def parse(cls, text: str) -> KubeVersion:
        m = _V.match(text.strip())
        if m is None:
            raise ValueError(f"{text!r} is not a Kubernetes version like v1.33.1+k3s1")
        digits = re.findall(r"\d+", m.group(4) or "")
        build = int(digits[-1]) if digits and not (m.group(4) or "").endswith(("k0s", "k3s")) else 0
        return cls(int(m.group(1)), int(m.group(2)), int(m.group(3)), build, text.strip())

    @property
    def kube(self) -> tuple[int, int, int]:
        return (self.major, self.minor, self.patch)

    @property
    def minor_text(self) -> str:
        return f"v{self.major}.{self.minor}"

    def __str__(self) -> str:
        return self.text


def check_upgrade(
    current: KubeVersion,
    new: KubeVersion,
    *,
    role: str,
    servers: Sequence[KubeVersion],
) -> None:
    """Raise SkewError saying which rule refuses ``current -> new`` on a node of ``role``.

    ``servers`` are the versions of the cluster's servers other than this node
    (for an agent: all servers; must not be empty for an agent).
    """
    if (new.kube, new.build) == (current.kube, current.build):
        raise AlreadyInstalled(f"{new} is already installed")
    if (new.kube, new.build) < (current.kube, current.build):
        raise SkewError(f"{current} -> {new} is a downgrade; downgrades are not supported")
    if new.major != current.major or new.minor > current.minor + 1:
        raise SkewError(
            f"{current} -> {new} skips a minor version; upgrade one minor at a time "
            f"(next: v{current.major}.{current.minor + 1}.x)"
        )
    if role == "agent":
        if not servers:
            raise SkewError(
                f"cannot tell the servers' versions, so cannot be sure {new} is not newer than them; "
                "upgrade the servers first and retry when they are reachable"
            )
        oldest = min(servers)
        if new.kube > oldest.kube:
            raise SkewError(
                f"agents are never newer than servers: a server runs {oldest}, older than {new}; "
                "upgrade the servers first"
            )
    else:
        for s in servers:
            if new.major != s.major or abs(new.minor - s.minor) > 1:
                raise SkewError(
                    f"servers must stay within one minor of each other: another server runs {s}; "
                    f"bring it to {current.minor_text} first"
                )


def upgrade_problem(installed: str, candidate: str) -> str | None:
    """Why putting ``candidate`` in place of ``installed`` on this node breaks the skew rules, or None
    (for the runtime's installer, which knows no other nodes; unparsable versions are not judged)."""
    try:
        old, new = KubeVersion.parse(installed), KubeVersion.parse(candidate)
        check_upgrade(old, new, role="server", servers=())
    except AlreadyInstalled:
        return None
    except SkewError as exc:
        return str(exc)
    except ValueError:  # a version that does not parse
        return None
    return None
