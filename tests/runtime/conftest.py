"""Fixtures for the runtime tests: scratch boxes on one shared fake cluster."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .boxes import Box


@pytest.fixture
def make_box(tmp_path: Path) -> Iterator[Callable[..., Box]]:
    boxes: list[Box] = []
    cluster = tmp_path / "cluster"

    def make(name: str, address: str = "", **env: str) -> Box:
        box = Box(name, tmp_path / name, address or f"10.0.0.{len(boxes) + 1}", cluster, dict(env))
        boxes.append(box)
        return box

    yield make
    for box in boxes:
        box.stop_all()
