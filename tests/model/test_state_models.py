"""Typed state sections: a state file the previous release wrote reads back, writes back the same,
and a section that does not fit its model is reported, kept aside and not trusted (never a crash)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from agent.model.state import SECTIONS, ConfigState, FleetState, RuntimeState, UpgradeState
from agent.state import SCHEMA, StateStore
from tests.conftest import AgentProcess

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "state-schema1.json"


def old_state(tmp_path: Path) -> StateStore:
    path = tmp_path / "state.json"
    shutil.copy(FIXTURE, path)
    store = StateStore(path)
    store.load()
    return store


def test_the_previous_releases_state_file_reads_into_every_section_model(tmp_path: Path) -> None:
    store = old_state(tmp_path)
    assert store.problem is None and store.invalid == {}
    assert SCHEMA == 1  # the models read schema-1 shapes as they are: no migration needed
    fleet = store.load_section("fleet", FleetState)
    assert fleet.node_id == "f47a8d0f1d39168030fc913f718cd990"
    assert fleet.assignment is not None
    assert (fleet.assignment.cluster, fleet.assignment.role, fleet.assignment.cluster_init) == ("lab", "server", True)
    runtime = store.load_section("runtime", RuntimeState)
    assert (runtime.distribution, runtime.unit, runtime.registered, runtime.step) == ("k3s", "k3s", True, "applied")
    upgrade = store.load_section("upgrade", UpgradeState)
    assert upgrade.active is None and [r.state for r in upgrade.records] == ["failed"]
    assert upgrade.records[0].history[-1].reason.endswith("No such file or directory")
    config = store.load_section("config", ConfigState)
    assert config.last_good is not None and config.last_good["agent"] == {"node_name": "edge-live"}


def test_sections_written_back_are_what_the_previous_release_wrote(tmp_path: Path) -> None:
    """Shapes unchanged both ways: an agent rolled back to the previous release reads this one's file."""
    old = old_state(tmp_path)
    fresh = StateStore(tmp_path / "fresh.json")  # every section written by its model, from nothing
    for name, model in SECTIONS.items():
        fresh.save_section(name, old.load_section(name, model))
    assert json.loads((tmp_path / "fresh.json").read_text()) == json.loads(FIXTURE.read_text())


def test_a_section_that_does_not_fit_is_reported_kept_aside_and_not_trusted(tmp_path: Path) -> None:
    doc = json.loads(FIXTURE.read_text())
    doc["sections"]["runtime"]["distribution"] = ["k3s"]
    doc["sections"]["upgrade"]["records"][0]["state"] = "half-done"
    path = tmp_path / "state.json"
    path.write_text(json.dumps(doc))
    store = StateStore(path)
    store.load()
    assert store.problem is None
    assert sorted(store.invalid) == ["runtime", "upgrade"]
    assert "section 'runtime': distribution:" in store.invalid["runtime"]
    assert "section 'upgrade': records.0.state:" in store.invalid["upgrade"]
    assert store.load_section("runtime", RuntimeState) == RuntimeState()  # not trusted
    assert store.load_section("upgrade", UpgradeState) == UpgradeState()
    assert store.load_section("fleet", FleetState).node_id  # the others are
    kept = sorted(p.name for p in tmp_path.glob("state.json.invalid-*"))
    assert [k.rsplit("-", 1)[0] for k in kept] == ["state.json.invalid-runtime", "state.json.invalid-upgrade"]
    assert json.loads((tmp_path / kept[0]).read_text())["distribution"] == ["k3s"]


def test_agentd_reports_an_invalid_section_as_state_valid_false_and_keeps_serving(agent_root: Path) -> None:
    doc = json.loads(FIXTURE.read_text())
    doc["sections"]["fleet"]["assignment"]["role"] = "overlord"
    state = agent_root / "var/lib/edge-agent/state.json"
    state.parent.mkdir(parents=True)
    state.write_text(json.dumps(doc))
    proc = AgentProcess(agent_root).start()
    try:
        cond = proc.condition("StateValid")
        assert cond is not None
        assert (cond["status"], cond["reason"]) == ("False", "InvalidSection")
        assert "section 'fleet': assignment.role:" in cond["message"]
        assert proc.get_json("/v1/status")["health"] == "degraded"
    finally:
        assert proc.stop() == 0
