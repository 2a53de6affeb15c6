"""The status board takes each section only as its model, and the upgrade documents' schema
covers every outcome the agent records."""

from __future__ import annotations

from typing import get_args

import jsonschema
import pytest

from agent.api.upgrades import UPGRADE_SCHEMA
from agent.model.conditions import Condition
from agent.model.status import SECTION_NAMES, FleetStatus, KubeStatus, Section
from agent.model.upgrade import Code
from agent.status import StatusBoard
from agent.upgrade import blocks
from agent.upgrade.record import ALREADY_CURRENT, UpgradeRecord


def test_a_section_is_published_under_its_models_name_only() -> None:
    board = StatusBoard()
    board.set_section(KubeStatus())
    assert board.sections()["kubernetes"]["distribution"] == "none"
    with pytest.raises(TypeError, match=r"not a status section: dict \(expected one of FleetStatus, KubeStatus"):
        board.set_section({"enrolled": True})  # type: ignore[arg-type]  # mypy refuses it too
    with pytest.raises(TypeError, match="not a status section: Condition"):
        board.set_section(Condition(type="X", status="True", reason="R"))  # type: ignore[arg-type]
    assert sorted(board.sections()) == ["kubernetes"]


def test_every_section_model_has_one_name() -> None:
    assert set(SECTION_NAMES) == set(get_args(Section))
    assert sorted(SECTION_NAMES.values()) == [
        "fleet",
        "health",
        "inventory",
        "kubernetes",
        "network",
        "storage",
        "upgrade",
    ]


def test_a_section_model_refuses_fields_it_does_not_declare() -> None:
    with pytest.raises(ValueError, match="surprise"):
        FleetStatus.model_validate({"enrolled": True, "surprise": 1})


@pytest.mark.parametrize("code", ["", ALREADY_CURRENT, blocks.BLOCKED])
def test_every_recorded_outcome_fits_the_published_upgrade_schema(code: Code) -> None:
    rec = UpgradeRecord(id="abc", source="/srv/b.bundle", kind="k3s", version="v1.35.0+k3s1", code=code)
    rec.move("failed", "k3s version v1.35.0+k3s1 failed once on this box and is blocked")
    jsonschema.Draft202012Validator(UPGRADE_SCHEMA).validate(rec.document())
