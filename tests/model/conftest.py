"""The fleet tier's fixtures (a registrar on loopback, enrollment controllers) for the model tests."""

from tests.fleet.conftest import registrar, run_controller

__all__ = ["registrar", "run_controller"]
