"""The .deb installed with dpkg inside a Debian 12 tree (the image's debootstrap base), run there.

chroot (with a /proc of its own) and no systemd running inside, as an image build installs
it: postinst must create the group and directories and enable the units without starting
anything.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.package.conftest import Built

pytestmark = pytest.mark.slow

WANTS = "etc/systemd/system/multi-user.target.wants"


def in_tree(tree: Path, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "HOME": "/root"}
    # a /proc of its own, as image builders (debos, mkosi) give their chroots: systemd-tmpfiles needs one
    unshare = ["unshare", "--mount", "--pid", "--fork", f"--mount-proc={tree}/proc"]
    proc = subprocess.run([*unshare, "chroot", str(tree), *argv], capture_output=True, text=True, env=env)
    if check:
        assert proc.returncode == 0, f"{argv}: rc={proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def dpkg_install(tree: Path, deb: Path) -> None:
    shutil.copy(deb, tree / "tmp" / deb.name)
    in_tree(tree, "dpkg", "-i", f"/tmp/{deb.name}")


def group_names(tree: Path) -> set[str]:
    return {line.split(":")[0] for line in (tree / "etc/group").read_text().splitlines()}


def test_installed_agent_runs_and_its_units_are_enabled(built: Built, debian_tree: Path) -> None:
    tree = debian_tree
    assert "edge-agent" not in group_names(tree)
    dpkg_install(tree, built.deb)
    assert "installed" in in_tree(tree, "dpkg-query", "-W", "-f", "${db:Status-Status}", "edge-agent").stdout

    assert "usage" in in_tree(tree, "/usr/bin/agentctl", "--help").stdout.lower()
    out = in_tree(tree, "/opt/edge-agent/venv/bin/agentd", "check-config").stdout
    assert "/usr/lib/edge-agent/airgap" in out, out  # the vendor layer was read
    in_tree(tree, "/opt/edge-agent/venv/bin/python", "-m", "pip", "check")

    assert "edge-agent" in group_names(tree)  # systemd-sysusers ran
    state = tree / "var/lib/edge-agent"
    assert state.is_dir() and (state.stat().st_mode & 0o777) == 0o700  # systemd-tmpfiles ran
    for unit in ("edge-agent.service", "edge-agent-console.service"):
        link = tree / WANTS / unit
        assert link.is_symlink(), f"{unit} not enabled"
        assert in_tree(tree, "systemctl", "is-enabled", unit, check=False).stdout.strip() == "enabled"


def test_upgrade_keeps_the_administrators_disable_and_removal_cleans_up(built: Built, debian_tree: Path) -> None:
    tree = debian_tree
    dpkg_install(tree, built.deb)
    in_tree(tree, "systemctl", "disable", "edge-agent-console.service")
    dpkg_install(tree, built.deb)  # the same version again: postinst configure with $2 set
    assert not (tree / WANTS / "edge-agent-console.service").exists(), "reinstall re-enabled a disabled unit"
    assert (tree / WANTS / "edge-agent.service").is_symlink()

    (tree / "var/lib/edge-agent/state.json").write_text("{}\n")  # the box's state, not the package's
    in_tree(tree, "dpkg", "-r", "edge-agent")
    assert not (tree / "opt/edge-agent").exists(), "removal left files under /opt/edge-agent"
    assert not (tree / "usr/bin/agentctl").is_symlink()
    assert not (tree / "usr/lib/systemd/system/edge-agent.service").exists()

    in_tree(tree, "dpkg", "-P", "edge-agent")
    assert not (tree / WANTS / "edge-agent.service").is_symlink(), "purge left the unit enabled"
    assert not (tree / "etc/systemd/system/edge-agent.service").is_symlink(), "purge left the unit masked"
    assert (tree / "var/lib/edge-agent/state.json").exists(), "purge removed the box's identity and state"
    assert in_tree(tree, "dpkg-query", "-W", "edge-agent", check=False).returncode != 0
