"""Turn a unit's log into a reason a technician can act on (pure).

The last line that explains why k3s/k0s is not up wins: a join error (bad
token, CA hash mismatch, unreachable server, node password rejected), a
fatal start error, or k0s's bootstrap failure. Secrets are masked.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

_MSG = re.compile(r'\bmsg=("(?:[^"\\]|\\.)*"|\S+)')

# (reason, what to do), matched in order against the line's message
RULES: tuple[tuple[str, str, str], ...] = (
    ("token CA hash does not match", "TokenCAHashMismatch", "the join token belongs to another cluster's CA"),
    ("Node password rejected", "NodePasswordRejected", "delete the old node from the cluster, or use a new name"),
    ("401 Unauthorized", "TokenRejected", "the server refused the join token"),
    ("not authorized", "TokenRejected", "the server refused the join token"),
    ("wrong token type", "TokenRejected", "the join token is for another role"),
    ("token file", "TokenMissing", "the join token is missing or empty"),
    ("failed to decode join token", "TokenRejected", "the join token is not a k0s token"),
    ("Waiting to retrieve agent configuration", "ServerUnreachable", "cannot reach the server to join"),
    ("failed to bootstrap kubelet client configuration", "JoinFailed", "the worker could not join"),
    ("failed to join controller", "JoinFailed", "the controller could not join"),
    ("labels specified with --node-labels", "InvalidNodeLabels", "a node label is refused by the kubelet"),
    ("must run as root", "NotRoot", "the service does not run as root"),
    ("must be run as root", "NotRoot", "the service does not run as root"),
    ("requires additional privilege", "NotRoot", "the service does not run as root"),
    ("level=fatal", "StartFailed", "the service exits at start"),
    ("Error:", "StartFailed", "the service exits at start"),
)


@dataclass(frozen=True)
class Diagnosis:
    reason: str
    message: str


def message_of(line: str) -> str:
    m = _MSG.search(line)
    if not m:
        return line.strip()
    raw = m.group(1)
    if raw.startswith('"'):
        try:
            return str(json.loads(raw))
        except ValueError:
            return raw.strip('"')
    return raw


def mask(text: str, secrets: Sequence[str]) -> str:
    """``text`` with every (non-empty) secret replaced by <redacted>."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "<redacted>")
    return text


def diagnose(lines: Sequence[str], secrets: Sequence[str] = ()) -> Diagnosis | None:
    """The most recent line that explains a failure, as (reason, message)."""
    for line in reversed(lines):
        for needle, reason, hint in RULES:
            if needle in line:
                text = mask(message_of(line) if "msg=" in line else line.strip(), secrets)
                return Diagnosis(reason, f"{hint}: {text[:400]}")
    return None
