"""agentd-launch with real processes on a scratch root: pick, count, roll back, never brick."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent.upgrade.slots import BLOCK_AFTER_FAILURES
from tests.upgrade.boxes import REPO, FakeSystemd, candidate_on_trial, fake_version, slots, starts, wait_api


def test_fresh_box_runs_the_factory_version_with_the_callers_arguments(tmp_path: Path) -> None:
    fake_version(tmp_path, "factory", "good")
    with FakeSystemd(tmp_path):
        wait_api(tmp_path, "factory", 10)
    line = (tmp_path / "starts.log").read_text().splitlines()[0]
    assert line.split()[2:] == ["factory", "run", "--root", str(tmp_path)]


def test_healthy_candidate_is_committed(tmp_path: Path) -> None:
    fake_version(tmp_path, "factory", "good")
    fake_version(tmp_path, "1.0", "good")
    fake_version(tmp_path, "2.0", "good")
    s = slots(tmp_path)
    s.switch("2.0", deadline_s=30)
    with FakeSystemd(tmp_path):
        wait_api(tmp_path, "2.0", 10)
    doc = s.read()
    assert doc["trial"] is None and doc["committed"] == "2.0" and s.current() == "2.0"


def test_candidate_crashing_at_start_is_rolled_back_within_the_deadline(tmp_path: Path) -> None:
    s = candidate_on_trial(tmp_path, "crash", deadline_s=20, max_starts=3)
    with FakeSystemd(tmp_path):
        took = wait_api(tmp_path, "1.0", 20)
    assert took < 20
    assert starts(tmp_path).count("2.0") == 3
    doc = s.read()
    assert s.current() == "1.0" and doc["trial"] is None
    assert doc["last_rollback"]["version"] == "2.0" and doc["last_rollback"]["to"] == "1.0"
    assert "started 3 times" in doc["last_rollback"]["reason"]
    assert doc["failures"] == {"2.0": 1}


@pytest.mark.slow
def test_candidate_that_never_becomes_healthy_is_stopped_and_rolled_back_at_the_deadline(
    tmp_path: Path,
) -> None:
    s = candidate_on_trial(tmp_path, "hang", deadline_s=2.5)
    with FakeSystemd(tmp_path):
        wait_api(tmp_path, "2.0", 5)  # it runs and answers, but never reports healthy
        took = wait_api(tmp_path, "1.0", 10)
    assert took < 2.5 + 3
    doc = s.read()
    assert "did not become healthy" in doc["last_rollback"]["reason"]
    assert s.current() == "1.0" and doc["failures"] == {"2.0": 1}


def test_rollback_without_a_previous_version_lands_on_the_factory_venv(tmp_path: Path) -> None:
    fake_version(tmp_path, "factory", "good")
    fake_version(tmp_path, "2.0", "crash")
    s = slots(tmp_path)
    s.switch("2.0", deadline_s=20, max_starts=2)
    with FakeSystemd(tmp_path):
        wait_api(tmp_path, "factory", 15)
    assert s.current() is None and s.read()["last_rollback"]["to"] == "factory"


def test_committed_version_whose_venv_vanished_falls_back_to_factory(tmp_path: Path) -> None:
    fake_version(tmp_path, "factory", "good")
    fake_version(tmp_path, "1.0", "good").unlink()
    (tmp_path / "var/lib/edge-agent/versions").mkdir(parents=True, exist_ok=True)
    os.symlink("1.0", tmp_path / "var/lib/edge-agent/versions/current")
    with FakeSystemd(tmp_path) as sd:
        wait_api(tmp_path, "factory", 10)
    assert "version 1.0 is not runnable" in sd.log.read_text()


def test_a_version_that_failed_is_blocked_until_unblocked(tmp_path: Path) -> None:
    fake_version(tmp_path, "2.0", "crash")
    s = slots(tmp_path)
    for n in range(BLOCK_AFTER_FAILURES):
        assert not s.blocked("2.0")
        s.switch("2.0", deadline_s=5)
        s.rollback(f"failure {n}")
    assert s.blocked("2.0")
    s.unblock("2.0")
    assert not s.blocked("2.0")


KILLER = """
import os, signal, sys
from pathlib import Path
sys.path.insert(0, {repo!r})
from agent.upgrade.slots import Slots
target = sys.argv[1]
def hook(step):
    if step == target:
        os.kill(os.getpid(), signal.SIGKILL)
s = Slots(Path({versions!r}), Path({factory!r}), step_hook=hook)
op = target.split(":")[0]
s.switch("2.0", deadline_s=30)
if op == "rollback":
    s.rollback("operator asked")
elif op == "commit":
    s.commit("2.0")
"""


@pytest.mark.parametrize(
    ("step", "comes_back_on"),
    [
        ("switch:1", "1.0"),
        ("switch:2", "2.0"),
        ("rollback:1", "1.0"),
        ("rollback:2", "1.0"),
        ("rollback:3", "1.0"),
        ("commit:1", "2.0"),
    ],
)
def test_sigkill_at_every_step_leaves_the_old_or_the_new_version(tmp_path: Path, step: str, comes_back_on: str) -> None:
    fake_version(tmp_path, "factory", "good")
    fake_version(tmp_path, "1.0", "good")
    fake_version(tmp_path, "2.0", "good")
    s = slots(tmp_path)
    s.switch("1.0", deadline_s=30)
    s.commit("1.0")
    script = KILLER.format(repo=str(REPO), versions=str(s.dir), factory=str(s.factory_venv))
    proc = subprocess.run([sys.executable, "-c", script, step], check=False)
    assert proc.returncode == -9
    with FakeSystemd(tmp_path):
        wait_api(tmp_path, comes_back_on, 10)
    doc = s.read()
    assert doc["trial"] is None
    assert s.current() == comes_back_on


def test_launcher_imports_only_the_standard_library() -> None:
    code = (
        "import sys; import agent.upgrade.launcher; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'pydantic', 'aiohttp', 'cryptography', 'yaml'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "[]"


def test_launcher_passes_its_arguments_and_sets_the_slot(tmp_path: Path) -> None:
    fake_version(tmp_path, "factory", "crash")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    args = ["run", "--root", str(tmp_path), "--config", "/etc/x.toml"]
    proc = subprocess.run(
        [sys.executable, "-m", "agent.upgrade.launcher", *args], env=env, capture_output=True, text=True
    )
    assert proc.returncode == 3  # the exec'd program's own exit code: same process
    assert "no version installed; running the factory version" in proc.stderr
    line = (tmp_path / "starts.log").read_text().split()
    assert line[2:] == ["factory", *args]
