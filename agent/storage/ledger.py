"""What the agent is about to write, or wrote, to each namespace: /var/lib/edge-agent/storage.json.

An entry is written (atomically) *before* each destructive command, holding the
UUID the command will give the PV or filesystem. After a SIGKILL the next start
finds either a blank device, or a signature carrying that UUID (ours, finish the
job), or the complete one. A signature with another UUID is never ours.
"""

from __future__ import annotations

import json
import secrets
import string
from dataclasses import asdict, dataclass
from pathlib import Path

from agent.fsio import atomic_write_json

SCHEMA = 1
_ALNUM = string.ascii_letters + string.digits


@dataclass(frozen=True)
class Entry:
    device: str
    serial: str
    nsid: int
    uuid: str
    target: str = ""


def new_lvm_uuid() -> str:
    """An LVM UUID: 32 characters [A-Za-z0-9] grouped 6-4-4-4-4-4-6."""
    raw = "".join(secrets.choice(_ALNUM) for _ in range(32))
    cuts = (6, 4, 4, 4, 4, 4, 6)
    out, i = [], 0
    for n in cuts:
        out.append(raw[i : i + n])
        i += n
    return "-".join(out)


class Ledger:
    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, Entry]:
        try:
            doc = json.loads(self.path.read_text())
            return {k: Entry(**v) for k, v in doc.get("namespaces", {}).items()}
        except FileNotFoundError:
            return {}
        except (ValueError, TypeError, AttributeError):
            return {}  # unreadable: nothing is ours by UUID; complete ones are still known by signature

    def record(self, key: str, entry: Entry) -> None:
        entries = self.load()
        entries[key] = entry
        atomic_write_json(self.path, {"schema": SCHEMA, "namespaces": {k: asdict(v) for k, v in entries.items()}})
