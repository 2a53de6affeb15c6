"""The remote-API controller ("remote-api"): serve the agent's app on mTLS once the box has an identity.

Listens on ``api.remote_listen`` with the node certificate; picks up a
renewed certificate and a new CRL by reloading the same SSLContext, so the
listener never drops; moves the listener when the config changes.
Condition ``RemoteApiListening``. The listener itself (handshake deadline,
connection cap, what is counted in ``/metrics``) is agent.fleet.listener.

Reads: ctx.config (``api.remote_listen``), the identity files (certificate, key, CRL).
Writes: the remote listener, condition ``RemoteApiListening``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os

from aiohttp import web

from agent.api.metrics import ConnectionCounters
from agent.api.mtls import FleetTLSContext, load_crl, reload_identity, server_context
from agent.context import AgentContext
from agent.fleet.addresses import split_listen
from agent.fleet.identity import IdentityFiles
from agent.fleet.listener import HANDSHAKE_TIMEOUT, GuardedTLSListener

log = logging.getLogger("agent.fleet.remote")

Stamp = tuple[int, int, int] | None


def _stamp(path: os.PathLike[str]) -> Stamp:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


class RemoteApiController:
    name = "remote-api"

    def __init__(
        self,
        ctx: AgentContext,
        app_runner: web.AppRunner,
        *,
        poll_interval: float = 1.0,
        counters: ConnectionCounters | None = None,
        max_connections: int | None = None,
        handshake_timeout: float = HANDSHAKE_TIMEOUT,
    ) -> None:
        self.ctx = ctx
        self.runner = app_runner
        self.poll_interval = poll_interval
        self.counters = counters or ConnectionCounters()
        self.max_connections = max_connections
        self.handshake_timeout = handshake_timeout
        self.files = IdentityFiles(ctx.paths.identity_dir)
        self._site: GuardedTLSListener | None = None
        self._listen: tuple[str, int] | None = None
        self._tls: FleetTLSContext | None = None
        self._stamps: tuple[Stamp, Stamp] = (None, None)

    async def run(self) -> None:
        try:
            while True:
                version = self.ctx.config.version
                await self._step()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.ctx.config.wait_newer(version), self.poll_interval)
        finally:
            await self._stop()

    async def _step(self) -> None:
        try:
            listen = split_listen(self.ctx.config.value.api.remote_listen)
        except ValueError as exc:
            await self._stop()
            self._cond("False", "BadConfig", str(exc), info=False)
            return
        if listen is None:
            await self._stop()
            self._cond("False", "Disabled", "api.remote_listen is empty")
            return
        if not self.files.complete():
            self._cond("False", "NoIdentity", "waiting for the box to enroll in its fleet")
            return
        if self._site is None or listen != self._listen:
            await self._stop()
            await self._start(listen)
        else:
            self._reload()

    async def _start(self, listen: tuple[str, int]) -> None:
        f = self.files
        try:
            tls = server_context(f.cert, f.key, f.ca, f.crl)
            server = self.runner.server
            assert server is not None, "the app runner is set up before the controllers start"
            site = GuardedTLSListener(
                server,
                tls,
                self.counters,
                max_connections=self.max_connections,
                handshake_timeout=self.handshake_timeout,
            )
            await site.start(*listen)
        except (OSError, ValueError) as exc:
            self._cond("False", "ListenFailed", f"{listen[0]}:{listen[1]}: {exc}", info=False)
            return
        self._site, self._listen, self._tls = site, listen, tls
        self._stamps = (_stamp(f.cert), _stamp(f.crl))
        log.info("remote API listening on %s:%d (mTLS, at most %d connections)", *listen, site.max_connections)
        self._cond("True", "Listening", f"mTLS on {listen[0]}:{listen[1]}")

    def _reload(self) -> None:
        assert self._tls is not None
        f = self.files
        cert_stamp, crl_stamp = _stamp(f.cert), _stamp(f.crl)
        try:
            if cert_stamp != self._stamps[0]:
                reload_identity(self._tls, f.cert, f.key)
                log.info("remote API: certificate reloaded")
            if crl_stamp != self._stamps[1] and crl_stamp is not None:
                load_crl(self._tls, f.crl)
                log.info("remote API: CRL reloaded (%d revoked)", len(self._tls.revoked_serials))
        except (OSError, ValueError) as exc:
            self._cond("True", "ReloadFailed", f"kept the previous certificate/CRL: {exc}", info=False)
            return
        self._stamps = (cert_stamp, crl_stamp)

    async def _stop(self) -> None:
        if self._site is not None:
            await self._site.stop()
            self._site, self._listen, self._tls = None, None, None

    def _cond(self, status: str, reason: str, message: str, *, info: bool = True) -> None:
        self.ctx.board.set_condition(
            "RemoteApiListening",
            "True" if status == "True" else "False",
            reason,
            message,
            severity="info" if info else "error",
        )
