"""What blocks a candidate agent version from committing."""

from __future__ import annotations

from agent.status import StatusBoard
from agent.upgrade.health import FLEET_REACHABLE, board_problems


async def test_fleet_reachability_is_required_on_an_enrolled_box() -> None:
    board = StatusBoard()
    board.set_condition("FleetHealthy", "True", "Running")
    board.set_condition("Enrolled", "True", "Restored")
    assert board_problems(board) == []
    assert board_problems(board, FLEET_REACHABLE) == ["RemoteApiListening=missing"]
    board.set_condition("RemoteApiListening", "False", "BindFailed", "address in use")
    assert board_problems(board, FLEET_REACHABLE) == ["RemoteApiListening=False"]
    board.set_condition("RemoteApiListening", "True", "Listening")
    assert board_problems(board, FLEET_REACHABLE) == []
    board.set_condition("FleetHealthy", "False", "Crashed", "boom")
    assert board_problems(board, FLEET_REACHABLE) == ["FleetHealthy=False (Crashed)"]
