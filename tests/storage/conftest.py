from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.sysexec import DEFAULT_PATH, ProcessRunner
from tests.storage.loopbed import STANDIN_BIN, LoopBed, require_loop


@pytest.fixture
def bed(tmp_path: Path) -> Iterator[LoopBed]:
    require_loop()
    b = LoopBed(tmp_path)
    try:
        yield b
    finally:
        b.cleanup()


@pytest.fixture
def box(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    root.mkdir()
    return root


@pytest.fixture
def runner(box: Path) -> ProcessRunner:
    """Real programs; the stand-in systemctl (it runs .mount units with mount(8)) first on PATH."""
    return ProcessRunner(
        path=f"{STANDIN_BIN}:{DEFAULT_PATH}",
        base_env={"LC_ALL": "C", "EDGE_STANDIN_ROOT": str(box)},
    )
