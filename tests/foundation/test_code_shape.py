"""The shape the design promises, checked on the source itself (AST, not conventions):
one exception tree in agent/errors.py, and no import cycles between agent modules
(function-level imports included: a lazy import is still a cycle; ``if TYPE_CHECKING`` ones are not)."""

from __future__ import annotations

import ast
from pathlib import Path

import agent.errors
from tests.imports import imported

ROOT = Path(agent.errors.__file__).parent
EXCEPTION_BASES = {"Exception", "ValueError", "RuntimeError", "OSError", "KeyError", "LookupError", "TypeError"}


def modules() -> dict[str, ast.Module]:
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        name = ".".join(rel.parts).removesuffix(".__init__")
        out[name] = ast.parse(path.read_text(), str(path))
    return out


def error_names() -> set[str]:
    tree = ast.parse(Path(agent.errors.__file__).read_text())
    return {n.name for n in tree.body if isinstance(n, ast.ClassDef)}


def test_every_exception_class_lives_in_agent_errors() -> None:
    ours = error_names() - {"ConfigProblem"}
    stray = []
    for name, tree in modules().items():
        if name == "agent.errors":
            continue
        for node in ast.walk(tree):
            if not isinstance(node, ast.ClassDef):
                continue
            bases = {b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases}
            if bases & (EXCEPTION_BASES | ours):
                stray.append(f"{name}.{node.name}({', '.join(sorted(bases))})")
    assert stray == [], "exception classes outside agent/errors.py: " + ", ".join(stray)


def imports_of(name: str, tree: ast.Module, known: set[str]) -> set[str]:
    out: set[str] = set()
    package = name if name in known and any(k.startswith(name + ".") for k in known) else name.rpartition(".")[0]
    type_only = {
        id(n)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and ast.unparse(block.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")
        for stmt in block.body
        for n in ast.walk(stmt)
    }
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        out |= {t for t in imported(node, package) if t in known and t != name}
    return out


def test_no_import_cycles() -> None:
    mods = modules()
    known = set(mods)
    graph = {name: imports_of(name, tree, known) for name, tree in mods.items()}
    # a package's __init__ importing its own submodules is not a cycle worth naming
    for name in graph:
        graph[name] = {t for t in graph[name] if not (t.startswith(name + ".") or name.startswith(t + "."))}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph[n]):
            if state.get(m) == 1:
                cycles.append([*stack[stack.index(m) :], m])
            elif m not in state:
                visit(m)
        stack.pop()
        state[n] = 2

    for n in sorted(graph):
        if n not in state:
            visit(n)
    assert cycles == [], "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)
