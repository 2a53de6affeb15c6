"""The one Prometheus text writer (exposition format 0.0.4) every /metrics module goes through.

A :class:`Family` is one metric: ``# HELP``, ``# TYPE`` and its samples. The writer owns the
rules, so no module formats sample lines itself:

- label values escape backslash, double quote and newline (``\\\\``, ``\\"``, ``\\n``); HELP text
  escapes backslash and newline; nothing else is escaped;
- counters end in ``_total`` and gauges/histograms don't (what ``promtool check metrics`` lints);
- metric and label names are checked against the format's grammar; a bad one is a programming
  error (``ValueError`` naming the family), never a line a scraper would reject;
- values: booleans as 0/1, integers as written, floats with ``repr`` (``+Inf``/``-Inf``/``NaN``).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["counter", "gauge", "histogram"]
Number = int | float

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
_SUFFIXES: dict[str, tuple[str, ...]] = {
    "counter": ("",),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count"),
}


def escape_label(value: object) -> str:
    """A label value as it goes between the quotes."""
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_value(value: Number) -> str:
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


# every scrape builds the same families and label names again: check each name once, not per sample
@functools.cache
def _check_family(name: str, kind: str) -> None:
    if not _NAME.match(name):
        raise ValueError(f"metric {name!r}: not a Prometheus metric name")
    if kind not in _SUFFIXES:
        raise ValueError(f"metric {name}: type {kind!r} is not counter, gauge or histogram")
    if (kind == "counter") != name.endswith("_total"):
        want = "must" if kind == "counter" else "must not"
        raise ValueError(f"metric {name}: a {kind} {want} end in _total")


@functools.cache
def _label_name(key: str) -> bool:
    return bool(_LABEL.match(key)) and not key.startswith("__")


@dataclass
class Family:
    """One metric family; :meth:`add` samples, then :meth:`lines` writes it."""

    name: str
    kind: Kind
    help: str
    samples: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        _check_family(self.name, self.kind)

    def add(self, value: Number, labels: Mapping[str, object] | None = None, suffix: str = "") -> Family:
        """One sample; ``suffix`` is ``_bucket``/``_sum``/``_count`` for a histogram, else empty."""
        if suffix not in _SUFFIXES[self.kind]:
            raise ValueError(f"metric {self.name}: a {self.kind} has no {suffix or 'unsuffixed'!r} samples")
        text = ""
        if labels:
            for key in labels:
                if not _label_name(key):
                    raise ValueError(f"metric {self.name}: label {key!r} is not a Prometheus label name")
            text = "{" + ",".join(f'{k}="{escape_label(v)}"' for k, v in labels.items()) + "}"
        self.samples.append(f"{self.name}{suffix}{text} {format_value(value)}")
        return self

    def lines(self) -> Iterator[str]:
        yield f"# HELP {self.name} {escape_help(self.help)}"
        yield f"# TYPE {self.name} {self.kind}"
        yield from self.samples


def counter(name: str, help_text: str) -> Family:
    return Family(name, "counter", help_text)


def gauge(name: str, help_text: str) -> Family:
    return Family(name, "gauge", help_text)


def histogram(name: str, help_text: str) -> Family:
    return Family(name, "histogram", help_text)
