"""The .deb, built once per session by packaging/deb/build.sh, and a Debian tree to install it in.

The build takes its dependency wheels from the image cache's ``deps-*`` directory when one
is there (offline, the same wheels the image uses), else from the package index. It runs
with TMPDIR pointing at a directory of the test's own, so a test can look for that staging
path in what was packaged.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
IMAGE_CACHE = Path(os.environ.get("EDGE_AGENT_IMAGE_CACHE", "/var/cache/edge-agent-image"))


@dataclass(frozen=True)
class Built:
    deb: Path
    staging_tmp: Path  # TMPDIR of the build: its staging tree lived under here


def newest(pattern: str) -> Path | None:
    found = sorted(IMAGE_CACHE.glob(pattern), key=lambda p: p.stat().st_mtime) if IMAGE_CACHE.is_dir() else []
    return next((p for p in reversed(found) if p.is_dir()), None)


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    for tool in ("dpkg-deb", "git"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed")
    if not Path("/usr/bin/python3").exists():
        pytest.skip("no Debian /usr/bin/python3 to build the venv on")
    base = tmp_path_factory.mktemp("deb")
    staging_tmp = base / "tmp"
    staging_tmp.mkdir()
    argv = ["bash", str(REPO / "packaging/deb/build.sh"), "--out", str(base / "out")]
    deps = newest("deps-*")
    if deps is not None:
        argv += ["--wheels", str(deps)]
    # the checkout on PYTHONPATH, as the system tier has it: the build must not see its egg-info
    env = {**os.environ, "TMPDIR": str(staging_tmp), "PYTHONPATH": str(REPO)}
    proc = subprocess.run(argv, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    deb = Path(proc.stdout.strip().splitlines()[-1])
    assert deb.is_file(), proc.stdout
    assert not any(staging_tmp.iterdir()), "the build left its staging directory behind"
    return Built(deb=deb, staging_tmp=staging_tmp)


@pytest.fixture(scope="session")
def extracted(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package's files as dpkg-deb itself unpacks them (the independent reader)."""
    root = tmp_path_factory.mktemp("extracted")
    subprocess.run(["dpkg-deb", "-x", str(built.deb), str(root)], check=True)
    return root


@pytest.fixture
def debian_tree(tmp_path: Path) -> Iterator[Path]:
    """A copy of the image's cached debootstrap base (Debian 12 minbase + python3 + systemd)."""
    if os.geteuid() != 0:
        pytest.skip("installing into a Debian tree needs root (chroot)")
    base = newest("base-*")
    if base is None:
        pytest.skip(f"no debootstrapped base under {IMAGE_CACHE}: run 'make image' once")
    tree = tmp_path / "tree"
    subprocess.run(["cp", "-a", str(base), str(tree)], check=True)
    yield tree
    shutil.rmtree(tree, ignore_errors=True)
