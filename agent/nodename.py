"""What a Kubernetes node name may be, and the box hostname it defaults to.

The planner (agent.planner) decides the node name once, for the runtime and
the upgrader: ``agent.node_name`` when set; else the box's hostname as k3s and k0s would
take it themselves (kubelet: the hostname, lower-cased, whole): the first
line of ``/etc/hostname`` under the box root that is not a comment
(hostname(5)), falling back to the kernel's hostname when that file is
missing or empty. An FQDN stays an FQDN (``edge-7.berlin.example.com``):
the runtime writes that name into k3s's ``node-name`` / k0s's
``--hostname-override`` and the upgrader looks the node up by it, so the two
cannot disagree. The result must be an RFC 1123 subdomain (lower-case
``a-z0-9-`` labels of at most 63, at most 253 in all), which the kubelet
demands; anything else is a ConfigError naming where the name came from.
"""

from __future__ import annotations

import re
import socket

from agent.paths import Paths

HOSTNAME_FILE = "/etc/hostname"
_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


def node_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a Kubernetes node name, or None when it can."""
    if not name:
        return "is empty"
    if len(name) > 253:
        return f"is {len(name)} characters long (at most 253)"
    bad = [label for label in name.split(".") if not _LABEL.fullmatch(label)]
    if bad:
        return (
            f"has the label {bad[0]!r}: each dot-separated label must be 1-63 of a-z, 0-9 and '-', "
            "starting and ending with a letter or digit (RFC 1123)"
        )
    return None


def box_hostname(paths: Paths) -> tuple[str, str]:
    """The box's hostname and where it was read: /etc/hostname under the root, else the kernel's."""
    path = paths.under(HOSTNAME_FILE)
    try:
        text = path.read_text(errors="replace")
    except OSError:
        text = ""
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            return line, str(path)
    return socket.gethostname(), "the kernel hostname"
