"""A real agentd, at a lowered descriptor limit, under a storm of TCP connections to its remote
port that never send a ClientHello: the local socket keeps answering, the storm is capped and
counted in /metrics, the half-open connections are closed at the handshake deadline, and a
fleet client gets through once the storm ends. Black-box: sockets, TLS and /metrics only."""

from __future__ import annotations

import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import AgentProcess, unix_get

from .harness import free_port
from .storm import client_context, closed_by_peer, give_identity, half_open, metric, remote_get

NOFILE = 256  # agentd's soft and hard RLIMIT_NOFILE in this test
STORM = 400  # well beyond what 256 descriptors hold


class LimitedAgent(AgentProcess):
    """agentd started under RLIMIT_NOFILE=NOFILE (set in the child before exec)."""

    def start(self, wait: bool = True) -> AgentProcess:
        def lower_nofile() -> None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))

        argv = [sys.executable, "-m", "agent.daemon", "run", "--root", str(self.root), "--log-format", "text"]
        self.proc = subprocess.Popen(argv, stderr=self.log.open("ab"), env=self.env, preexec_fn=lower_nofile)
        if wait:
            self.wait_ready()
        return self


@pytest.fixture
def box(agent_root: Path) -> Iterator[tuple[LimitedAgent, int]]:
    port = free_port()
    (agent_root / "etc/edge-agent/agent.toml").write_text(f'[api]\nremote_listen = "127.0.0.1:{port}"\n')
    agent = LimitedAgent(agent_root)
    yield agent, port
    agent.stop()


def wait(predicate: object, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def status_code(agent: AgentProcess) -> int:
    return unix_get(agent.socket, "/v1/status", timeout=5)[0]


@pytest.mark.slow
def test_the_local_socket_survives_a_storm_of_half_open_remote_connections(
    box: tuple[LimitedAgent, int], agent_root: Path, tmp_path: Path
) -> None:
    agent, port = box
    fleet = give_identity(agent_root / "var/lib/edge-agent/identity")
    agent.start()
    wait(lambda: (agent.condition("RemoteApiListening") or {}).get("status") == "True", "the remote listener")
    tls = client_context(fleet, tmp_path / "client")
    assert remote_get(port, tls) == 200

    with half_open(port, STORM) as socks:
        # the unix socket answers all through the storm, every time
        for _ in range(10):
            assert status_code(agent) == 200
            time.sleep(0.1)
        text = unix_get(agent.socket, "/metrics")[2].decode()
        limit = metric(text, "edge_agent_remote_connections_limit")
        assert limit is not None and 0 < limit <= NOFILE // 4, text  # well below the descriptor limit

        def accounted() -> bool:
            t = unix_get(agent.socket, "/metrics")[2].decode()
            accepted = metric(t, "edge_agent_remote_connections_accepted_total") or 0
            dropped = metric(t, "edge_agent_remote_connections_dropped_total", 'reason="over_limit"') or 0
            return accepted + dropped >= STORM + 1  # the storm, and the first fleet request

        wait(accounted, "every storm connection taken on or dropped")
        text = unix_get(agent.socket, "/metrics")[2].decode()
        over = metric(text, "edge_agent_remote_connections_dropped_total", 'reason="over_limit"')
        timeouts = metric(text, "edge_agent_remote_connections_dropped_total", 'reason="handshake_timeout"')
        assert over is not None and timeouts is not None
        assert over >= STORM - limit - timeouts, text
        assert (metric(text, "edge_agent_remote_connections_active") or 0) <= limit
        # the peers see it: the ones beyond the cap at once, the rest at the handshake deadline
        wait(lambda: all(map(closed_by_peer, socks)), "every half-open connection closed by agentd")
        assert status_code(agent) == 200

    text = unix_get(agent.socket, "/metrics")[2].decode()
    timeouts = metric(text, "edge_agent_remote_connections_dropped_total", 'reason="handshake_timeout"')
    accepted = metric(text, "edge_agent_remote_connections_accepted_total")
    assert accepted is not None and timeouts == accepted - 1, text  # all but the fleet request: the deadline
    # the storm is over: a fleet client gets through
    assert remote_get(port, tls) == 200
    log = agent.log.read_text()
    assert "Traceback" not in log, log[-4000:]
    assert log.count("connections open: closed a new one") == 1, log[-4000:]
