"""Fixtures of the health tests: one umockdev child per mode (see healthbed.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.inventory.umockbed import require_umockdev

HEALTHBED = Path(__file__).resolve().parent / "healthbed.py"


def run_healthbed(mode: str, timeout: float = 120) -> Any:
    require_umockdev()
    proc = subprocess.run(
        ["umockdev-wrapper", sys.executable, str(HEALTHBED), mode],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert proc.returncode == 0, f"healthbed {mode} failed:\n{proc.stderr[-3000:]}"
    return json.loads(proc.stdout)


@pytest.fixture(scope="session")
def links() -> dict[str, Any]:
    return run_healthbed("links")  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def failures() -> dict[str, Any]:
    return run_healthbed("failures")  # type: ignore[no-any-return]
