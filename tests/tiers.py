"""What the two slow tiers share (tests/system: boxes under systemd-nspawn; tests/vm: the disk image
under QEMU): they run only when asked for, build their images once, work in one scratch directory,
and keep each test's call report on its item so fixtures can show what a failed test left behind.

Each tier's conftest imports :func:`pytest_runtest_makereport` so that pytest finds the hook there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Generator, Iterator
from pathlib import Path

import pytest


def skip_unless(enabled: bool, items: list[pytest.Item], marker: str, reason: str) -> None:
    """Skip every item marked ``marker`` with ``reason`` unless the tier was asked for (``enabled``)."""
    if enabled:
        return
    skip = pytest.mark.skip(reason=reason)
    for item in items:
        if item.get_closest_marker(marker):
            item.add_marker(skip)


def build_image(argv: list[str], what: str) -> Path:
    """Run an image build script (cached by the script itself); the path it prints last. Fails the test on error."""
    t0 = time.monotonic()
    res = subprocess.run(argv, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        pytest.fail(f"{what} failed:\n{res.stderr[-4000:]}", pytrace=False)
    out = Path(res.stdout.strip().splitlines()[-1])
    print(f"\n[image] {what}: {out} in {time.monotonic() - t0:.1f}s")
    return out


def scratch_workdir(path: Path, keep_variable: str) -> Callable[[], Iterator[Path]]:
    """The tier's session fixture ``workdir``: ``path`` emptied for this run and removed at the end,
    unless the environment variable ``keep_variable`` is set (to look at it afterwards)."""

    @pytest.fixture(scope="session", name="workdir")
    def workdir() -> Iterator[Path]:
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
        yield path
        if not os.environ.get(keep_variable):
            shutil.rmtree(path, ignore_errors=True)

    return workdir


def call_failed(request: pytest.FixtureRequest) -> bool:
    """Whether the call of the test behind ``request`` failed (read in a fixture's teardown)."""
    rep: pytest.TestReport | None = getattr(request.node, "rep_call", None)
    return rep is not None and rep.failed


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    rep = yield
    if rep.when == "call":
        item.rep_call = rep  # type: ignore[attr-defined]
    return rep
