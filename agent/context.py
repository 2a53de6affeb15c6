"""What the composition root hands to every controller: the seams and the shared watches.

config, inventory and assignment are the planner's inputs; desired is its one output,
which the reconcilers act on.

Built once in agent.daemon; nothing here is a module-level singleton.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from agent.model.config import AgentConfig
from agent.model.desired import Desired
from agent.model.fleet import Assignment, JoinTokens
from agent.model.inventory import Inventory
from agent.paths import Paths
from agent.state import StateStore
from agent.status import StatusBoard
from agent.sysexec import Runner
from agent.watch import Watch


@dataclass
class AgentContext:
    paths: Paths
    runner: Runner
    board: StatusBoard
    store: StateStore
    config: Watch[AgentConfig]
    inventory: Watch[Inventory | None] = field(default_factory=lambda: Watch(None))
    assignment: Watch[Assignment | None] = field(default_factory=lambda: Watch(None))
    join_tokens: Watch[JoinTokens | None] = field(default_factory=lambda: Watch(None))
    # the one desired state, published by the planner controller (agent.planning); the daemon
    # plans once before any controller starts, so readers never see this empty default there
    desired: Watch[Desired] = field(default_factory=lambda: Watch(Desired()))
