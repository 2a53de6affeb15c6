"""Fixtures shared by every tier: a real agentd process on a scratch root."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent


def unix_get(
    sock: Path, path: str, headers: dict[str, str] | None = None, timeout: float = 5.0
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 GET over a unix socket, independent of the agent's own client."""
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(str(sock))
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n{extra}\r\n".encode())
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    hdrs = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), hdrs, body


class AgentProcess:
    def __init__(self, root: Path, env: dict[str, str] | None = None, args: list[str] | None = None) -> None:
        self.root = root
        self.socket = root / "run/edge-agent/agent.sock"
        self.log = root.parent / f"{root.name}-agentd.log"
        self.env = {**os.environ, **(env or {})}
        self.args = args or []
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, wait: bool = True) -> AgentProcess:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "agent.daemon", "run", "--root", str(self.root), "--log-format", "text", *self.args],
            stderr=self.log.open("ab"),
            env=self.env,
        )
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"agentd exited {self.proc.returncode}:\n{self.log.read_text()}")
            try:
                if unix_get(self.socket, "/healthz", timeout=1)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"agentd did not answer within {timeout}s:\n{self.log.read_text()}")

    def get_json(self, path: str) -> Any:
        status, _, body = unix_get(self.socket, path)
        assert status == 200, (status, body)
        return json.loads(body)

    def condition(self, type_: str) -> dict[str, Any] | None:
        for c in self.get_json("/v1/status")["conditions"]:
            if c["type"] == type_:
                return dict(c)
        return None

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def stop(self) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


@pytest.fixture
def agent_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "etc/edge-agent").mkdir(parents=True)
    (root / "etc/machine-id").write_text("0123456789abcdef0123456789abcdef\n")
    return root


@pytest.fixture
def agentd(agent_root: Path) -> Iterator[AgentProcess]:
    proc = AgentProcess(agent_root)
    yield proc
    proc.stop()
