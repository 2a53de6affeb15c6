"""A runtime controller that is cancelled stops, whenever the cancellation lands.

The daemon and the supervisor stop controllers by cancelling them; one that swallowed the
cancellation would keep polling k3s after shutdown and hang the daemon's exit. The window that
used to do it: the moment the controller was tidying up its watch waiters after a change.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from agent.model.config import AgentConfig

from .boxes import Box


async def test_a_cancellation_during_the_wait_for_change_always_stops_the_controller(
    make_box: Callable[..., Box],
) -> None:
    box = make_box("edge-1", "10.0.0.1")
    box.set_config()
    ctl = box.controller()
    swallowed = []
    for offset in range(12):  # land the cancellation on every step of the tidy-up in turn
        task = asyncio.create_task(ctl._wait_for_change())
        await asyncio.sleep(0)  # the waiters are in place
        agent = box.ctx.config.value.agent.model_copy(update={"node_name": f"n{offset}"})
        box.ctx.config.set(AgentConfig(agent=agent))
        for _ in range(offset):
            await asyncio.sleep(0)
        if task.done():  # it saw the change and returned before the cancellation came: nothing to swallow
            continue
        task.cancel()
        try:
            await asyncio.wait_for(task, 2)
        except asyncio.CancelledError:
            continue
        if not task.cancelled():
            swallowed.append(offset)
    assert swallowed == [], f"the cancellation was swallowed at steps {swallowed}"
