"""What agentd imports before it can say READY: none of the heavy modules only its controllers need.

A fresh interpreter imports agent.daemon (everything agentd imports before READY) and builds
the API app as the daemon does; cryptography (certificates), pyudev and psutil (inventory,
addresses) and the XML parser (nvidia-smi) must still be absent, and the garbage collector
back on. The controllers import them once READY is said.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("cryptography", "pyudev", "psutil", "xml.etree.ElementTree")

PROBE = """
import gc, json, sys, tempfile
from pathlib import Path
import agent.daemon as d
from agent.api.app import ApiInfo, build_app
from agent.context import AgentContext
from agent.model.config import AgentConfig
from agent.paths import Paths
from agent.state import StateStore
from agent.status import StatusBoard
from agent.sysexec import ProcessRunner
from agent.upgrade.manager import UpgradeManager
from agent.watch import Watch
paths = Paths(Path(tempfile.mkdtemp()))
ctx = AgentContext(paths, ProcessRunner(), StatusBoard(), StateStore(paths.state_file), Watch(AgentConfig()))
build_app(ctx, ApiInfo(), d.route_modules(UpgradeManager(ctx, installers=d.default_installers(ctx))))
print(json.dumps({"gc": gc.isenabled(), "loaded": sorted(m for m in %r if m in sys.modules)}))
"""


def test_agentd_imports_nothing_heavy_before_ready() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE % (HEAVY,)], capture_output=True, text=True, check=True, cwd=REPO)
    doc = json.loads(out.stdout)
    assert doc["loaded"] == [], f"imported before READY: {doc['loaded']}"
    assert doc["gc"] is True
