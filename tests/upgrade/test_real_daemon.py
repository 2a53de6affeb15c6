"""The real agentd under agentd-launch on a scratch root: a candidate commits itself once
healthy; a candidate that crashes is rolled back and the old agentd answers its API with
the reason. Versions are venvs that see this checkout and the project venv's packages
(tests.venvs), never the base interpreter's site-packages; no network here."""

from __future__ import annotations

import http.client
import json
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from agent.paths import Paths
from agent.state import StateStore
from tests.upgrade.boxes import FakeSystemd, slots
from tests.venvs import project_venv


class _Unix(http.client.HTTPConnection):
    def __init__(self, path: Path) -> None:
        super().__init__("agent", timeout=2)
        self.path = str(path)

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(2)
        self.sock.connect(self.path)


def api(root: Path, path: str) -> dict[str, Any] | None:
    try:
        c = _Unix(Paths(root).socket)
        c.request("GET", path)
        resp = c.getresponse()
        return json.loads(resp.read()) if resp.status == 200 else None
    except (OSError, ValueError):
        return None


def real_version(root: Path, version: str, *, broken: bool = False) -> None:
    venv = slots(root).venv(version)
    python = project_venv(venv)
    agentd = venv / "bin" / "agentd"
    body = "import sys\nsys.exit(1)\n" if broken else "import sys\nfrom agent.daemon import main\nsys.exit(main())\n"
    agentd.write_text(f"#!{python}\n{body}")
    agentd.chmod(0o755)
    if version != "factory":
        (venv.parent / ".staged").write_text("test\n")


def wait_record(root: Path, upgrade_id: str, timeout: float) -> dict[str, Any]:
    end = time.monotonic() + timeout
    doc: dict[str, Any] | None = None
    while time.monotonic() < end:
        doc = api(root, f"/v1/upgrades/{upgrade_id}")
        if doc and doc["state"] in ("committed", "rolled-back", "failed"):
            return doc
        time.sleep(0.2)
    raise AssertionError(f"upgrade {upgrade_id} not final within {timeout}s: {doc}")


def prepare(root: Path, *, broken: bool) -> None:
    real_version(root, "factory")
    real_version(root, "1.0")
    real_version(root, "2.0", broken=broken)
    cfg = root / "etc/edge-agent/agent.toml"
    cfg.parent.mkdir(parents=True)
    cfg.write_text("[upgrade]\nhealth_deadline = 8.0\n")
    s = slots(root)
    s.switch("1.0", deadline_s=30)
    s.commit("1.0")
    # what the 1.0 daemon leaves behind when it switches and asks systemd for a restart
    s.switch("2.0", deadline_s=8, max_starts=3, upgrade_id="u1")
    record = {
        "id": "u1",
        "source": "/b.tar",
        "state": "checking",
        "kind": "agent",
        "version": "2.0",
        "previous_version": "1.0",
    }
    store = StateStore(Paths(root).state_file)
    store.put("upgrade", {"active": "u1", "records": [record]})


@pytest.mark.slow
def test_real_agentd_candidate_commits_itself_once_healthy(tmp_path: Path) -> None:
    root = tmp_path / "root"
    prepare(root, broken=False)
    with FakeSystemd(root):
        doc = wait_record(root, "u1", 20)
        status = api(root, "/v1/status")
    assert doc["state"] == "committed", doc
    assert status is not None and status["sections"]["upgrade"]["running"] == "2.0"
    assert slots(root).current() == "2.0" and slots(root).trial() is None


@pytest.mark.slow
def test_real_agentd_crashing_candidate_is_rolled_back_and_the_old_one_answers(tmp_path: Path) -> None:
    root = tmp_path / "root"
    prepare(root, broken=True)
    t0 = time.monotonic()
    with FakeSystemd(root):
        doc = wait_record(root, "u1", 20)
        status = api(root, "/v1/status")
    assert time.monotonic() - t0 < 8 + 10
    assert doc["state"] == "rolled-back", doc
    assert "started 3 times without becoming healthy" in doc["reason"]
    assert status is not None and status["sections"]["upgrade"]["running"] == "1.0"
    assert status["sections"]["upgrade"]["failures"] == {"2.0": 1}
