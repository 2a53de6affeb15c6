"""The planner's network step (pure): the policy in force, its problems, and the choice.

The fleet assignment's per-site override (``assignment.network``) replaces the
fields it sets of ``[network]``. A selector that matches no interface here is a
problem only when no selector of its list matches any: an ordered policy is
meant to fall back (``ens*f0`` on the GPU boxes, else ``eno1``). A CIDR of the
wrong family always is.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from agent.errors import ConfigProblem
from agent.model.config import AgentConfig
from agent.model.fleet import Assignment
from agent.model.inventory import Inventory
from agent.model.network import NetworkChoice, NetworkSection
from agent.network.choose import Role, choose
from agent.network.problems import network_problems

CONFIG = "[network]"
FLEET = "fleet assignment"


def policy_in_force(
    config: AgentConfig, assignment: Assignment | None
) -> tuple[NetworkSection, Literal["config", "fleet"]]:
    if assignment is not None and assignment.network is not None:
        return assignment.network.apply(config.network), "fleet"
    return config.network, "config"


def plan_network(
    config: AgentConfig,
    inventory: Inventory | None,
    assignment: Assignment | None,
    role: Role,
    since: datetime,
) -> tuple[NetworkChoice | None, list[ConfigProblem]]:
    """The choice (None: no policy, or no inventory yet) and the problems that refuse the plan."""
    policy, source = policy_in_force(config, assignment)
    if not policy.selectors or inventory is None:
        return None, []
    where = FLEET if source == "fleet" else CONFIG
    prefix = "assignment.network" if source == "fleet" else "network"
    found = network_problems(policy, inventory.nics, where, prefix)
    problems = [p for p in found if p.key.endswith(".cidr")]
    for lst, selectors in (("selectors", policy.selectors), ("external_selectors", policy.external_selectors)):
        unmatched = [p for p in found if p.key.startswith(f"{prefix}.{lst}.") and not p.key.endswith(".cidr")]
        if selectors and len(unmatched) == len(selectors):
            problems += unmatched
    if problems:
        return None, problems
    return choose(policy, inventory.nics, role, since, source), []
