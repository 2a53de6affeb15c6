"""The status board takes each section only as its model, and the upgrade documents' schema
covers every outcome the agent records."""

from __future__ import annotations

import jsonschema
import pytest

from agent.api.upgrades import UPGRADE_SCHEMA
from agent.model.health import HealthReport
from agent.model.status import FleetStatus, KubeStatus
from agent.model.upgrade import Code
from agent.status import StatusBoard
from agent.upgrade import blocks
from agent.upgrade.record import ALREADY_CURRENT, UpgradeRecord


def test_a_section_is_published_only_as_its_own_model() -> None:
    board = StatusBoard()
    board.set_section("kubernetes", KubeStatus())
    assert board.sections()["kubernetes"]["distribution"] == "none"
    with pytest.raises(TypeError, match="status section 'fleet': expected FleetStatus, got KubeStatus"):
        board.set_section("fleet", KubeStatus())  # type: ignore[call-overload]  # mypy refuses it too
    with pytest.raises(TypeError, match="status section 'fleet': expected FleetStatus, got dict"):
        board.set_section("fleet", {"enrolled": True})  # type: ignore[call-overload]
    with pytest.raises(
        TypeError, match="'gpu': expected one of fleet, health, inventory, kubernetes, network, storage, upgrade"
    ):
        board.set_section("gpu", HealthReport(summary="x"))  # type: ignore[call-overload]
    assert sorted(board.sections()) == ["kubernetes"]


def test_a_section_model_refuses_fields_it_does_not_declare() -> None:
    with pytest.raises(ValueError, match="surprise"):
        FleetStatus.model_validate({"enrolled": True, "surprise": 1})


@pytest.mark.parametrize("code", ["", ALREADY_CURRENT, blocks.BLOCKED])
def test_every_recorded_outcome_fits_the_published_upgrade_schema(code: Code) -> None:
    rec = UpgradeRecord(id="abc", source="/srv/b.bundle", kind="k3s", version="v1.35.0+k3s1", code=code)
    rec.move("failed", "k3s version v1.35.0+k3s1 failed once on this box and is blocked")
    jsonschema.Draft202012Validator(UPGRADE_SCHEMA).validate(rec.document())
