"""The committed umockdev files are what tests/inventory/trees.py builds (no drift)."""

from __future__ import annotations

import pytest

from .trees import TREES, fixture_path


@pytest.mark.parametrize("name", sorted(TREES))
def test_fixture_file_is_current(name: str) -> None:
    assert fixture_path(name).read_text() == TREES[name]().text(), (
        f"{fixture_path(name)} is stale: run python tests/inventory/trees.py"
    )
