"""Fixtures of the inventory tests."""

from __future__ import annotations

from typing import Any

import pytest

from .umockbed import run_hwbed

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
