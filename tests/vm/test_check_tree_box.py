"""image/check_tree.py's refusals added with the disk image: the VM tier's command channel in a
production tree, and the registrar anywhere on a box. Fast: small fake trees (the system tier's
make_tree), the checker run as image/build.sh and image/disk.sh run it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "system"))

from test_check_tree import check, make_tree, standins


@pytest.fixture
def parts(tmp_path: Path) -> tuple[Path, Path, Path]:
    return make_tree(tmp_path / "tree"), standins(tmp_path / "standins"), tmp_path / "checkout"


@pytest.mark.parametrize(
    "rel",
    [
        "usr/lib/edge-test/edge-test-shell.py",
        "usr/lib/systemd/system/edge-test-shell.service",
        "usr/lib/udev/rules.d/90-edge-test-shell.rules",
    ],
)
def test_production_refuses_the_vm_command_channel(parts: tuple[Path, Path, Path], rel: str) -> None:
    tree, stand, repo = parts
    (tree / rel).parent.mkdir(parents=True, exist_ok=True)
    (tree / rel).write_text("# test image only\n")
    rc, err = check(tree, "production", stand, repo)
    assert rc == 1
    assert f"/{rel.split('/edge-test-shell.py')[0]}: test-only part" in err, err


REGISTRAR_FILES = [
    "opt/edge-agent/venv/bin/edge-registrar",
    "opt/edge-agent/venv/lib/python3.11/site-packages/agent/registrar/cli.py",
]


@pytest.mark.parametrize("variant", ["production", "test"])
@pytest.mark.parametrize("rel", REGISTRAR_FILES)
def test_no_tree_may_carry_the_registrar(parts: tuple[Path, Path, Path], variant: str, rel: str) -> None:
    tree, stand, repo = parts
    if variant == "test":
        k3s = tree / "usr/lib/edge-agent/airgap/k3s/k3s"
        k3s.parent.mkdir(parents=True)
        k3s.write_bytes((stand / "dist/k3s").read_bytes())
        release = tree / "usr/lib/edge-agent/image-release"
        release.write_text("IMAGE_VARIANT=test\n")
    (tree / rel).parent.mkdir(parents=True, exist_ok=True)
    (tree / rel).write_text("")
    rc, err = check(tree, variant, stand, repo)
    assert rc == 1, err
    shown = rel if rel.endswith("edge-registrar") else rel.rsplit("/", 1)[0]
    assert f"/{shown}: the registrar does not belong on a box" in err, err
    assert err.count("problem(s)") == 1 and "1 problem(s)" in err, err


def test_the_test_variant_may_carry_the_channel(parts: tuple[Path, Path, Path]) -> None:
    tree, stand, repo = parts
    k3s = tree / "usr/lib/edge-agent/airgap/k3s/k3s"
    k3s.parent.mkdir(parents=True)
    k3s.write_bytes((stand / "dist/k3s").read_bytes())
    (tree / "usr/lib/edge-agent/image-release").write_text("IMAGE_VARIANT=test\n")
    shell = tree / "usr/lib/edge-test/edge-test-shell.py"
    shell.parent.mkdir(parents=True)
    shell.write_text("# test image only\n")
    rc, err = check(tree, "test", stand, repo)
    assert rc == 0, err
