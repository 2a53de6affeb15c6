"""The agent's programs as a box runs them.

The development .venv carries an editable-install finder and other .pth files that
cost 20+ ms in `site` at every start; an image's venv has none of that. Timing
agentctl from .venv would measure the developer set-up, not the product: agentctl
runs from a plain venv with the agent package and a console script, agentd and
other box-side Python as ``python -S`` with the packages on PYTHONPATH.

Python runs from bytecode, as on a box (pip compiles the venv at install): a developer
environment with PYTHONDONTWRITEBYTECODE=1 would otherwise compile every agent module
from source at each start (~70 ms) and time the set-up, not the product. The bytecode
goes to a scratch PYTHONPYCACHEPREFIX, shared by every bench.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYCACHE = Path(tempfile.gettempdir()) / "edge-agent-bench-pycache"

SCRIPT = """#!{python}
import sys
from agent.cli.agentctl import main
if __name__ == "__main__":
    sys.exit(main())
"""


def clean_venv() -> Path:
    """A venv (no pip, no .pth files) whose site-packages holds a link to agent/."""
    venv = Path(tempfile.gettempdir()) / f"edge-agent-bench-venv-{sys.version_info[0]}{sys.version_info[1]}"
    python = venv / "bin/python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next(venv.glob("lib/python3*/site-packages"))
    link = site / "agent"
    if not link.is_symlink():
        link.symlink_to(REPO / "agent")
    script = venv / "bin/agentctl"
    script.write_text(SCRIPT.format(python=python))
    script.chmod(0o755)
    return venv


def agentctl_command() -> list[str]:
    return [str(clean_venv() / "bin/agentctl")]


def python_command() -> list[str]:
    return [str(clean_venv() / "bin/python")]


def daemon_command() -> tuple[list[str], dict[str, str]]:
    """agentd without the development venv's .pth hooks (python -S, packages on PYTHONPATH),
    which is what its start-up time and memory look like in an image's venv."""
    import site

    paths = [str(REPO), *site.getsitepackages()]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    return [sys.executable, "-S", "-m", "agent.daemon"], env


def bytecode_env(env: dict[str, str]) -> dict[str, str]:
    """``env`` running from bytecode (written once under PYCACHE), as an image's venv does."""
    out = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
    out["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    return out


def box_python() -> tuple[list[str], dict[str, str]]:
    """Python as agentd runs on a box (python -S, packages on PYTHONPATH, from bytecode): argv and env."""
    return [sys.executable, "-S"], bytecode_env(daemon_command()[1])
