"""Install a verified bundle side by side with the running version.

Agent bundles carry wheels (the agent's and its dependencies'). They are
installed offline into a fresh venv at ``versions/<version>/venv`` (created in
place: a venv cannot be moved), and ``.staged`` is written last, so the
launcher never runs a half-installed version. Other kinds are moved from the
verification scratch directory to ``versions/<kind>/<version>`` in one rename.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
from pathlib import Path

from agent.errors import AlreadyCurrent, BundleError
from agent.fsio import atomic_write
from agent.sysexec import Runner
from agent.upgrade.manifest import MANIFEST_NAME
from agent.upgrade.slots import STAGED_MARKER, Slots
from agent.upgrade.verify import VerifiedBundle

PIP_TIMEOUT = 900.0


async def stage_agent(bundle: VerifiedBundle, slots: Slots, runner: Runner, python: str) -> Path:
    m = bundle.manifest
    target = slots.dir / m.version
    if slots.current() == m.version:
        raise AlreadyCurrent(f"version {m.version} is already the current version")
    wheels = [bundle.directory / f.path for f in m.files if f.path.endswith(".whl")]
    if not wheels:
        raise BundleError(f"agent bundle {m.name} {m.version} contains no wheel (*.whl)")
    await asyncio.to_thread(shutil.rmtree, target, True)
    venv = target / "venv"
    await runner.run([python, "-m", "venv", "--without-pip", str(venv)], timeout=120)
    links = sorted({str(w.parent) for w in wheels})
    argv = [python, "-m", "pip", "--python", str(venv / "bin" / "python"), "install"]
    argv += ["--no-index", "--no-cache-dir", "--disable-pip-version-check", "--quiet"]
    for link in links:
        argv += ["--find-links", link]
    await runner.run([*argv, *map(str, wheels)], timeout=PIP_TIMEOUT)
    if not os.access(venv / "bin" / "agentd", os.X_OK):
        raise BundleError(f"agent bundle {m.version}: its wheels install no 'agentd' command")
    raw = m.to_bytes()
    atomic_write(target / MANIFEST_NAME, raw)
    atomic_write(target / STAGED_MARKER, hashlib.sha256(raw).hexdigest() + "\n")
    return target


def stage_files(bundle: VerifiedBundle, versions_dir: Path) -> Path:
    """Move the payload to versions/<kind>/<version> (run in a thread)."""
    m = bundle.manifest
    target = versions_dir / m.kind / m.version
    if target.exists():
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(bundle.directory, target)
    raw = m.to_bytes()
    atomic_write(target / MANIFEST_NAME, raw)
    atomic_write(target / STAGED_MARKER, hashlib.sha256(raw).hexdigest() + "\n")
    return target


def prune_agent_versions(slots: Slots, keep: set[str]) -> list[str]:
    """Remove installed agent versions not in ``keep`` (run in a thread)."""
    removed = []
    for v in slots.installed():
        if v not in keep:
            shutil.rmtree(slots.dir / v, ignore_errors=True)
            removed.append(v)
    return removed


def remove_half_staged(slots: Slots) -> None:
    """A version directory without .staged was being installed when the agent died."""
    for v in slots.installed():
        if not slots.staged(v) and v != slots.current():
            shutil.rmtree(slots.dir / v, ignore_errors=True)
