"""Fixtures of the VM tier: the test disk image (built once, cached), a registrar on loopback, VMs.

Tests marked ``vm`` run only through ``make vm-test`` (EDGE_AGENT_VM_TESTS=1, root); anywhere
else they are skipped with that reason. Under ``make vm-test`` a missing piece (no QEMU, no
OVMF, no swtpm...) fails the tier with one line naming it and its package; it never skips.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from qemu import missing_pieces
from vmboxes import REPO, Vms
from vmregistrar import Registrar

ENABLED = os.environ.get("EDGE_AGENT_VM_TESTS") == "1"
WORKDIR = Path(os.environ.get("EDGE_AGENT_VM_WORKDIR", "/var/tmp/edge-agent-vm"))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "vm: boots the disk image under QEMU (make vm-test; slow, root)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if ENABLED:
        return
    skip = pytest.mark.skip(reason="VM tier: run `make vm-test` (root, QEMU)")
    for item in items:
        if item.get_closest_marker("vm"):
            item.add_marker(skip)


def run_build(argv: list[str], what: str) -> Path:
    t0 = time.monotonic()
    res = subprocess.run(argv, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        pytest.fail(f"{what} failed:\n{res.stderr[-4000:]}", pytrace=False)
    out = Path(res.stdout.strip().splitlines()[-1])
    print(f"\n[image] {what}: {out} in {time.monotonic() - t0:.1f}s")
    return out


@pytest.fixture(scope="session")
def tier_ready() -> None:
    missing = missing_pieces()
    if missing:
        pytest.fail(f"VM tier cannot run, missing: {', '.join(missing)}", pytrace=False)
    if os.geteuid() != 0:
        pytest.fail("VM tier cannot run: needs root (image/build.sh debootstraps and chroots)", pytrace=False)


@pytest.fixture(scope="session")
def tree(tier_ready: None) -> Path:
    """The test variant's tree (image/build.sh --variant test), cached."""
    return run_build(["bash", str(REPO / "image/build.sh"), "--variant", "test"], "image/build.sh --variant test")


@pytest.fixture(scope="session")
def disk(tree: Path) -> Path:
    """The test tree's raw disk (image/disk.sh), cached; the qcow2 lies beside it."""
    return run_build(["bash", str(REPO / "image/disk.sh"), str(tree)], "image/disk.sh")


@pytest.fixture(scope="session")
def workdir() -> Iterator[Path]:
    if WORKDIR.exists():
        shutil.rmtree(WORKDIR)
    WORKDIR.mkdir(parents=True)
    yield WORKDIR
    if not os.environ.get("EDGE_AGENT_VM_KEEP"):
        shutil.rmtree(WORKDIR, ignore_errors=True)


@pytest.fixture(scope="session")
def registrar(workdir: Path) -> Iterator[Registrar]:
    state = workdir / "registrar" / "state"
    state.parent.mkdir(parents=True)
    reg = Registrar(state, REPO)
    try:
        reg.start()
        yield reg
    finally:
        reg.stop()


@pytest.fixture(scope="session")
def vms(disk: Path, workdir: Path, registrar: Registrar) -> Iterator[Vms]:
    made = Vms(disk, workdir, registrar)
    try:
        yield made
    finally:
        made.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    rep = yield
    if rep.when == "call" and rep.failed:
        made: Vms | None = getattr(item, "funcargs", {}).get("vms")
        for vm in made.made if made else []:
            print(f"\n===== {vm.name}: console tail\n{vm.console_tail(3000)}")
    return rep
