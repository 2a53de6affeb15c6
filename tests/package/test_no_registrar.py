"""Boxes carry the agent only: the registrar runs where the fleet runs (docs/packaging.md).

Two sides: nothing the box runs imports ``agent.registrar`` (read with Python's own parser,
every module of agent/ outside agent/registrar), and the package built from this checkout has
neither the registrar's modules nor its command; installed in a Debian tree, importing it fails.
"""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

import pytest

from tests.imports import imported
from tests.package.conftest import REPO, Built
from tests.package.test_install import dpkg_install, in_tree

REGISTRAR = "agent.registrar"


def registrar_imports(source: str, where: str) -> list[str]:
    """``where:line module`` for every import of agent.registrar (absolute, relative or through
    importlib) in ``source``, the module at ``where`` (a path under the checkout: its package)."""
    tree = ast.parse(source, filename=where)
    package = ".".join(Path(where).with_suffix("").parts[:-1])
    found: list[str] = []
    for node in ast.walk(tree):
        names = imported(node, package)
        if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
            "import_module",
            "__import__",
        ):
            names = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
        for name in names:
            if name == REGISTRAR or name.startswith(REGISTRAR + "."):
                found.append(f"{where}:{getattr(node, 'lineno', 0)} {name}")
    return found


def test_nothing_box_side_imports_the_registrar() -> None:
    modules = [p for p in (REPO / "agent").rglob("*.py") if (REPO / "agent" / "registrar") not in p.parents]
    assert len(modules) > 50  # the walk saw the agent
    found = [hit for p in modules for hit in registrar_imports(p.read_text(), str(p.relative_to(REPO)))]
    assert found == [], "box-side modules import the registrar:\n" + "\n".join(found)


def test_the_walk_sees_a_registrar_import() -> None:
    """The finder itself: each spelling of an import of the registrar is caught."""
    where = "agent/cli/probe.py"
    cases = [
        "import agent.registrar.cli\n",
        "from agent.registrar import views\n",
        "from agent import registrar\n",
        "from ..registrar import ca\n",
        "import importlib\nimportlib.import_module('agent.registrar.cli')\n",
    ]
    for src in cases:
        assert registrar_imports(src, where), src
    assert registrar_imports("from agent.fleet import registrar_client\nfrom . import registrar_view\n", where) == []


@pytest.mark.slow
def test_the_package_has_no_registrar(extracted: Path) -> None:
    venv = extracted / "opt/edge-agent/venv"
    assert (venv / "bin/agentd").is_file()
    assert not (venv / "bin/edge-registrar").exists()
    site = next((venv / "lib").glob("python3*/site-packages"))
    assert (site / "agent/fleet").is_dir() and not (site / "agent/registrar").exists()
    entry_points = next(site.glob("edge_agent-*.dist-info")) / "entry_points.txt"
    assert "edge-registrar" not in entry_points.read_text()


@pytest.mark.slow
def test_installed_box_cannot_run_the_registrar(built: Built, debian_tree: Path) -> None:
    dpkg_install(debian_tree, built.deb)
    res = in_tree(debian_tree, "/opt/edge-agent/venv/bin/python", "-c", "import agent.registrar", check=False)
    assert res.returncode == 1 and "No module named 'agent.registrar'" in res.stderr, res.stderr
    in_tree(debian_tree, "/opt/edge-agent/venv/bin/python", "-c", "import agent.fleet.enrollment, agent.daemon")
    which = in_tree(debian_tree, "sh", "-c", "command -v edge-registrar", check=False)
    assert which.returncode != 0 and not which.stdout.strip()
    pip = subprocess.run(["dpkg-deb", "-c", str(built.deb)], capture_output=True, text=True, check=True).stdout
    assert "registrar/" not in pip.replace("registrar_client", "")
