"""agentd as a real process on a scratch root: API, signals, sd_notify, bad config."""

from __future__ import annotations

import json
import signal
import socket
import time
from pathlib import Path

from agent.paths import Paths
from tests.conftest import AgentProcess, unix_get


def test_status_document_and_etag(agentd: AgentProcess) -> None:
    agentd.start()
    status, headers, body = unix_get(agentd.socket, "/v1/status")
    assert status == 200 and headers["content-type"].startswith("application/json")
    doc = json.loads(body)
    assert doc["schema"] == "edge-agent.status/v1"
    assert doc["health"] == "healthy"
    assert doc["agent"]["config_digest"].startswith("sha256:")
    assert {c["type"] for c in doc["conditions"]} >= {"ConfigValid", "StateValid"}
    # Right after start the controllers still publish (first inventory scan, first health poll), so
    # the document may really change between two requests; once it holds still, its ETag gives a 304.
    deadline = time.monotonic() + 15
    while True:
        status2, _, body2 = unix_get(agentd.socket, "/v1/status", {"If-None-Match": headers["etag"]})
        if status2 == 304:
            assert body2 == b""
            break
        assert status2 == 200 and time.monotonic() < deadline, "the status never held still long enough for a 304"
        headers = unix_get(agentd.socket, "/v1/status")[1]
        time.sleep(0.2)


def test_socket_is_group_only(agentd: AgentProcess) -> None:
    agentd.start()
    assert agentd.socket.stat().st_mode & 0o777 == 0o660


def test_errors_are_problem_json(agentd: AgentProcess) -> None:
    agentd.start()
    status, headers, body = unix_get(agentd.socket, "/v1/nope")
    assert status == 404 and headers["content-type"] == "application/problem+json"
    assert json.loads(body)["status"] == 404


def test_metrics_are_prometheus_text(agentd: AgentProcess) -> None:
    agentd.start()
    unix_get(agentd.socket, "/v1/status")
    status, headers, body = unix_get(agentd.socket, "/metrics")
    text = body.decode()
    assert status == 200 and headers["content-type"].startswith("text/plain")
    assert 'edge_agent_build_info{version="' in text
    assert 'edge_agent_condition{type="ConfigValid",status="True"} 1' in text
    assert 'edge_agent_api_requests_total{method="GET",route="/v1/status",code="200"} 1' in text
    assert 'edge_agent_api_request_duration_seconds_bucket{route="/v1/status",le="+Inf"} 1' in text
    for line in text.splitlines():  # every sample line is "name{labels} value"
        if line and not line.startswith("#"):
            float(line.rsplit(" ", 1)[1])


def test_openapi_matches_the_routes(agentd: AgentProcess) -> None:
    agentd.start()
    doc = agentd.get_json("/openapi.json")
    assert doc["openapi"].startswith("3.1")
    for path in doc["paths"]:
        status, _, _ = unix_get(agentd.socket, path.replace("{id}", "x"))
        assert status != 405, path


def test_sigterm_drains_and_exits_within_2s(agentd: AgentProcess) -> None:
    agentd.start()
    t0 = time.monotonic()
    rc = agentd.stop()
    assert rc == 0 and time.monotonic() - t0 < 2.0
    assert not agentd.socket.exists()


def test_sighup_with_a_bad_config_keeps_the_old_one(agentd: AgentProcess, agent_root: Path) -> None:
    etc = Paths(agent_root).etc_config
    etc.write_text('[fleet]\nsite = "first"\n')
    agentd.start()
    digest = agentd.get_json("/v1/status")["agent"]["config_digest"]
    etc.write_text("[fleet\nsite = ")
    agentd.signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while (c := agentd.condition("ConfigValid")) and c["status"] == "True" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert c and c["status"] == "False" and str(etc) in c["message"] and "line 1" in c["message"]
    doc = agentd.get_json("/v1/status")
    assert doc["health"] == "degraded" and doc["agent"]["config_digest"] == digest
    etc.write_text('[fleet]\nsite = "second"\n')
    agentd.signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while (c := agentd.condition("ConfigValid")) and c["status"] == "False" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert agentd.get_json("/v1/status")["agent"]["config_digest"] != digest


def test_bad_config_at_start_runs_on_last_good(agent_root: Path, tmp_path: Path) -> None:
    etc = Paths(agent_root).etc_config
    etc.write_text('[agent]\nlog_level = "warning"\n')
    first = AgentProcess(agent_root).start()
    good = first.get_json("/v1/status")["agent"]["config_digest"]
    first.stop()
    etc.write_text('[agent]\nlog_levl = "debug"\n')  # a typo after an upgrade
    second = AgentProcess(agent_root).start()
    try:
        c = second.condition("ConfigValid")
        assert c and c["status"] == "False"
        assert "agent.log_levl" in c["message"] and "last known good" in c["message"]
        assert second.get_json("/v1/status")["health"] == "degraded"
    finally:
        second.stop()
    assert good


def test_sd_notify_ready_status_and_watchdog(agent_root: Path, tmp_path: Path) -> None:
    notify = tmp_path / "notify.sock"
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    srv.bind(str(notify))
    srv.settimeout(5)
    proc = AgentProcess(agent_root, env={"NOTIFY_SOCKET": str(notify), "WATCHDOG_USEC": "200000"})
    t0 = time.monotonic()
    proc.start(wait=False)
    try:
        seen: list[str] = []
        while not any("READY=1" in m for m in seen):
            seen.append(srv.recv(4096).decode())
        ready_after = time.monotonic() - t0
        assert agent_root.joinpath("run/edge-agent/agent.sock").exists()  # READY only once the API listens
        pings = 0
        deadline = time.monotonic() + 2
        while pings < 3 and time.monotonic() < deadline:
            msg = srv.recv(4096).decode()
            seen.append(msg)
            pings += msg == "WATCHDOG=1"
        assert pings >= 3
        assert any(m.startswith("STATUS=") for m in seen)
        assert ready_after < 10
    finally:
        proc.stop()
        srv.close()


def test_corrupt_state_is_reported_and_the_agent_serves(agent_root: Path) -> None:
    state = Paths(agent_root).state_file
    state.parent.mkdir(parents=True)
    state.write_bytes(b"\xff\xfe not json")
    proc = AgentProcess(agent_root).start()
    try:
        c = proc.condition("StateValid")
        assert c and c["status"] == "False" and c["reason"] == "Corrupt" and "starting fresh" in c["message"]
        assert list(state.parent.glob("state.json.corrupt-*"))
    finally:
        proc.stop()


CONTROLLERS = ("fleet", "health", "inventory", "planner", "remote-api", "runtime", "storage", "upgrade")


def test_the_first_request_after_ready_finds_every_controller_started(agent_root: Path, tmp_path: Path) -> None:
    """READY is said before the controllers are imported and built, yet the first request answered
    after it (sent the moment READY arrives) already sees every controller under the supervisor."""
    notify = tmp_path / "notify.sock"
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    srv.bind(str(notify))
    srv.settimeout(15)
    proc = AgentProcess(agent_root, env={"NOTIFY_SOCKET": str(notify)})
    proc.start(wait=False)
    try:
        while "READY=1" not in srv.recv(4096).decode():
            pass
        status, _, body = unix_get(proc.socket, "/metrics")
        assert status == 200
        started = {
            line.split('controller="', 1)[1].split('"', 1)[0]
            for line in body.decode().splitlines()
            if line.startswith("edge_agent_controller_restarts_total{")
        }
        assert started == set(CONTROLLERS)
    finally:
        proc.stop()
        srv.close()
