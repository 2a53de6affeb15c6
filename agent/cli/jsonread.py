"""Read a JSON document with CPython's C scanner, without importing the json package.

`import json` costs ~8 ms (json.decoder imports re, which imports enum and the regex
compiler): a third of what agentctl may spend in all. ``_json.make_scanner`` is the
scanner json.loads itself uses; the only thing the json package adds around it is
skipping whitespace at the ends, done here by hand.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing costs ~3 ms to import; mypy still reads the block below

if TYPE_CHECKING:
    from typing import Any

_WS = " \t\n\r"


class _Context:
    """The attributes the C scanner reads from a json.JSONDecoder."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}.__getitem__
    memo: dict[str, str] = {}


def loads(raw: bytes) -> Any:
    """Like json.loads for UTF-8 bytes; raises ValueError on anything that is not one JSON value."""
    try:
        from _json import make_scanner
    except ImportError:  # not CPython: the json package it is
        import json

        return json.loads(raw)
    text = raw.decode("utf-8")  # UnicodeDecodeError is a ValueError
    end = len(text.rstrip(_WS))
    start = len(text) - len(text.lstrip(_WS))
    try:
        value, stop = make_scanner(_Context())(text, start)  # type: ignore[arg-type]  # duck-typed context
    except StopIteration:
        raise ValueError("not JSON") from None
    finally:
        _Context.memo.clear()
    if stop != end:
        raise ValueError("extra data after the JSON value")
    return value
