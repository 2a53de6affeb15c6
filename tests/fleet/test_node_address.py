"""The registrar hands joiners a server URL on the address the first server's planner chose
(its data port), not the management port or whatever address psutil lists first.

Fleet tier: a real registrar on loopback, the real enrollment and runtime controllers, the
stand-in k3s; the server's [network] policy picks its data port from the inventory."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from agent.model.config import AgentConfig, ApiSection
from agent.model.inventory import Inventory, Nic
from agent.model.network import NetworkSection, NicSelector
from agent.watch import Watch

from .harness import RegistrarHandle, wait_for
from .test_agent_token import boxes, fleet_config, node_ready, runtimes

__all__ = ["boxes", "runtimes"]  # fixtures, used by name


def two_ports(management: str, data: str) -> Inventory:
    nics = (
        Nic(name="eno1", kind="physical", physical=True, operstate="up", addresses=(f"{management}/8",),
            speed_mbps=1000, default_route=True),
        Nic(name="ens1f0", kind="physical", physical=True, operstate="up", addresses=(f"{data}/8",),
            speed_mbps=100000),
    )  # fmt: skip
    return Inventory(scanned_at=datetime.now(UTC), nics=nics)


def on_data_port(config: AgentConfig) -> AgentConfig:
    policy = NetworkSection(selectors=[NicSelector(min_speed_mbps=25000, not_default_route=True)])
    return config.model_copy(update={"network": policy, "api": ApiSection()})  # no listen address to report first


@pytest.mark.slow
async def test_joiners_get_a_server_url_on_the_chosen_address(
    registrar: RegistrarHandle, run_controller, boxes, runtimes
) -> None:
    token = registrar.token(uses=2)
    server = boxes("srv", "10.9.1.5")  # the stand-in cluster knows the server by its data address
    server.ctx.inventory.set(two_ports("10.9.1.4", "10.9.1.5"))
    server.ctx.config = Watch(on_data_port(fleet_config(registrar, token, "srv", "10.9.1.5")))
    run_controller(server.ctx)
    runtimes(server)
    await wait_for(lambda: node_ready(server), timeout=30, what="first server Ready",
                   explain=lambda: server.ctx.board.conditions())  # fmt: skip

    agent = boxes("agt", "10.9.1.6")
    agent.ctx.config = Watch(fleet_config(registrar, token, "agt", "10.9.1.6"))
    run_controller(agent.ctx)
    runtimes(agent)
    await wait_for(lambda: agent.ctx.assignment.value is not None, timeout=30, what="agent assigned")
    assert agent.ctx.assignment.value is not None
    assert agent.ctx.assignment.value.server_url == "https://10.9.1.5:6443"
    await wait_for(lambda: node_ready(agent), timeout=30, what="agent Ready",
                   explain=lambda: agent.ctx.board.conditions())  # fmt: skip
