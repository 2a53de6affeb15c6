from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from agent.context import AgentContext
from agent.fleet.enrollment import EnrollmentController

from .harness import RegistrarHandle, new_registrar


@pytest.fixture
async def registrar(tmp_path: Path) -> AsyncIterator[RegistrarHandle]:
    handle = new_registrar(tmp_path / "registrar")
    await handle.start()
    yield handle
    await handle.stop()
    handle.reg.registry.close()


@pytest.fixture
async def run_controller() -> AsyncIterator[Callable[..., asyncio.Task[None]]]:
    tasks: list[asyncio.Task[None]] = []

    def go(ctx: AgentContext, **kw: object) -> asyncio.Task[None]:
        controller = EnrollmentController(ctx, base_delay=0.05, **kw)  # type: ignore[arg-type]
        task = asyncio.create_task(controller.run())
        tasks.append(task)
        return task

    yield go
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
