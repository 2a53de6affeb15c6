"""Fixtures for agentctl's technician commands: a real registrar on loopback, a box root, agentctl as a process."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.fleet.harness import RegistrarHandle, new_registrar

REPO = Path(__file__).resolve().parents[2]
STANDINS = REPO / "tests/standins/bin"


@dataclass
class Result:
    rc: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    def finding(self, check: str) -> dict[str, str]:
        found = [f for f in self.json()["findings"] if f["check"] == check]
        assert found, f"no finding {check} in {self.stdout}"
        return found[0]  # type: ignore[no-any-return]


async def agentctl(root: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 60) -> Result:
    """Run the real agentctl in its own process (the event loop keeps serving a registrar meanwhile)."""
    full_env = {**os.environ, "PATH": f"{STANDINS}:{os.environ.get('PATH', '')}", "EDGE_STANDIN_ROOT": str(root),
                **(env or {})}  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent.cli.agentctl", "--root", str(root), "--request-timeout", "3", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=full_env, cwd=str(REPO),
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    return Result(proc.returncode or 0, out.decode(), err.decode())


@pytest.fixture
async def registrar(tmp_path: Path) -> AsyncIterator[RegistrarHandle]:
    handle = new_registrar(tmp_path / "registrar")
    await handle.start()
    yield handle
    await handle.stop()
    handle.reg.registry.close()


@pytest.fixture
def box(tmp_path: Path) -> Path:
    root = tmp_path / "box"
    (root / "etc/edge-agent").mkdir(parents=True)
    (root / "boot").mkdir()
    (root / "etc/machine-id").write_text("0123456789abcdef0123456789abcdef\n")
    return root


def write_seed(root: Path, url: str, pin: str, token: str) -> Path:
    seed = root / "boot/edge-agent.toml"
    seed.write_text(f'[fleet]\nurl = "{url}"\nca_pin = "{pin}"\nbootstrap_token = "{token}"\n')
    return seed
