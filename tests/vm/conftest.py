"""Fixtures of the VM tier: the test disk image (built once, cached), a registrar on loopback, VMs.

Tests marked ``vm`` run only through ``make vm-test`` (EDGE_AGENT_VM_TESTS=1, root); anywhere
else they are skipped with that reason. Under ``make vm-test`` a missing piece (no QEMU, no
OVMF, no swtpm...) fails the tier with one line naming it and its package; it never skips.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from qemu import missing_pieces
from vmboxes import REPO, Vms
from vmregistrar import Registrar

from tests.tiers import build_image, call_failed, pytest_runtest_makereport, scratch_workdir, skip_unless

__all__ = ["pytest_runtest_makereport"]  # the shared hook, found here by pytest

ENABLED = os.environ.get("EDGE_AGENT_VM_TESTS") == "1"
WORKDIR = Path(os.environ.get("EDGE_AGENT_VM_WORKDIR", "/var/tmp/edge-agent-vm"))
workdir = scratch_workdir(WORKDIR, "EDGE_AGENT_VM_KEEP")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "vm: boots the disk image under QEMU (make vm-test; slow, root)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip_unless(ENABLED, items, "vm", "VM tier: run `make vm-test` (root, QEMU)")


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
    return build_image(["bash", str(REPO / "image/build.sh"), "--variant", "test"], "image/build.sh --variant test")


@pytest.fixture(scope="session")
def disk(tree: Path) -> Path:
    """The test tree's raw disk (image/disk.sh), cached; the qcow2 lies beside it."""
    return build_image(["bash", str(REPO / "image/disk.sh"), str(tree)], "image/disk.sh")


@pytest.fixture(scope="session")
def registrar(workdir: Path) -> Iterator[Registrar]:
    with Registrar(workdir / "registrar" / "state", REPO) as reg:
        yield reg


@pytest.fixture(scope="session")
def vms(disk: Path, workdir: Path, registrar: Registrar) -> Iterator[Vms]:
    made = Vms(disk, workdir, registrar)
    try:
        yield made
    finally:
        made.close()


@pytest.fixture(autouse=True)
def console_on_failure(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test that failed with VMs shows the console tail of every VM made so far."""
    yield
    made: Vms | None = getattr(request.node, "funcargs", {}).get("vms")
    if made is not None and call_failed(request):
        for vm in made.made:
            print(f"\n===== {vm.name}: console tail\n{vm.console_tail(3000)}")
