"""image/check_tree.py refuses a tree with identity, build-machine leftovers or misplaced stand-ins.

Fast (no root, no image): small fake trees, the checker run as the build runs it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHECKER = REPO / "image" / "check_tree.py"
KEY_BODY = "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg" + "A" * 40


def make_tree(root: Path, variant: str = "production") -> Path:
    """The smallest tree that passes: what build.sh produces, minus Debian itself."""
    files = {
        "etc/machine-id": "uninitialized\n",
        "etc/group": "root:x:0:\nedge-agent:x:997:\n",
        "opt/edge-agent/venv/bin/agentd": "",
        "opt/edge-agent/venv/bin/agentctl": "",
        "opt/edge-agent/venv/bin/agentd-launch": "",
        "opt/edge-agent/venv/pyvenv.cfg": "home = /usr/bin\n",
        "usr/lib/systemd/system/edge-agent.service": "[Service]\n",
        "usr/lib/sysusers.d/edge-agent.conf": "g edge-agent - -\n",
        "usr/lib/tmpfiles.d/edge-agent.conf": "d /run/edge-agent 0755 root root -\n",
        "usr/lib/edge-agent/agent.toml": "",
        "usr/lib/edge-agent/image-release": f"IMAGE_VARIANT={variant}\n",
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    (root / "usr/lib/edge-agent/airgap").mkdir()
    wants = root / "etc/systemd/system/multi-user.target.wants"
    wants.mkdir(parents=True)
    (wants / "edge-agent.service").symlink_to("/lib/systemd/system/edge-agent.service")
    return root


def standins(root: Path) -> Path:
    (root / "dist").mkdir(parents=True)
    (root / "dist/k3s").write_text("#!/usr/bin/env python3\nprint('stand-in k3s')\n")
    return root


def check(tree: Path, variant: str, standin_dir: Path, repo: Path) -> tuple[int, str]:
    argv = [sys.executable, str(CHECKER), "--variant", variant, "--standins", str(standin_dir), "--repo", str(repo)]
    res = subprocess.run(
        [*argv, str(tree)],
        capture_output=True,
        text=True,
        check=False,
    )
    return res.returncode, res.stderr


@pytest.fixture
def parts(tmp_path: Path) -> tuple[Path, Path, Path]:
    return make_tree(tmp_path / "tree"), standins(tmp_path / "standins"), tmp_path / "checkout"


def test_a_clean_production_tree_passes(parts: tuple[Path, Path, Path]) -> None:
    tree, stand, repo = parts
    rc, err = check(tree, "production", stand, repo)
    assert rc == 0, err
    assert "production tree ok" in err


@pytest.mark.parametrize(
    ("rel", "content", "expect"),
    [
        ("etc/machine-id", "0123456789abcdef0123456789abcdef\n", "/etc/machine-id: must read 'uninitialized'"),
        ("var/lib/edge-agent/identity/node.key", "x", "/var/lib/edge-agent: identity or seed baked"),
        ("boot/edge-agent.toml", "[fleet]\n", "/boot/edge-agent.toml: identity or seed baked"),
        ("etc/ssl/private/box.pem", f"-----BEGIN PRIVATE KEY-----\n{KEY_BODY}\n", "box.pem: contains a private key"),
        ("root/.ssh/id_ed25519", "", "/root/.ssh: left over from the build machine"),
        ("etc/pip.conf", "[global]\n", "/etc/pip.conf: left over from the build machine"),
        ("usr/local/bin/k3s", "#!/usr/bin/env python3\nprint('stand-in k3s')\n", "test stand-in in a production tree"),
    ],
)
def test_a_tainted_production_tree_fails_naming_the_file(
    parts: tuple[Path, Path, Path], rel: str, content: str, expect: str
) -> None:
    tree, stand, repo = parts
    (tree / rel).parent.mkdir(parents=True, exist_ok=True)
    (tree / rel).write_text(content)
    rc, err = check(tree, "production", stand, repo)
    assert rc == 1
    assert expect in err, err


def test_the_build_checkout_path_must_not_leak_into_the_venv(parts: tuple[Path, Path, Path]) -> None:
    tree, stand, repo = parts
    record = tree / "opt/edge-agent/venv/lib/python3.11/site-packages/x/direct_url.json"
    record.parent.mkdir(parents=True)
    record.write_text(f'{{"url": "file://{repo}"}}')
    rc, err = check(tree, "production", stand, repo)
    assert rc == 1
    assert "direct_url.json: contains the build checkout path" in err, err


def test_a_test_tree_must_carry_the_standins(parts: tuple[Path, Path, Path], tmp_path: Path) -> None:
    _, stand, repo = parts
    tree = make_tree(tmp_path / "test-tree", variant="test")
    rc, err = check(tree, "test", stand, repo)
    assert rc == 1 and "no test stand-in found in a test tree" in err, err
    airgap = tree / "usr/lib/edge-agent/airgap/k3s"
    airgap.mkdir()
    (airgap / "k3s").write_bytes((stand / "dist/k3s").read_bytes())
    rc, err = check(tree, "test", stand, repo)
    assert rc == 0, err


def test_a_production_tree_labelled_test_fails(parts: tuple[Path, Path, Path]) -> None:
    tree, stand, repo = parts
    (tree / "usr/lib/edge-agent/image-release").write_text("IMAGE_VARIANT=test\n")
    rc, err = check(tree, "production", stand, repo)
    assert rc == 1 and "IMAGE_VARIANT is not 'production'" in err, err
