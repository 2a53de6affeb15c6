"""Trial deadlines run on CLOCK_BOOTTIME within one boot id, not on the wall clock.

An edge board without an RTC has its clock stepped by NTP, often by hours. The first
tests drive Slots through its Clock seam; the last ones run the real launcher (real
processes, the production clock) against a launch.json whose wall-clock fields say the
clock was stepped after the switch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from agent.paths import Paths
from agent.upgrade.launcher import FACTORY_VENV
from agent.upgrade.slots import Slots
from tests.upgrade.boxes import FakeSystemd, candidate_on_trial, fake_version, starts, wait_api

HOUR = 3600.0


@dataclass
class SteppedClock:
    """A box's clocks: the wall clock can be stepped, boottime only advances, a reboot resets it."""

    wall_s: float = 1_800_000_000.0
    boot_s: float = 40.0
    boot: str = "boot-a"

    def wall(self) -> float:
        return self.wall_s

    def boottime(self) -> float:
        return self.boot_s

    def boot_id(self) -> str:
        return self.boot

    def advance(self, seconds: float) -> None:
        self.wall_s += seconds
        self.boot_s += seconds

    def reboot(self, new_boot: str, uptime: float) -> None:
        self.boot, self.boot_s = new_boot, uptime


def clocked(root: Path, clock: SteppedClock) -> Slots:
    paths = Paths(root)
    return Slots(paths.versions_dir, paths.under(FACTORY_VENV), clock=clock)


def on_trial(root: Path, clock: SteppedClock, deadline_s: float = 60.0) -> Slots:
    for version in ("1.0", "2.0"):
        fake_version(root, version, "good")
    s = clocked(root, clock)
    s.switch("1.0", deadline_s=30)
    assert s.commit("1.0")
    s.switch("2.0", deadline_s=deadline_s)
    return s


def test_wall_clock_stepped_forward_an_hour_does_not_roll_back_the_candidate(tmp_path: Path) -> None:
    clock = SteppedClock()
    s = on_trial(tmp_path, clock)
    clock.advance(5)
    clock.wall_s += HOUR  # NTP: the board booted with a stale clock
    launch = s.choose()
    assert launch.version == "2.0" and launch.guard_until == pytest.approx(clock.boot_s + 55)
    assert s.read()["last_rollback"] is None and s.failures("2.0") == 0


def test_wall_clock_stepped_back_an_hour_does_not_extend_the_deadline(tmp_path: Path) -> None:
    clock = SteppedClock()
    s = on_trial(tmp_path, clock)
    clock.advance(5)
    assert s.choose().version == "2.0"
    clock.wall_s -= HOUR
    clock.advance(56)  # 61 s of real time since the switch, the wall clock says -59 min
    launch = s.choose()
    assert launch.version == "1.0" and s.current() == "1.0"
    assert "did not become healthy within 60s" in s.read()["last_rollback"]["reason"]
    assert s.failures("2.0") == 1


def test_a_reboot_during_the_trial_gives_the_candidate_its_whole_budget_again(tmp_path: Path) -> None:
    clock = SteppedClock(boot_s=5000.0)
    s = on_trial(tmp_path, clock)
    assert s.choose().guard_until == pytest.approx(5060.0)
    clock.reboot("boot-b", uptime=12.0)  # boottime starts again near zero
    launch = s.choose()
    assert launch.version == "2.0" and launch.trial_starts == 2
    assert launch.guard_until == pytest.approx(72.0)
    trial = s.read()["trial"]
    assert trial["boot_id"] == "boot-b" and trial["boot_deadline"] == pytest.approx(72.0)
    clock.reboot("boot-c", uptime=9000.0)  # a long boot: 9000 > 72 must not count as past the deadline
    assert s.choose().version == "2.0"


def test_a_trial_in_the_old_wall_clock_form_keeps_what_was_left_of_its_budget(tmp_path: Path) -> None:
    clock = SteppedClock()
    s = on_trial(tmp_path, clock)
    doc = json.loads(s.state_file.read_text())
    for key in ("boot_id", "boot_deadline"):
        del doc["trial"][key]  # what an older agent wrote
    doc["trial"]["switched_at"] = clock.wall_s - 20
    s.state_file.write_text(json.dumps(doc))
    launch = s.choose()
    assert launch.version == "2.0" and launch.guard_until == pytest.approx(clock.boot_s + 40)
    trial = s.read()["trial"]
    assert trial["boot_id"] == "boot-a" and trial["boot_deadline"] == pytest.approx(clock.boot_s + 40)
    clock.wall_s -= HOUR  # migrated: later steps no longer matter
    clock.advance(41)
    assert s.choose().version == "1.0"
    assert "did not become healthy" in s.read()["last_rollback"]["reason"]


def test_an_old_form_trial_whose_wall_clock_budget_is_spent_is_rolled_back(tmp_path: Path) -> None:
    clock = SteppedClock()
    s = on_trial(tmp_path, clock)
    doc = json.loads(s.state_file.read_text())
    doc["trial"] = {k: v for k, v in doc["trial"].items() if not k.startswith("boot_")}
    doc["trial"]["switched_at"] = clock.wall_s - 61
    s.state_file.write_text(json.dumps(doc))
    assert s.choose().version == "1.0" and s.failures("2.0") == 1


def test_remaining_is_measured_on_boottime(tmp_path: Path) -> None:
    clock = SteppedClock()
    s = on_trial(tmp_path, clock, deadline_s=30)
    trial = s.trial()
    assert trial is not None
    clock.wall_s += HOUR
    clock.advance(10)
    assert s.remaining(trial) == pytest.approx(20)


def step_wall_clock_after_switch(s: Slots, seconds: float) -> None:
    """What launch.json looks like when the wall clock is stepped by ``seconds`` right after the
    switch: switched_at, the wall time, now lies that far on the other side of the present."""
    doc = json.loads(s.state_file.read_text())
    doc["trial"]["switched_at"] -= seconds
    s.state_file.write_text(json.dumps(doc))


def test_real_launcher_keeps_a_healthy_candidate_after_the_clock_is_stepped_an_hour_forward(
    tmp_path: Path,
) -> None:
    s = candidate_on_trial(tmp_path, "good", deadline_s=30)
    step_wall_clock_after_switch(s, +HOUR)
    with FakeSystemd(tmp_path):
        wait_api(tmp_path, "2.0", 10)
    doc = s.read()
    assert doc["committed"] == "2.0" and s.current() == "2.0"
    assert doc["last_rollback"] is None and doc["failures"] == {}


@pytest.mark.slow
def test_real_launcher_rolls_back_at_the_deadline_although_the_clock_was_stepped_an_hour_back(
    tmp_path: Path,
) -> None:
    s = candidate_on_trial(tmp_path, "hang", deadline_s=2.5)
    step_wall_clock_after_switch(s, -HOUR)
    with FakeSystemd(tmp_path):
        wait_api(tmp_path, "2.0", 5)
        wait_api(tmp_path, "1.0", 10)  # on the wall clock the deadline is an hour away
    doc = s.read()
    assert "did not become healthy" in doc["last_rollback"]["reason"]
    assert s.current() == "1.0" and doc["failures"] == {"2.0": 1}
    assert starts(tmp_path).count("2.0") == 1
