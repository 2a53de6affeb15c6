"""Typed health readings: the models live in agent.model.health (data only)."""

from __future__ import annotations

from agent.model.health import GpuHealth, HealthReport, NicHealth, NvmeHealth, Problem

__all__ = ["GpuHealth", "HealthReport", "NicHealth", "NvmeHealth", "Problem"]
