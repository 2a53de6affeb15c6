"""Run the storage reconciler once in its own process (the kill tests SIGKILL it mid-way).

argv: ROOT MODE(lvm|xfs|ext4) DEVICE SERIAL [VG]; prints the status as JSON.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from agent.paths import Paths
from agent.storage.prepare import StorageReconciler
from agent.sysexec import DEFAULT_PATH, ProcessRunner
from tests.storage.loopbed import STANDIN_BIN, decision, fs_plan, lvm_plan


def main() -> None:
    root, mode, device, serial = sys.argv[1:5]
    vg = sys.argv[5] if len(sys.argv) > 5 else ""
    plan = lvm_plan(decision(device, serial, vg=vg)) if mode == "lvm" else fs_plan(mode, decision(device, serial))
    env = {"LC_ALL": "C", "EDGE_STANDIN_ROOT": root}
    if "EDGE_STANDIN_KILL_CALLER" in os.environ:  # the stand-in systemctl SIGKILLs this process at that verb
        env["EDGE_STANDIN_KILL_CALLER"] = os.environ["EDGE_STANDIN_KILL_CALLER"]
    runner = ProcessRunner(path=f"{STANDIN_BIN}:{DEFAULT_PATH}", base_env=env)
    status = asyncio.run(StorageReconciler(Paths(Path(root)), runner).reconcile(plan))
    print(status.model_dump_json())


if __name__ == "__main__":
    main()
