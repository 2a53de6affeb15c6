"""agentctl against a real agent, and against every way of not reaching one."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.paths import Paths
from tests.conftest import AgentProcess


def agentctl(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    return subprocess.run(
        [sys.executable, "-m", "agent.cli.agentctl", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=env,
    )


def assert_one_clear_line(r: subprocess.CompletedProcess[str], *words: str) -> None:
    assert r.returncode == 2, r
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("agentctl: "), r.stderr
    for w in words:
        assert w in lines[0]


def test_healthy_agent_exits_0_with_a_summary(agentd: AgentProcess) -> None:
    agentd.start()
    r = agentctl("--root", str(agentd.root), "status")
    assert r.returncode == 0, r.stderr
    assert "healthy" in r.stdout and "ConfigValid" in r.stdout
    assert "\033[" not in r.stdout  # not a TTY: no colour


def test_json_output_is_the_status_document(agentd: AgentProcess) -> None:
    agentd.start()
    r = agentctl("--socket", str(agentd.socket), "status", "-o", "json")
    assert r.returncode == 0
    assert json.loads(r.stdout)["schema"] == "edge-agent.status/v1"


def test_degraded_agent_exits_1(agentd: AgentProcess, agent_root: Path) -> None:
    Paths(agent_root).etc_config.write_text("[agent]\nbogus = 1\n")
    agentd.start()
    r = agentctl("--root", str(agent_root), "status")
    assert r.returncode == 1
    assert "degraded" in r.stdout and "ConfigValid" in r.stdout and "agent.bogus" in r.stdout


def test_missing_socket(tmp_path: Path) -> None:
    assert_one_clear_line(agentctl("--socket", str(tmp_path / "agent.sock"), "status"), "does not exist")


def test_socket_with_no_listener(tmp_path: Path) -> None:
    path = tmp_path / "agent.sock"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(path))  # bound, never listening
    try:
        assert_one_clear_line(agentctl("--socket", str(path), "status"), "nothing is listening")
    finally:
        s.close()


@pytest.fixture
def fake_agent(tmp_path: Path) -> Iterator[tuple[Path, list[bytes]]]:
    """A unix socket server that answers whatever the test puts in the list (or hangs on None)."""
    path = tmp_path / "fake.sock"
    replies: list[bytes] = []
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(str(path))
    srv.listen()
    stop = threading.Event()

    def serve() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except TimeoutError:
                continue
            conn.recv(65536)
            if replies:
                conn.sendall(replies[0])
                conn.close()
            else:
                stop.wait(10)  # hung agent
                conn.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield path, replies
    stop.set()
    t.join()
    srv.close()


def test_hung_agent_times_out(fake_agent: tuple[Path, list[bytes]]) -> None:
    path, _ = fake_agent
    t0 = time.monotonic()
    r = agentctl("--socket", str(path), "--request-timeout", "0.5", "status")
    assert_one_clear_line(r, "did not answer within 0.5s")
    assert time.monotonic() - t0 < 5


def test_non_json_answer(fake_agent: tuple[Path, list[bytes]]) -> None:
    path, replies = fake_agent
    replies.append(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 6\r\n\r\n<html>")
    assert_one_clear_line(agentctl("--socket", str(path), "status"), "non-JSON", "text/html")


def test_not_http_at_all(fake_agent: tuple[Path, list[bytes]]) -> None:
    path, replies = fake_agent
    replies.append(b"SSH-2.0-OpenSSH_9.2\r\n")
    assert_one_clear_line(agentctl("--socket", str(path), "status"), "did not answer HTTP")


def test_wait_returns_once_the_agent_is_up(agent_root: Path) -> None:
    proc = AgentProcess(agent_root)
    waiter = subprocess.Popen(
        [sys.executable, "-m", "agent.cli.agentctl", "--root", str(agent_root), "status", "--wait", "--timeout", "20"],
        stdout=subprocess.PIPE,
        text=True,
    )
    time.sleep(0.5)
    proc.start(wait=False)
    try:
        out, _ = waiter.communicate(timeout=25)
        assert waiter.returncode == 0 and "healthy" in out
    finally:
        proc.stop()


def test_wait_gives_up_after_timeout(tmp_path: Path) -> None:
    r = agentctl("--socket", str(tmp_path / "x.sock"), "status", "--wait", "--timeout", "1")
    assert_one_clear_line(r, "does not exist")


def test_help_documents_exit_codes() -> None:
    r = agentctl("--help")
    assert r.returncode == 0
    assert "0  the agent answered and is healthy" in r.stdout and "2  the agent is unreachable" in r.stdout


def test_upgrade_cancel_of_an_unknown_upgrade_is_refused_plainly(agentd: AgentProcess) -> None:
    agentd.start()
    r = agentctl("--root", str(agentd.root), "upgrade", "cancel", "nope")
    assert r.returncode == 1 and r.stderr.startswith("agentctl: the agent refused: ") and "Traceback" not in r.stderr
    r = agentctl("--root", str(agentd.root), "upgrade", "cancel")
    assert r.returncode == 1 and "needs the upgrade id" in r.stderr
