"""What edge-agent_<version>_amd64.deb holds, read back with dpkg-deb and lintian."""

from __future__ import annotations

import marshal
import shutil
import stat
import subprocess
import tomllib
from pathlib import Path

import pytest

from tests.package.conftest import REPO, Built

pytestmark = pytest.mark.slow

VENV = "opt/edge-agent/venv"
# source in the checkout -> where the image (image/build.sh) and the package put it
SAME_AS_IMAGE = {
    "systemd/edge-agent.service": "usr/lib/systemd/system/edge-agent.service",
    "systemd/edge-agent.service.d/10-seed-credential.conf": (
        "usr/lib/systemd/system/edge-agent.service.d/10-seed-credential.conf"
    ),
    "systemd/edge-agent-console.service": "usr/lib/systemd/system/edge-agent-console.service",
    "systemd/edge-agent-console@.service": "usr/lib/systemd/system/edge-agent-console@.service",
    "systemd/edge-agent.sysusers": "usr/lib/sysusers.d/edge-agent.conf",
    "systemd/edge-agent.tmpfiles": "usr/lib/tmpfiles.d/edge-agent.conf",
    "image/rootfs/usr/lib/edge-agent/agent.toml": "usr/lib/edge-agent/agent.toml",
    "README.md": "usr/share/doc/edge-agent/README.md",
}


def field(deb: Path, name: str) -> str:
    return subprocess.run(["dpkg-deb", "-f", str(deb), name], capture_output=True, text=True, check=True).stdout.strip()


def test_the_package_is_named_and_versioned_after_the_agent(built: Built) -> None:
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert built.deb.name == f"edge-agent_{version}_amd64.deb"
    assert field(built.deb, "Package") == "edge-agent"
    assert field(built.deb, "Version") == version
    assert field(built.deb, "Architecture") == "amd64"
    depends = [d.strip() for d in field(built.deb, "Depends").split(",")]
    # the venv is bound to Debian's python3 3.11 (lib/python3.11), so exactly that minor version
    assert "python3 (>= 3.11)" in depends and "python3 (<< 3.12)" in depends, depends
    assert "systemd" in depends, depends
    assert int(field(built.deb, "Installed-Size")) > 1000  # KiB: a whole venv


def test_the_package_installs_the_image_layout(built: Built, extracted: Path) -> None:
    listing = subprocess.run(["dpkg-deb", "-c", str(built.deb)], capture_output=True, text=True, check=True).stdout
    owners = {line.split()[1] for line in listing.splitlines()}
    assert owners == {"root/root"}, owners
    for src, dest in SAME_AS_IMAGE.items():
        assert (extracted / dest).read_bytes() == (REPO / src).read_bytes(), dest
        assert stat.S_IMODE((extracted / dest).stat().st_mode) == 0o644, dest
    for script in ("agentd", "agentctl", "agentd-launch"):
        path = extracted / VENV / "bin" / script
        assert path.stat().st_mode & 0o111, f"{path} is not executable"
        assert path.read_text().splitlines()[0] == "#!/opt/edge-agent/venv/bin/python", script
    agentctl = extracted / "usr/bin/agentctl"
    assert agentctl.is_symlink() and str(agentctl.readlink()) == "/opt/edge-agent/venv/bin/agentctl"
    assert (extracted / "usr/lib/edge-agent/airgap").is_dir()
    cfg = (extracted / VENV / "pyvenv.cfg").read_text()
    assert "home = /usr/bin" in cfg and "include-system-site-packages = false" in cfg, cfg
    assert str((extracted / VENV / "bin/python3").readlink()) == "/usr/bin/python3"
    assert not list(extracted.rglob("direct_url.json"))


def test_nothing_in_the_package_names_the_build_machine(built: Built, extracted: Path) -> None:
    leaks = [str(built.staging_tmp).encode(), str(REPO).encode()]
    files = [p for p in extracted.rglob("*") if p.is_file() and not p.is_symlink()]
    named = [str(p) for p in files if any(s in p.read_bytes() for s in leaks)]
    assert named == []
    # bytecode was compiled for the installed path, so tracebacks name real files
    pyc = next((extracted / VENV).glob("lib/python3.*/site-packages/agent/__pycache__/daemon.cpython-*.pyc"))
    code = marshal.loads(pyc.read_bytes()[16:])
    assert code.co_filename.startswith("/opt/edge-agent/venv/lib/python3."), code.co_filename


def test_lintian_finds_no_errors_or_warnings(built: Built) -> None:
    if shutil.which("lintian") is None:
        pytest.skip("lintian not installed (make deps installs it)")
    proc = subprocess.run(
        ["lintian", "--tag-display-limit", "0", "--fail-on", "none", str(built.deb)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    tags = [line for line in proc.stdout.splitlines() if line[:2] in ("E:", "W:")]
    assert tags == [], "\n".join(tags)
    # every override carries its reason: a comment right above it
    overrides = (REPO / "packaging/deb/lintian-overrides").read_text().splitlines()
    for i, line in enumerate(overrides):
        if line.startswith("edge-agent:"):
            above = next(x for x in reversed(overrides[:i]) if not x.startswith("edge-agent:"))
            assert above.startswith("#"), f"override without a reason: {line}"
