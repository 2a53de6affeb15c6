"""Venvs for tests that run the agent as its own program (an installed agent version, say).

A venv made with ``--system-site-packages`` from inside ``.venv`` sees the *base*
interpreter's site-packages, not ``.venv``'s: on a machine where aiohttp was only ever
installed into ``.venv`` (every fresh machine), such a venv cannot import the agent's
dependencies. The venvs made here have no system site-packages at all; a ``.pth`` file
names this checkout and the site-packages of the interpreter running the tests (the
project's ``.venv``), so they see exactly what the tests see and nothing else.
"""

from __future__ import annotations

import site
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PTH_NAME = "edge_agent_project.pth"


def project_site_packages() -> list[Path]:
    """The site-packages directories of the interpreter running the tests."""
    return [Path(p) for p in site.getsitepackages() if Path(p).is_dir()]


def project_venv(dest: Path) -> Path:
    """A venv at ``dest`` (no pip, no system site-packages) that imports the agent from this
    checkout and its dependencies from the project's venv. Returns its ``bin/python``."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(dest)], check=True)
    site_dir = next((dest / "lib").glob("python3*/site-packages"))
    lines = [str(REPO), *map(str, project_site_packages())]
    (site_dir / PTH_NAME).write_text("\n".join(lines) + "\n")
    return dest / "bin" / "python"
