"""make demo: the real agent on a scratch root, this machine's real hardware.

Starts agentd with --root scratch/root, waits until it answers, prints
`agentctl status` and `agentctl inventory`, then stops it (DEMO_KEEP=1 keeps
it running so you can poke at it with agentctl --root scratch/root ...).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCRATCH = REPO / "scratch"
ROOT = SCRATCH / "root"


def agentctl(*args: str) -> int:
    cmd = [sys.executable, "-m", "agent.cli.agentctl", "--root", str(ROOT), *args]
    print("$ agentctl --root scratch/root " + " ".join(args), flush=True)
    return subprocess.call(cmd)


def main() -> int:
    if ROOT.exists():
        shutil.rmtree(ROOT)
    (ROOT / "etc").mkdir(parents=True)
    machine_id = Path("/etc/machine-id")
    if machine_id.is_file():
        shutil.copy(machine_id, ROOT / "etc/machine-id")
    log = (SCRATCH / "agentd.log").open("w")
    daemon = subprocess.Popen(
        [sys.executable, "-m", "agent.daemon", "run", "--root", str(ROOT), "--log-format", "text"],
        stderr=log,
    )
    try:
        rc = subprocess.call(
            [sys.executable, "-m", "agent.cli.agentctl", "--root", str(ROOT), "status", "--wait", "--timeout", "20"],
            stdout=subprocess.DEVNULL,
        )
        agentctl("status")
        if rc != 2:
            agentctl("inventory")
        print(f"\nagentd log: {SCRATCH / 'agentd.log'}")
        if os.environ.get("DEMO_KEEP"):
            print(f"agentd keeps running (pid {daemon.pid}); stop it with: kill {daemon.pid}")
            return 0
        return 0 if rc != 2 else 1
    finally:
        if not os.environ.get("DEMO_KEEP"):
            daemon.send_signal(signal.SIGTERM)
            t0 = time.monotonic()
            daemon.wait(10)
            print(f"agentd stopped in {time.monotonic() - t0:.2f}s (exit {daemon.returncode})")


if __name__ == "__main__":
    sys.exit(main())
