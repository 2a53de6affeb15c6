"""A real agentd on a scratch root in a state that fills every status section and every state
section: enrolled with a real registrar on loopback, the stand-in k3s it was assigned running,
an upgrade recorded, inventory and health published.

Used by the schema tests (live answers against /openapi.json) and, once, to capture the
previous release's state file (tests/fixtures/state-schema1.json, see its README note).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import AgentProcess, unix_get
from tests.fleet.harness import RegistrarHandle, new_registrar
from tests.runtime.boxes import BIN, kill_pod_shims, standin_binary, write_bundle


def unix_post(sock: Path, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    """One HTTP/1.1 POST of a JSON body over a unix socket, independent of the agent's own client."""
    data = json.dumps(body).encode()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(str(sock))
    s.sendall(
        f"POST {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(data)}\r\n\r\n".encode()
        + data
    )
    raw = b""
    while chunk := s.recv(65536):
        raw += chunk
    s.close()
    head, _, rest = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(rest or b"null")


def _wrappers(directory: Path, root: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for prog in ("systemctl", "journalctl"):
        w = directory / prog
        w.write_text(
            f"#!/bin/sh\nexport EDGE_STANDIN_ROOT='{root}' EDGE_STANDIN_READY_DELAY=0\nexec '{BIN / prog}' \"$@\"\n"
        )
        w.chmod(0o755)


@dataclass
class LiveBox:
    agent: AgentProcess
    registrar: RegistrarHandle
    tools: Path
    upgrade_id: str = ""

    @property
    def root(self) -> Path:
        return self.agent.root

    def get(self, path: str) -> Any:
        status, _, body = unix_get(self.agent.socket, path)
        assert status == 200, (path, status, body)
        return json.loads(body)


async def _until(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await asyncio.to_thread(check):
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@asynccontextmanager
async def live_box(tmp_path: Path) -> AsyncIterator[LiveBox]:
    registrar = new_registrar(tmp_path / "registrar")
    await registrar.start()
    root = tmp_path / "box"
    (root / "etc/edge-agent").mkdir(parents=True)
    (root / "etc/machine-id").write_text("5" * 32 + "\n")
    (root / "etc/edge-agent/agent.toml").write_text(
        '[agent]\nnode_name = "edge-live"\n\n[api]\nremote_listen = ""\n\n'
        f'[fleet]\nurl = "{registrar.url}"\nca_pin = "{registrar.pin}"\n'
        f'bootstrap_token = "{registrar.token()}"\nsite = "lab"\nretry_max = 0.5\nheartbeat_interval = 0.3\n'
    )
    write_bundle(root, "k3s", standin_binary())
    tools = tmp_path / "tools"
    _wrappers(tools, root)
    env = {"PATH": f"{tools}:{os.path.dirname(sys.executable)}:/usr/bin:/bin"}
    agent = AgentProcess(root, env=env)
    box = LiveBox(agent, registrar, tools)
    try:
        await asyncio.to_thread(agent.start)

        def kube_ready() -> bool:
            sections = box.get("/v1/status")["sections"]
            fleet, kube = sections.get("fleet", {}), sections.get("kubernetes", {})
            return bool(fleet.get("enrolled") and fleet.get("cluster") and kube.get("ready"))

        await _until(kube_ready, 90, "enrolled, assigned and k3s Ready")
        status, doc = await asyncio.to_thread(
            unix_post, agent.socket, "/v1/upgrades", {"source": str(tmp_path / "no-such.bundle")}
        )
        assert status == 202, doc
        box.upgrade_id = doc["id"]

        def recorded() -> bool:
            return bool(box.get(f"/v1/upgrades/{box.upgrade_id}")["state"] == "failed")

        await _until(recorded, 30, "the upgrade to be recorded")
        await _until(lambda: "inventory" in box.get("/v1/status")["sections"], 30, "the inventory section")
        yield box
    finally:
        await asyncio.to_thread(agent.stop)
        subprocess.run([str(tools / "systemctl"), "stop", "k3s"], env={**os.environ, **env}, capture_output=True)
        kill_pod_shims(root)
        await registrar.stop()
