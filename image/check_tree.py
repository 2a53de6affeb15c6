#!/usr/bin/env python3
"""Gate an image root tree before it is published (standard library only).

    python3 image/check_tree.py --variant production|test [--standins DIR] TREE

Checks that the tree carries no identity (machine id, keys, state, seed), nothing
from the build machine (its machine id, hostname, checkout path, pip/ssh config,
private keys), that the agent is installed and enabled, and that test stand-ins
are present in a test tree and absent from a production tree. Prints one line per
problem, naming the path, and exits 1 when there is any.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

# Directories a leak could hide in; /usr (Debian's own files) is left out except the agent's parts.
SCANNED = ("etc", "opt", "root", "home", "var", "boot", "srv", "usr/lib/edge-agent", "usr/local")
# A PEM private key block with a body (not just the marker string some libraries spell out).
PRIVATE_KEY = re.compile(rb"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----\r?\n[A-Za-z0-9+/=\r\n]{64}")
BUILD_MACHINE_FILES = (
    "root/.ssh",
    "root/.pyenv",
    "root/.cache",
    "root/.config/pip",
    "root/.pip",
    "root/.netrc",
    "root/.gitconfig",
    "root/.docker",
    "root/.bash_history",
    "etc/pip.conf",
    "etc/xdg/pip",
    "etc/resolv.conf",
    "etc/hostname",
)
IDENTITY_FILES = (
    "var/lib/edge-agent",
    "boot/edge-agent.toml",
    "etc/credstore/edge-agent.seed",
    "etc/credstore.encrypted/edge-agent.seed",
    "var/lib/systemd/random-seed",
    "var/lib/systemd/credential.secret",
)
REQUIRED = (
    "opt/edge-agent/venv/bin/agentd",
    "opt/edge-agent/venv/bin/agentctl",
    "opt/edge-agent/venv/bin/agentd-launch",
    "usr/lib/systemd/system/edge-agent.service",
    "etc/systemd/system/multi-user.target.wants/edge-agent.service",
    "usr/lib/sysusers.d/edge-agent.conf",
    "usr/lib/tmpfiles.d/edge-agent.conf",
    "usr/lib/edge-agent/agent.toml",
    "usr/lib/edge-agent/airgap",
    "usr/lib/edge-agent/image-release",
)
# The VM tier's command channel (image/add-vm-shell.sh): a root shell for whoever holds the port.
TEST_ONLY = (
    "usr/lib/edge-test",
    "usr/lib/systemd/system/edge-test-shell.service",
    "usr/lib/udev/rules.d/90-edge-test-shell.rules",
)
# Boxes carry the agent only; the registrar is installed where the fleet runs (docs/packaging.md).
REGISTRAR = ("opt/edge-agent/venv/bin/edge-registrar", "opt/edge-agent/venv/lib/python3*/site-packages/agent/registrar")
MAX_SCAN = 4 << 20


def files_under(tree: Path, rel: str) -> Iterator[Path]:
    top = tree / rel
    if not top.is_dir():
        return
    for dirpath, _dirs, names in os.walk(top):
        for name in names:
            p = Path(dirpath, name)
            if p.is_file() and not p.is_symlink():
                yield p


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def build_machine_needles(repo: Path) -> dict[bytes, str]:
    """Strings that identify the machine the image was built on."""
    needles: dict[bytes, str] = {str(repo).encode(): "the build checkout path"}
    try:
        mid = Path("/etc/machine-id").read_text().strip()
    except OSError:
        mid = ""
    if len(mid) == 32:
        needles[mid.encode()] = "the build machine's machine id"
    host = socket.gethostname()
    if len(host) >= 4 and host not in ("localhost", "debian"):
        needles[f"\n{host}\n".encode()] = "the build machine's hostname"
    return needles


def check_identity(tree: Path) -> Iterator[str]:
    mid = tree / "etc/machine-id"
    try:
        content = mid.read_text().strip()
    except OSError:
        content = "<missing>"
    if content != "uninitialized":
        yield f"/etc/machine-id: must read 'uninitialized' so every box makes its own, got {content[:40]!r}"
    for rel in IDENTITY_FILES:
        p = tree / rel
        if (p.is_dir() and any(p.iterdir())) or p.is_file():
            yield f"/{rel}: identity or seed baked into the image (must be absent)"
    dbus = tree / "var/lib/dbus/machine-id"
    if dbus.is_file() and not dbus.is_symlink():
        yield "/var/lib/dbus/machine-id: a fixed D-Bus machine id (must link to /etc/machine-id)"


def check_build_machine(tree: Path, repo: Path) -> Iterator[str]:
    for rel in BUILD_MACHINE_FILES:
        if (tree / rel).exists() or (tree / rel).is_symlink():
            yield f"/{rel}: left over from the build machine (must be absent)"
    needles = build_machine_needles(repo)
    for rel in SCANNED:
        for p in files_under(tree, rel):
            try:
                if p.stat().st_size > MAX_SCAN:
                    continue
                data = p.read_bytes()
            except OSError:
                continue
            where = "/" + str(p.relative_to(tree))
            if PRIVATE_KEY.search(data):
                yield f"{where}: contains a private key"
            yield from (f"{where}: contains {what}" for n, what in needles.items() if n in data)


def check_installed(tree: Path) -> Iterator[str]:
    for rel in REQUIRED:
        if not os.path.lexists(tree / rel):  # enablement links point at /usr/lib/..., absolute
            yield f"/{rel}: missing"
    cfg = tree / "opt/edge-agent/venv/pyvenv.cfg"
    if cfg.is_file() and "home = /usr/bin" not in cfg.read_text():
        yield "/opt/edge-agent/venv/pyvenv.cfg: the venv is not built on the image's own /usr/bin/python3"
    for pattern in REGISTRAR:
        for p in sorted(tree.glob(pattern)):
            yield f"/{p.relative_to(tree)}: the registrar does not belong on a box (it runs where the fleet runs)"
    group = tree / "etc/group"
    if not group.is_file() or not any(line.startswith("edge-agent:") for line in group.read_text().splitlines()):
        yield "/etc/group: no 'edge-agent' group"


def release_variant(tree: Path) -> str:
    release = tree / "usr/lib/edge-agent/image-release"
    if not release.is_file():
        return ""
    for line in release.read_text().splitlines():
        key, _, value = line.partition("=")
        if key == "IMAGE_VARIANT":
            return value.strip()
    return ""


def check_standins(tree: Path, variant: str, standins: Path) -> Iterator[str]:
    wanted: dict[int, dict[str, str]] = {}
    for p in sorted(standins.rglob("*")) if standins.is_dir() else []:
        if p.is_file() and not p.is_symlink() and "__pycache__" not in p.parts:
            wanted.setdefault(p.stat().st_size, {})[sha256(p)] = str(p.relative_to(standins))
    if variant == "test" and not wanted:
        yield f"{standins}: no stand-in programs to bake into a test tree"
        return
    found: list[str] = []
    for dirpath, _dirs, names in os.walk(tree):
        for name in names:
            p = Path(dirpath, name)
            if p.is_symlink() or not p.is_file():
                continue
            by_hash = wanted.get(p.stat().st_size)
            if by_hash and (hit := by_hash.get(sha256(p))):
                found.append(f"/{p.relative_to(tree)} (= tests/standins/{hit})")
    if variant == "production":
        yield from (f"{f}: test stand-in in a production tree" for f in found)
        for rel in TEST_ONLY:
            if os.path.lexists(tree / rel):
                yield f"/{rel}: test-only part (tests/vm command channel) in a production tree"
    elif not found:
        yield "no test stand-in found in a test tree"
    if release_variant(tree) != variant:
        yield f"/usr/lib/edge-agent/image-release: IMAGE_VARIANT is not {variant!r}"


def problems(tree: Path, variant: str, standins: Path, repo: Path) -> list[str]:
    return [
        *check_identity(tree),
        *check_build_machine(tree, repo),
        *check_installed(tree),
        *check_standins(tree, variant, standins),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", choices=["production", "test"], required=True)
    here = Path(__file__).resolve().parent.parent
    parser.add_argument("--standins", type=Path, default=here / "tests" / "standins")
    parser.add_argument("--repo", type=Path, default=here, help="the build checkout (its path must not leak)")
    parser.add_argument("tree", type=Path)
    ns = parser.parse_args(argv)
    if not ns.tree.is_dir():
        print(f"check_tree: {ns.tree}: not a directory", file=sys.stderr)
        return 2
    found = problems(ns.tree, ns.variant, ns.standins, ns.repo)
    for line in found:
        print(f"check_tree: {line}", file=sys.stderr)
    if found:
        print(f"check_tree: {ns.tree}: {len(found)} problem(s)", file=sys.stderr)
        return 1
    print(f"check_tree: {ns.tree}: {ns.variant} tree ok", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
