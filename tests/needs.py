"""A piece a test needs and this machine lacks: skipped on a developer's machine, a failure in CI.

CI installs everything the tests need (``make deps``), so there a missing tool is a broken set-up,
never a reason to pass quietly.
"""

from __future__ import annotations

import os
import shutil
from typing import NoReturn

import pytest


def skip_or_fail(why: str) -> NoReturn:
    """Fail with ``why`` in CI, skip with it anywhere else."""
    if os.environ.get("CI"):
        pytest.fail(why)
    pytest.skip(why)


def need_tool(tool: str, package: str) -> str:
    """The path of ``tool``; where it is not installed, :func:`skip_or_fail` naming its Debian package."""
    path = shutil.which(tool)
    if path is None:
        skip_or_fail(f"{tool} not installed (apt-get install {package})")
    return path
