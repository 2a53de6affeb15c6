"""The registrar's aiohttp application and how it is served."""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web

from agent.registrar import est, membership
from agent.registrar.service import REGISTRAR, Registrar, serving_names

log = logging.getLogger("edge-registrar")


def build_app(reg: Registrar) -> web.Application:
    app = web.Application(client_max_size=4 << 20)
    app[REGISTRAR] = reg
    est.add_routes(app)
    membership.add_routes(app)
    return app


async def start(reg: Registrar, host: str, port: int, sans: list[str]) -> tuple[web.AppRunner, int]:
    """Serve on HOST:PORT (port 0 picks one); returns the runner and the bound port."""
    ssl_ctx = reg.ssl_context(serving_names(host, sans))
    runner = web.AppRunner(build_app(reg), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=ssl_ctx, backlog=1024)
    await site.start()
    bound = port
    if port == 0:
        bound = next((a[1] for a in runner.addresses if isinstance(a, tuple)), port)
    return runner, bound


async def serve_forever(reg: Registrar, host: str, port: int, sans: list[str]) -> None:
    runner, bound = await start(reg, host, port, sans)
    log.info("edge-registrar listening on %s:%d (CA %s)", host, bound, reg.ca.pin)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
