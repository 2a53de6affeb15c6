"""A tiny, deterministic YAML writer for the flat documents k3s and k0s read.

Strings are written JSON-quoted (valid YAML double-quoted scalars), so no
value can change meaning (``yes``, ``0600``, ``1.30``). Output for the same
input is byte-for-byte the same; that keeps reconciles write-free.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

Scalar = str | int | bool
Value = Scalar | Sequence["Value"] | Mapping[str, "Value"]


def _scalar(v: Scalar) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    return json.dumps(v)


def dump(doc: Mapping[str, Value], indent: int = 0) -> str:
    """Render a mapping (keys in the given order) as block YAML."""
    pad = " " * indent
    lines: list[str] = []
    for key, value in doc.items():
        if isinstance(value, Mapping):
            if value:
                lines.append(f"{pad}{key}:\n{dump(value, indent + 2)}")
            else:
                lines.append(f"{pad}{key}: {{}}\n")
        elif isinstance(value, (list, tuple)):
            if not value:
                lines.append(f"{pad}{key}: []\n")
                continue
            lines.append(f"{pad}{key}:\n")
            for item in value:
                if isinstance(item, Mapping):
                    body = dump(item, indent + 4)
                    lines.append(f"{pad}  - {body.lstrip()}")
                else:
                    lines.append(f"{pad}  - {_scalar(item)}\n")
        else:
            lines.append(f"{pad}{key}: {_scalar(value)}\n")  # type: ignore[arg-type]
    return "".join(lines)
