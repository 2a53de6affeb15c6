"""Node label and taint checks, done at config time because k3s/k0s refuse to start on them.

The kubelet refuses ``--node-labels`` in the ``kubernetes.io`` and ``k8s.io``
namespaces (and their subdomains) except its own well-known labels and the
``node.kubernetes.io`` / ``kubelet.kubernetes.io`` namespaces (so Node Feature
Discovery's ``feature.node.kubernetes.io/...`` labels pass). k3s then fails to
start, which is why the planner refuses them before anything is written.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")

RESERVED_NAMESPACES = ("kubernetes.io", "k8s.io")
KUBELET_NAMESPACES = ("kubelet.kubernetes.io", "node.kubernetes.io")
KUBELET_LABELS = frozenset(
    {
        "kubernetes.io/hostname",
        "topology.kubernetes.io/zone",
        "topology.kubernetes.io/region",
        "failure-domain.beta.kubernetes.io/zone",
        "failure-domain.beta.kubernetes.io/region",
        "kubernetes.io/arch",
        "kubernetes.io/os",
        "beta.kubernetes.io/arch",
        "beta.kubernetes.io/os",
        "beta.kubernetes.io/instance-type",
        "node.kubernetes.io/instance-type",
    }
)


def _under(namespace: str, parent: str) -> bool:
    return namespace == parent or namespace.endswith("." + parent)


def syntax_problem(key: str) -> str | None:
    """Why ``key`` is not a valid Kubernetes qualified name, or None."""
    prefix, sep, name = key.rpartition("/")
    if not sep:
        prefix = ""
    if not name or len(name) > 63 or not _NAME.match(name):
        return "name part must be 1-63 characters of [A-Za-z0-9-_.], starting and ending alphanumeric"
    if sep and (not prefix or len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        return "prefix must be a lowercase DNS subdomain of at most 253 characters"
    return None


def key_problem(key: str) -> str | None:
    """Why ``key`` is not a usable node label key, or None."""
    syntax = syntax_problem(key)
    if syntax:
        return syntax
    prefix = key.rpartition("/")[0]
    if key in KUBELET_LABELS or any(_under(prefix, ns) for ns in KUBELET_NAMESPACES):
        return None
    if any(_under(prefix, ns) for ns in RESERVED_NAMESPACES):
        return (
            f"labels under {prefix} are reserved (kubernetes.io and k8s.io namespaces); "
            "k3s/k0s would refuse to start. Use your own prefix, e.g. example.com/..."
        )
    return None


def value_problem(value: str) -> str | None:
    if value and (len(value) > 63 or not _NAME.match(value)):
        return "value must be empty or 1-63 characters of [A-Za-z0-9-_.], starting and ending alphanumeric"
    return None


def label_problems(labels: Mapping[str, str]) -> list[tuple[str, str]]:
    """(key, reason) for every bad label."""
    out: list[tuple[str, str]] = []
    for key in sorted(labels):
        why = key_problem(key) or value_problem(labels[key])
        if why:
            out.append((key, why))
    return out


def taint_problems(taints: Iterable[str]) -> list[tuple[str, str]]:
    """(taint, reason) for every taint that is not ``key[=value]:Effect``."""
    out: list[tuple[str, str]] = []
    for taint in taints:
        body, sep, effect = taint.rpartition(":")
        if not sep or effect not in _EFFECTS:
            out.append((taint, f"expected key[=value]:Effect with Effect one of {', '.join(_EFFECTS)}"))
            continue
        key, _, value = body.partition("=")
        why = syntax_problem(key) if key else "empty key"
        if why is None:
            why = value_problem(value)
        if why:
            out.append((taint, why))
    return out
