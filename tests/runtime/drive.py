"""One daemon start of the runtime controller, as its own process (for SIGKILL tests).

usage: drive.py ROOT CLUSTER NAME ADDRESS CONFIG_JSON
Runs recover() + one reconcile() against the scratch root with stand-ins, then exits 0.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))

from runtime.boxes import Box


async def main() -> None:
    root, cluster, name, address, config = sys.argv[1:6]
    kill = os.environ.get("EDGE_STANDIN_KILL_CALLER")
    box = Box(name, Path(root), address, Path(cluster), {"EDGE_STANDIN_KILL_CALLER": kill} if kill else {})
    box.ctx.store.load()
    box.set_config(**json.loads(config))
    ctl = box.controller()
    ctl.recover()
    await ctl.reconcile()


if __name__ == "__main__":
    asyncio.run(main())
