"""What `agentctl doctor` found: one finding per check, its fix, and the stable JSON schema.

A finding never carries a secret: checks put paths, pins (hashes of public
certificates), unit names and states in messages, never token or key bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Status = Literal["ok", "warn", "fail", "skip"]
SCHEMA_ID = "edge-agent.doctor/v1"
EXIT_FOR = {"ok": 0, "skip": 0, "warn": 1, "fail": 2}


@dataclass(frozen=True)
class Finding:
    check: str  # stable dotted id, e.g. "registrar.tcp"
    status: Status
    message: str
    fix: str = ""
    path: str = ""  # the file or directory the finding is about, when there is one

    def as_json(self) -> dict[str, str]:
        return {"check": self.check, "status": self.status, "message": self.message, "fix": self.fix,
                "path": self.path}  # fmt: skip


def exit_code(findings: list[Finding]) -> int:
    return max((EXIT_FOR[f.status] for f in findings), default=0)


def overall(findings: list[Finding]) -> str:
    return {0: "ok", 1: "warn", 2: "fail"}[exit_code(findings)]


def document(findings: list[Finding], root: str) -> dict[str, Any]:
    return {
        "schema": SCHEMA_ID,
        "root": root,
        "result": overall(findings),
        "exit_code": exit_code(findings),
        "findings": [f.as_json() for f in findings],
    }


MARK = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL", "skip": "skip"}


def render_text(findings: list[Finding]) -> str:
    out = []
    for f in findings:
        line = f"{MARK[f.status]} {f.check:<18} {f.message}"
        out.append(line)
        if f.fix and f.status in ("warn", "fail"):
            out.append(f"     {'':<18} fix: {f.fix}")
    counts = {s: sum(1 for f in findings if f.status == s) for s in ("fail", "warn", "ok", "skip")}
    out.append(f"result: {overall(findings)} ({', '.join(f'{n} {s}' for s, n in counts.items())})")
    return "\n".join(out) + "\n"


# The JSON document `agentctl doctor -o json` prints (docs/technician.md shows it; a test validates against it).
JSON_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": SCHEMA_ID,
    "type": "object",
    "additionalProperties": False,
    "required": ["schema", "root", "result", "exit_code", "findings"],
    "properties": {
        "schema": {"const": SCHEMA_ID},
        "root": {"type": "string"},
        "result": {"enum": ["ok", "warn", "fail"]},
        "exit_code": {"enum": [0, 1, 2]},
        "findings": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["check", "status", "message", "fix", "path"],
                "properties": {
                    "check": {"type": "string", "pattern": "^[a-z0-9_]+(\\.[a-z0-9_]+)*$"},
                    "status": {"enum": ["ok", "warn", "fail", "skip"]},
                    "message": {"type": "string", "minLength": 1},
                    "fix": {"type": "string"},
                    "path": {"type": "string"},
                },
            },
        },
    },
}
