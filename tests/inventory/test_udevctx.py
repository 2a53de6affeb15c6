"""The scanner's own libudev context: loaded by soname, no ldconfig run, the same devices as pyudev's.

A fresh interpreter records every process it starts through Python's audit hooks
(``subprocess.Popen``, ``os.exec*``, ``os.posix_spawn``): building the default
Scanner, as agentd and a one-shot scan do, must start none. The umockdev tier
(hwbed) scans every recorded fixture through the same context.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

PROBE = """
import json, sys
started = []
def hook(event, args):
    if event in ("subprocess.Popen", "os.exec", "os.posix_spawn", "os.spawn", "os.fork"):
        started.append([event, str(args[0])])
sys.addaudithook(hook)
from agent.inventory.collect import Collector
from agent.inventory.scan import Scanner
from agent.sysexec import ProcessRunner
scanner = Scanner(Collector(), ProcessRunner())
built = list(started)
import pyudev
mine = scanner.scan_hardware().model_dump(mode="json", exclude={"scanned_at"})
theirs = Scanner(Collector(udev=pyudev.Context()), ProcessRunner()).scan_hardware()
print(json.dumps({
    "started": built,
    "context": type(scanner.udev).__name__,
    "same": mine == theirs.model_dump(mode="json", exclude={"scanned_at"}),
    "pci": len(mine["pci"]),
}))
"""


def test_default_scanner_starts_no_process_and_sees_what_pyudev_sees() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, cwd=REPO)
    doc = json.loads(out.stdout)
    assert doc["started"] == [], f"building the scanner started {doc['started']} (ldconfig through find_library?)"
    assert doc["context"] == "_SonameContext"  # not pyudev's fallback
    assert doc["same"], "the soname context and pyudev.Context() gave different inventories"
