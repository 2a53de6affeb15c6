"""YAML documents for k3s and k0s, written by the standard ``json`` serialiser.

A JSON text is a YAML 1.2 flow mapping, so k3s's and k0s's YAML readers take it
as it is, and a ``# ...`` comment header in front keeps it valid YAML. Strings
are always double-quoted, so no value can change meaning (``yes``, ``0600``,
``1.30``). Non-ASCII text is written as itself, except the few characters a
YAML reader does not take literally inside a quoted scalar (C0/C1 controls,
the line breaks NEL, LS and PS, the byte-order mark, lone surrogates): those
are written as ``\\uXXXX`` escapes, which JSON and YAML read alike. The same
input always gives the same bytes; that keeps reconciles write-free.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence

Scalar = str | int | bool
Value = Scalar | Sequence["Value"] | Mapping[str, "Value"]

# json.dumps(ensure_ascii=False) already escapes C0 controls, quote and backslash
_NOT_LITERAL = re.compile("[\x7f-\x9f\u2028\u2029\ufeff\ud800-\udfff]")


def _escape(m: re.Match[str]) -> str:
    return f"\\u{ord(m.group(0)):04x}"


def document(doc: Mapping[str, Value], header: str = "") -> str:
    """``header`` (``# ...`` comment lines, each ending in a newline) then ``doc`` as indented JSON."""
    body = json.dumps(doc, indent=2, ensure_ascii=False)
    return header + _NOT_LITERAL.sub(_escape, body) + "\n"
