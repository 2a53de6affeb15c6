"""The one-shot command and the daemon's path, on the same device tree, side by side.

``pair`` runs ``agentctl inventory --local -o json`` as a child process (it inherits
umockdev's preload library and testbed, so it scans the tree this process sees) and
builds, in this process, the ``GET /v1/inventory`` body the daemon serves for the same
tree: the pydantic :class:`~agent.inventory.scan.Scanner`, the API's document and its
encoding. Both scan with the defaults a box has (root device from the root given,
addresses from the kernel, /proc of the running kernel) and the same nvidia-smi on PATH.

hwbed.py calls it for the generated trees; for a recording run it under umockdev-run:
``umockdev-run -d tests/fixtures/NAME.umockdev -- python tests/inventory/pairscan.py SCRATCH``
(prints the pair as JSON).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from agent.api.http import dumps
from agent.api.inventory import inventory_document
from agent.inventory.collect import Collector
from agent.inventory.scan import Scanner
from agent.sysexec import ProcessRunner

REPO = Path(__file__).resolve().parents[2]
NVIDIA_TIMEOUT = 0.5


def pair(root: Path, path: str, testbed: str | None = None) -> dict[str, Any]:
    """{"local": stdout of the command, "rc", "stderr", "seconds", "daemon": the served body}.

    ``testbed``: the umockdev testbed directory, when this process made it through the GObject
    bindings (they set UMOCKDEV_DIR in the C environment, not in ``os.environ``)."""
    argv = [sys.executable, "-m", "agent.cli.agentctl", "--root", str(root), "inventory", "--local", "-o", "json"]
    argv += ["--nvidia-smi-timeout", str(NVIDIA_TIMEOUT)]
    env = {**os.environ, "PATH": path, **({"UMOCKDEV_DIR": testbed} if testbed else {})}
    started = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False, cwd=REPO, env=env)
    seconds = time.monotonic() - started
    scanner = Scanner(Collector(str(root)), ProcessRunner(path=path))
    inv = asyncio.run(scanner.scan(nvidia_timeout=NVIDIA_TIMEOUT))
    served = dumps(inventory_document(inv)).decode()
    return {"local": proc.stdout, "rc": proc.returncode, "stderr": proc.stderr, "seconds": seconds, "daemon": served}


if __name__ == "__main__":
    scratch = Path(sys.argv[1])
    tools = scratch / "no-tools"  # no nvidia-smi: a recording is of sysfs only
    tools.mkdir(exist_ok=True)
    print(json.dumps(pair(scratch, f"{tools}:/usr/bin:/bin")))
