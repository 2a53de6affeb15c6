"""What one import statement names, for the tests that read the source's imports (AST, not conventions)."""

from __future__ import annotations

import ast


def imported(node: ast.AST, package: str) -> list[str]:
    """The modules (and ``module.name`` candidates) an ``import``/``from ... import`` names, relative ones
    resolved against ``package``; [] for any other node."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            parent = package.split(".")[: len(package.split(".")) - node.level + 1]
            base = ".".join([*parent, base] if base else parent)
        return [base] + [f"{base}.{a.name}" for a in node.names]
    return []
