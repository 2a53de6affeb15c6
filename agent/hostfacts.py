"""Host facts the planner needs that are not hardware: the hostname and the NVIDIA toolkit.

Read-only I/O (a file, PATH lookups), done by the planner controller on each
pass and handed to the pure planner as :class:`agent.model.desired.HostFacts`.
"""

from __future__ import annotations

from datetime import datetime

from agent.model.desired import HostFacts
from agent.nodename import box_hostname
from agent.paths import Paths
from agent.sysexec import Runner

NVIDIA_TOOLKIT = "/usr/local/nvidia/toolkit/nvidia-container-runtime"  # where the GPU operator's toolkit puts it


def nvidia_runtime(paths: Paths, runner: Runner) -> str:
    """Box path of nvidia-container-runtime when the toolkit is installed, else ""."""
    found = runner.which("nvidia-container-runtime")
    toolkit = paths.under(NVIDIA_TOOLKIT)
    if not found and toolkit.is_file():
        found = str(toolkit)
    if not found:
        return ""
    root = str(paths.root).rstrip("/")
    return found[len(root) :] if root and found.startswith(root + "/") else found


def gather(paths: Paths, runner: Runner, since: datetime | None = None) -> HostFacts:
    hostname, source = box_hostname(paths)
    return HostFacts(
        hostname=hostname, hostname_source=source, nvidia_runtime=nvidia_runtime(paths, runner), since=since
    )
