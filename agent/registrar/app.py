"""The registrar's aiohttp application and how it is served."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import ssl
from typing import Protocol

from aiohttp import web
from aiohttp.typedefs import Handler

from agent.api.http import problem
from agent.errors import AgentError, RegistryUnavailable
from agent.registrar import est, membership
from agent.registrar.service import REGISTRAR, Registrar, serving_names

log = logging.getLogger("edge-registrar")

SERVING_CHECK_INTERVAL = 6 * 3600.0  # how often a long-running registrar checks its serving certificate
UNAVAILABLE_RETRY_AFTER = 10  # seconds a box is asked to wait while the database is unreachable


@web.middleware
async def _unavailable(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The database out of reach: 503 + Retry-After (boxes back off and come again), never a 500;
    the next request after it is back is served as usual (the pool reconnects by itself)."""
    try:
        return await handler(request)
    except RegistryUnavailable as exc:
        log.warning("%s %s: 503: %s", request.method, request.path, exc)
        resp = problem(503, "Service Unavailable", "the registry's database is unreachable; retry later")
        resp.headers["Retry-After"] = str(UNAVAILABLE_RETRY_AFTER)
        return resp


def build_app(reg: Registrar) -> web.Application:
    app = web.Application(client_max_size=4 << 20, middlewares=[_unavailable])
    app[REGISTRAR] = reg
    est.add_routes(app)
    membership.add_routes(app)
    return app


async def start(reg: Registrar, host: str, port: int, sans: list[str]) -> tuple[web.AppRunner, int]:
    """Serve on HOST:PORT (port 0 picks one); returns the runner and the bound port."""
    runner, bound, _ = await _start(reg, host, port, serving_names(host, sans))
    return runner, bound


async def _start(reg: Registrar, host: str, port: int, names: list[str]) -> tuple[web.AppRunner, int, ssl.SSLContext]:
    ssl_ctx = reg.ssl_context(names)
    runner = web.AppRunner(build_app(reg), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=ssl_ctx, backlog=1024)
    await site.start()
    bound = port
    if port == 0:
        bound = next((a[1] for a in runner.addresses if isinstance(a, tuple)), port)
    return runner, bound, ssl_ctx


async def _keep_serving_cert(reg: Registrar, ctx: ssl.SSLContext, names: list[str]) -> None:
    while True:
        await asyncio.sleep(SERVING_CHECK_INTERVAL)
        try:
            reg.renew_serving(ctx, names)
        except (AgentError, OSError, ssl.SSLError) as exc:
            log.error("serving certificate not renewed: %s", exc)


class Background(Protocol):
    """Work a replica does beside serving: its shard of the poll (ShardPoller), of rollouts (RolloutWorker)."""

    async def run(self) -> None: ...


async def serve_forever(reg: Registrar, host: str, port: int, sans: list[str], *work: Background) -> None:
    """Serve until SIGTERM/SIGINT, running ``work`` beside."""
    names = serving_names(host, sans)
    runner, bound, ctx = await _start(reg, host, port, names)
    renew = asyncio.create_task(_keep_serving_cert(reg, ctx, names))
    background = [asyncio.create_task(w.run()) for w in work]
    log.info("edge-registrar listening on %s:%d (CA %s)", host, bound, reg.ca.pin)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        renew.cancel()
        for task in background:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await runner.cleanup()
