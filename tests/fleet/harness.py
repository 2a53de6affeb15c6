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
    url: str | list[str],
    pin: str,
    token: str,
    *,
    remote_listen: str = "",
    retry_max: float = 0.5,
    heartbeat: float = 0.2,
    **fleet: Any,
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


async def wait_for(
    predicate: Callable[[], Any],
    timeout: float = 10.0,
    what: str = "condition",
    explain: Callable[[], Any] | None = None,
) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if isinstance(value, Awaitable):
            value = await value
        if value:
            return value
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}" + (f": {explain()}" if explain else ""))


def cond(ctx: AgentContext, type_: str) -> tuple[str, str] | None:
    c = ctx.board.condition(type_)
    return (c.status, c.reason) if c else None


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class ClientCert:
    cert: Path
    key: Path
    ca: Path
    serial: int


def client_cert(
    handle: RegistrarHandle,
    out: Path,
    role: str,
    name: str = "alice",
    *,
    lifetime: timedelta = timedelta(hours=1),
    ca: Any = None,
    expired: bool = False,
) -> ClientCert:
    """A client key+certificate (recorded in the registry so it can be revoked)."""
    from datetime import UTC, datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    from agent.registrar.ca import cert_pem, write_key

    authority = ca or handle.reg.ca
    key = ec.generate_private_key(ec.SECP256R1())
    if expired:
        now = datetime.now(UTC)
        name_ = x509.Name([x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, role),
                           x509.NameAttribute(NameOID.COMMON_NAME, name)])  # fmt: skip
        cert = (
            x509.CertificateBuilder().subject_name(name_).issuer_name(authority.cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=2)).not_valid_after(now - timedelta(days=1))
            .sign(authority.key, hashes.SHA256())
        )  # fmt: skip
    else:
        cert = authority.issue(key.public_key(), common_name=name, role=role, lifetime=lifetime)
    out.mkdir(parents=True, exist_ok=True)
    write_key(out / "client.key", key)
    (out / "client.pem").write_bytes(cert_pem(cert))
    (out / "ca.pem").write_bytes(cert_pem(handle.reg.ca.cert))
    if authority is handle.reg.ca:
        handle.reg.registry.add_cert(cert.serial_number, f"operator:{name}", cert.not_valid_after_utc.timestamp())
    return ClientCert(out / "client.pem", out / "client.key", out / "ca.pem", cert.serial_number)
