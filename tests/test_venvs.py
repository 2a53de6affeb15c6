"""The venvs tests build for agent versions see the project's packages, not the base interpreter's."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
from pathlib import Path

from tests.venvs import REPO, project_venv

PROBE = """
import json, sys
import aiohttp, cryptography, pydantic, agent.daemon
print(json.dumps({"path": sys.path, "aiohttp": aiohttp.__file__, "agent": agent.daemon.__file__}))
"""


def test_a_version_venv_imports_the_agent_and_its_dependencies_from_the_project(tmp_path: Path) -> None:
    python = project_venv(tmp_path / "v")
    out = subprocess.run([str(python), "-c", PROBE], capture_output=True, text=True, check=True)
    doc = json.loads(out.stdout)
    assert doc["agent"].startswith(str(REPO / "agent"))
    assert doc["aiohttp"].startswith(sys.prefix), doc  # the project venv's copy
    # the base interpreter's site-packages stay out, whatever is installed there
    base_site = sysconfig.get_paths(vars={"base": sys.base_prefix, "platbase": sys.base_prefix})["purelib"]
    assert sys.prefix == sys.base_prefix or base_site not in doc["path"], doc["path"]
    cfg = (tmp_path / "v/pyvenv.cfg").read_text()
    assert "include-system-site-packages = false" in cfg
