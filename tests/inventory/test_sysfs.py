"""Reading attributes that are absent, unreadable, garbage, or gone: null with a reason, never a raise."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from agent.inventory.sysfs import Fields

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def dev(tmp_path: Path) -> Path:
    d = tmp_path / "devices" / "0000:01:00.0"
    d.mkdir(parents=True)
    (d / "vendor").write_text("0x10de\n")
    (d / "numa_node").write_text("-1\n")
    (d / "model").write_bytes(b"  Samsung SSD 980 PRO 1TB               \n")
    (d / "empty").write_text("\n")
    (d / "latin1").write_bytes(b"Caf\xe9\n")
    (d / "huge").write_text("A" * 5000)
    (d / "bell").write_text("up\x07\n")
    (d / "word").write_text("fast\n")
    (d / "wide").write_text("0x1ffff\n")
    os.symlink("../../bus/pci/drivers/nvidia", d / "driver")
    return d


def test_values_are_read_and_trimmed(dev: Path) -> None:
    f = Fields(str(dev))
    assert f.text("model", "model") == "Samsung SSD 980 PRO 1TB"
    assert f.hex_id("vendor", "vendor_id") == "10de"
    assert f.integer("numa_node", "numa_node") == -1
    assert f.link("driver") == "nvidia"
    assert f.problems == {}


@pytest.mark.parametrize(
    ("call", "reason"),
    [
        (lambda f: f.text("missing", "x"), "missing: absent"),
        (lambda f: f.text("empty", "x"), "empty: empty"),
        (lambda f: f.text("latin1", "x"), "latin1: not valid UTF-8"),
        (lambda f: f.text("huge", "x"), "huge: larger than 4096 bytes"),
        (lambda f: f.text("bell", "x"), "bell: contains control characters"),
        (lambda f: f.integer("word", "x"), "word: not an integer: 'fast'"),
        (lambda f: f.hex_id("wide", "x"), "wide: 0x1ffff does not fit 4 hex digits"),
    ],
)
def test_bad_attributes_give_null_and_reason(dev: Path, call: object, reason: str) -> None:
    f = Fields(str(dev))
    assert call(f) is None  # type: ignore[operator]
    assert f.problems == {"x": reason}


def test_optional_absent_attribute_is_not_a_problem(dev: Path) -> None:
    f = Fields(str(dev))
    assert f.text("sriov_totalvfs", "sriov", required=False) is None
    assert f.problems == {}


def test_device_removed_under_the_reader(dev: Path) -> None:
    f = Fields(str(dev))
    shutil.rmtree(dev)
    assert f.text("vendor", "vendor_id", required=False) is None
    assert f.problems == {"vendor_id": "vendor: device removed during scan"}
    assert f.link("driver") is None


def test_permission_denied_for_an_unprivileged_agent(tmp_path: Path) -> None:
    """DMI's product_serial is 0400 root: an agent without root gets null + 'permission denied'."""
    setpriv, python = shutil.which("setpriv"), "/usr/bin/python3"
    if os.geteuid() != 0 or setpriv is None or not os.access(python, os.X_OK):
        pytest.skip("needs root, setpriv and /usr/bin/python3 to drop privileges")
    dmi = tmp_path / "dmi"
    dmi.mkdir()
    (dmi / "product_serial").write_text("S4210GE0A1B2C3\n")
    (dmi / "product_serial").chmod(0o400)
    tmp_path.chmod(0o755)
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); from agent.inventory.sysfs import Fields;"
        "f = Fields(sys.argv[2]); print(f.text('product_serial', 'serial'), f.problems)"
    )
    out = subprocess.run(
        [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", python, "-c", code, str(REPO), str(dmi)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "None {'serial': 'product_serial: permission denied'}"
