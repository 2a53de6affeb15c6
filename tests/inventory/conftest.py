"""Fixtures of the inventory tests."""

from __future__ import annotations

import json
from typing import Any

import pytest

from .umockbed import FIXTURES, run_hwbed, run_recording

ALL_SCANS = (
    "gpu-server:ok",
    "gpu-server:none",
    "gpu-server:fail",
    "gpu-server:hang",
    "gpu-server:garbage",
    "edge-x86",
    "amd-gpu",
    "arm-jetson",
    "nvme-tcp",
    "vm-virtio",
    "garbage",
)


@pytest.fixture(scope="session")
def scans() -> dict[str, Any]:
    """Inventory + labels of every fixture (and nvidia-smi variant), from one umockdev child."""
    return run_hwbed("scan", *ALL_SCANS)  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def scanned(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The inventory of the test module's recording (its ``NAME``), scanned under umockdev-run."""
    name = request.module.NAME
    return run_recording(name, "recordscan.py", tmp_path_factory.mktemp(name))  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def facts(request: pytest.FixtureRequest) -> dict[str, Any]:
    """What other tools read when the test module's recording was made (NAME.facts.json)."""
    return json.loads((FIXTURES / f"{request.module.NAME}.facts.json").read_text())  # type: ignore[no-any-return]
