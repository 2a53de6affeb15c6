"""Agents join with the cluster's agent token, never the server token (contract A4, A9).

Fleet tier: a real registrar on loopback, two boxes running the real enrollment and runtime
controllers against the stand-in k3s; then what is on the agent's disk. Plus the stand-in's side
of the contract: the agent token joins agents only, the server token joins both.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import yaml
from pydantic import SecretStr

from agent.model.config import AgentConfig, AgentSection, ApiSection, FleetSection, KubernetesSection
from agent.watch import Watch
from tests.runtime.boxes import Box

from .harness import RegistrarHandle, cond, wait_for

SERVER_TOKEN = "var/lib/rancher/k3s/server/token"
AGENT_TOKEN = "var/lib/rancher/k3s/server/agent-token"


@pytest.fixture
def boxes(tmp_path: Path) -> Iterator[Callable[[str, str], Box]]:
    made: list[Box] = []

    def make(name: str, address: str) -> Box:
        box = Box(name, tmp_path / name, address, tmp_path / "cluster")
        (box.root / "etc").mkdir(parents=True, exist_ok=True)
        (box.root / "etc/machine-id").write_text(name.encode().hex().ljust(32, "0")[:32] + "\n")
        box.bundle("k3s")
        made.append(box)
        return box

    yield make
    for box in made:
        box.stop_all()


@pytest.fixture
async def runtimes() -> AsyncIterator[Callable[[Box], None]]:
    tasks: list[asyncio.Task[None]] = []

    def go(box: Box) -> None:
        tasks.append(asyncio.create_task(box.controller().run()))

    yield go
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def fleet_config(handle: RegistrarHandle, token: str, name: str, address: str) -> AgentConfig:
    return AgentConfig(
        agent=AgentSection(node_name=name),
        # the box reports its listen address first: the stand-in cluster knows the server by it
        api=ApiSection(remote_listen=f"{address}:7443"),
        fleet=FleetSection(
            url=handle.url, ca_pin=handle.pin, bootstrap_token=SecretStr(token), retry_max=0.5, heartbeat_interval=0.2
        ),
        kubernetes=KubernetesSection(start_timeout=5.0),
    )


def node_ready(box: Box) -> bool:
    c = box.ctx.board.condition("NodeReady")
    return c is not None and c.status == "True"


@pytest.mark.slow
async def test_a_joined_agent_holds_the_agent_token_never_the_server_token(
    registrar: RegistrarHandle, run_controller, boxes, runtimes
) -> None:
    token = registrar.token(uses=2)
    server = boxes("srv", "127.0.0.2")
    server.ctx.config = Watch(fleet_config(registrar, token, "srv", "127.0.0.2"))
    run_controller(server.ctx)
    runtimes(server)
    await wait_for(lambda: node_ready(server), timeout=30, what="first server Ready",
                   explain=lambda: server.ctx.board.conditions())  # fmt: skip

    server_token = (server.root / SERVER_TOKEN).read_text().strip()
    agent_token = (server.root / AGENT_TOKEN).read_text().strip()
    assert not (server.root / AGENT_TOKEN).is_symlink()
    assert agent_token.startswith(server_token.split("::")[0] + "::node:")  # K10<same CA hash>::node:<password>
    assert "agent-token" in yaml.safe_load((server.root / "etc/rancher/k3s/config.yaml").read_text())

    agent = boxes("agt", "127.0.0.3")
    agent.ctx.config = Watch(fleet_config(registrar, token, "agt", "127.0.0.3"))
    run_controller(agent.ctx)
    runtimes(agent)
    await wait_for(lambda: node_ready(agent), timeout=30, what="agent Ready",
                   explain=lambda: agent.ctx.board.conditions())  # fmt: skip
    assert agent.ctx.assignment.value is not None and agent.ctx.assignment.value.role == "agent"
    assert cond(agent.ctx, "Assigned") == ("True", "Assigned")

    env = (agent.root / "etc/systemd/system/k3s-agent.service.env").read_text()
    assert env == f"K3S_TOKEN={agent_token}\n"
    server_password = server_token.rpartition(":")[2]
    on_disk = [p for p in agent.root.rglob("*") if p.is_file() and not p.is_symlink()]
    leaks = [str(p) for p in on_disk if server_password.encode() in p.read_bytes()]
    assert leaks == []  # not in config.yaml, the env file, the kept assignment, anywhere
    assert registrar.reg.registry.get_cluster("lab").agent_token == agent_token  # type: ignore[union-attr]


def config_box(box: Box, **kube: object) -> None:
    box.ctx.config = Watch(box.config(**kube))


@pytest.mark.slow
async def test_the_agent_token_joins_agents_only(boxes) -> None:
    server = boxes("srv", "10.9.0.1")
    config_box(server, distribution="k3s", cluster_init=True, token="clustersecret")
    await server.converge(server.controller(), timeout=30)
    tokens = server.ctx.join_tokens.value
    assert tokens is not None
    server_token, agent_token = tokens.server.get_secret_value(), tokens.agent.get_secret_value()
    assert "::node:" in agent_token and server_token.endswith("::server:clustersecret")

    # a server joining with the agent token is refused (and never becomes Ready) ...
    intruder = boxes("srv2", "10.9.0.2")
    config_box(intruder, distribution="k3s", server_url="https://10.9.0.1:6443", token=agent_token,
               start_timeout=0.6)  # fmt: skip
    # a loaded machine may need more than one 0.6 s start window before the refusal is in the journal
    await intruder.converge(intruder.controller(), until=lambda: intruder.cond("Running").reason == "TokenRejected")
    running = intruder.cond("Running")
    assert (running.status, running.reason) == ("False", "TokenRejected"), running
    assert "401 Unauthorized" in intruder.journal("k3s")

    # ... an agent joins with it, and one with the server-form token still does too (k3s accepts it)
    for name, address, join in (("agt1", "10.9.0.3", agent_token), ("agt2", "10.9.0.4", server_token)):
        agent = boxes(name, address)
        config_box(agent, distribution="k3s", role="agent", server_url="https://10.9.0.1:6443", token=join)
        await agent.converge(agent.controller(), timeout=30)
    nodes = server.run(str(server.root / "usr/local/bin/k3s"), "kubectl", "get", "nodes").stdout
    assert "agt1" in nodes and "agt2" in nodes and "srv2" not in nodes


def test_only_the_first_server_renders_an_agent_token() -> None:
    from agent.model.desired import DesiredKube
    from agent.runtime.layout import K3S
    from agent.runtime.render import Facts, render_k3s

    facts = Facts(node_name="n", agent_token="a1b2c3")

    def config(**kw: object) -> dict[str, object]:
        d = DesiredKube.model_validate({"origin": "fleet", "distribution": "k3s", **kw})
        spec = next(f for f in render_k3s(d, facts).files if f.path == K3S.config)
        assert spec.mode == 0o600
        return dict(yaml.safe_load(spec.data))

    assert config(role="server", cluster_init=True)["agent-token"] == "a1b2c3"
    joined = {"server_url": "https://10.0.0.1:6443", "token": "K10x::server:y"}
    assert "agent-token" not in config(role="server", **joined)  # joining servers get it from the cluster
    assert "agent-token" not in config(role="agent", **joined)
