"""Fixtures of the system tier: image trees (built once, cached), a scratch dir, booted boxes.

Tests marked ``system`` run only through ``bash tests/system/run.sh`` (root, nspawn,
veths); anywhere else they are skipped with that reason.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hostfleet import HostRegistrar, add_registrar_address, remove_registrar_address
from nspawn import Container, Link

from tests.tiers import build_image, call_failed, pytest_runtest_makereport, scratch_workdir, skip_unless

__all__ = ["pytest_runtest_makereport"]  # the shared hook, found here by pytest

REPO = Path(__file__).resolve().parents[2]
ENABLED = os.environ.get("EDGE_AGENT_SYSTEM_TESTS") == "1"
# Host side of every link lives in 10.231.0.0/24; box i gets 10.231.0.(4i)/30.
LINKS = ipaddress.IPv4Network("10.231.0.0/24")
WORKDIR = Path(os.environ.get("EDGE_AGENT_E2E_WORKDIR", "/var/tmp/edge-agent-e2e"))
workdir = scratch_workdir(WORKDIR, "EDGE_AGENT_E2E_KEEP")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip_unless(ENABLED, items, "system", "system tier: run `bash tests/system/run.sh` (root, systemd-nspawn)")


def build_tree(variant: str) -> Path:
    argv = ["bash", str(REPO / "image" / "build.sh"), "--variant", variant]
    return build_image(argv, f"image/build.sh --variant {variant}")


@pytest.fixture(scope="session")
def production_tree() -> Path:
    return build_tree("production")


@pytest.fixture(scope="session")
def test_tree() -> Path:
    return build_tree("test")


@pytest.fixture(scope="session")
def registrar(workdir: Path) -> Iterator[HostRegistrar]:
    """An edge-registrar on 10.231.255.1 (a veth of ours), fresh CA, one cluster of 1 server."""
    add_registrar_address()
    try:
        with HostRegistrar(workdir / "registrar" / "state", REPO) as reg:
            yield reg
    finally:
        remove_registrar_address()


class Boxes:
    """Hands out containers with their own name and /30, and powers them all off at the end."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.subnets = iter(LINKS.subnets(new_prefix=30))
        self.running: list[Container] = []

    def make(self, name: str, tree: Path, *, routes: tuple[str, ...] = ()) -> Container:
        link = Link(next(self.subnets), routes=routes)
        box = Container.from_tree(name, tree, self.workdir, link)
        self.running.append(box)
        return box

    def close(self) -> None:
        for box in self.running:
            box.stop()


@pytest.fixture
def boxes(workdir: Path, request: pytest.FixtureRequest) -> Iterator[Boxes]:
    made = Boxes(workdir)
    yield made
    if call_failed(request):
        for box in made.running:
            dump_box(box)
    made.close()


def dump_box(box: Container) -> None:
    print(f"\n===== {box.name}: console tail\n{box.console_tail()}")
    try:
        print(f"===== {box.name}: journal of edge-agent.service\n{box.journal('edge-agent.service')}")
    except Exception as exc:  # the box may be gone; the console tail above is what is left
        print(f"(no journal: {exc})")
