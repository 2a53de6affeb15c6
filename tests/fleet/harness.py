"""A real registrar on loopback and boxes (AgentContexts on scratch roots) that enroll with it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import SecretStr

from agent.context import AgentContext
from agent.model.config import AgentConfig, ApiSection, FleetSection
from agent.paths import Paths
from agent.registrar.app import start
from agent.registrar.ca import CertificateAuthority
from agent.registrar.service import Registrar, Settings
from agent.registrar.sqlite import SqliteRegistry
from agent.registrar.tokens import TokenRecord, mint
from agent.state import StateStore
from agent.status import StatusBoard
from agent.sysexec import ProcessRunner
from agent.watch import Watch

FAST = Settings(cert_lifetime=timedelta(hours=1), retry_after=1, guess_burst=5, guess_window=60.0)


@dataclass
class RegistrarHandle:
    state_dir: Path
    reg: Registrar
    port: int = 0
    runner: web.AppRunner | None = None
    tokens: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def pin(self) -> str:
        return self.reg.ca.pin

    def token(
        self,
        uses: int = 1,
        ttl: float = 3600,
        site: str = "lab",
        labels: dict[str, str] | None = None,
        require_approval: bool = False,
    ) -> str:
        token_id, secret_hash, token = mint()
        self.reg.registry.add_token(
            TokenRecord(token_id, secret_hash, time.time() + ttl, uses, site, labels or {}, require_approval,
                        time.time())
        )  # fmt: skip
        self.tokens.append(token)
        return token

    async def start(self) -> None:
        self.runner, self.port = await start(self.reg, "127.0.0.1", self.port, ["localhost"])

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None


def new_registrar(state_dir: Path, settings: Settings = FAST) -> RegistrarHandle:
    state_dir.mkdir(parents=True, exist_ok=True)
    ca = CertificateAuthority.create()
    ca.save(state_dir)
    reg = Registrar(state_dir, ca, SqliteRegistry(state_dir / "registry.sqlite"), settings)
    return RegistrarHandle(state_dir, reg)


def box_config(
    url: str, pin: str, token: str, *, remote_listen: str = "", retry_max: float = 0.5, heartbeat: float = 0.2, **fleet: Any
) -> AgentConfig:
    return AgentConfig(
        api=ApiSection(remote_listen=remote_listen),
        fleet=FleetSection(
            url=url,
            ca_pin=pin,
            bootstrap_token=SecretStr(token),
            retry_max=retry_max,
            heartbeat_interval=heartbeat,
            **fleet,
        ),
    )


def make_box(root: Path, config: AgentConfig, machine_id: str) -> AgentContext:
    (root / "etc").mkdir(parents=True, exist_ok=True)
    (root / "etc/machine-id").write_text(machine_id + "\n")
    paths = Paths(root)
    store = StateStore(paths.state_file)
    store.load()
    return AgentContext(paths=paths, runner=ProcessRunner(), board=StatusBoard(), store=store,
                        config=Watch(config))  # fmt: skip


async def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if isinstance(value, Awaitable):
            value = await value
        if value:
            return value
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def cond(ctx: AgentContext, type_: str) -> tuple[str, str] | None:
    c = ctx.board.condition(type_)
    return (c.status, c.reason) if c else None
