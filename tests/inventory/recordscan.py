"""Scans a recorded device tree with the real collectors and prints the inventory as JSON.

Run as ``umockdev-run -d tests/fixtures/recorded-NAME.umockdev -- python tests/inventory/recordscan.py
SCRATCH``: umockdev-run builds the testbed from the recording and preloads the library that
redirects this process's /sys and /dev to it; no GObject bindings are needed. ``SCRATCH`` is an
empty directory standing in for the box's root (host files are not part of a recording).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pyudev

from agent.inventory.collect import Collector
from agent.inventory.scan import Scanner
from agent.sysexec import ProcessRunner


async def main(scratch: Path) -> None:
    tools = scratch / "no-tools"  # no nvidia-smi: the recording is of sysfs only
    tools.mkdir(exist_ok=True)
    collector = Collector(str(scratch), udev=pyudev.Context(), root_dev="", addresses=dict, kernel_root=str(scratch))
    scanner = Scanner(collector, ProcessRunner(path=f"{tools}:/usr/bin:/bin"))
    inv = await scanner.scan(nvidia_timeout=0.5)
    print(inv.model_dump_json())


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
