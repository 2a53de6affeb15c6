"""The local API application: status, health, readiness, metrics, OpenAPI.

One aiohttp app; the daemon serves it on the unix socket, and the fleet's
remote-API controller serves the same app on mTLS. Route modules of other
capabilities (inventory, upgrades) plug in through ``RouteModule``.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web
from multidict import CIMultiDict

from agent import __version__
from agent.api.http import CTX, dumps, etag_of, etag_response, problem, problem_response
from agent.api.metrics import MetricsSource, RequestMetrics, core_lines
from agent.api.openapi import build_openapi
from agent.context import AgentContext
from agent.errors import HttpProblem
from agent.model.status import STATUS_SCHEMA

log = logging.getLogger("agent.api")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class RouteModule(Protocol):
    @property
    def OPENAPI_PATHS(self) -> dict[str, Any]: ...  # read on the first GET /openapi.json

    def add_routes(self, app: web.Application, ctx: AgentContext) -> None: ...


@dataclass
class ApiInfo:
    """What the status document says about the agent process itself."""

    started_at: float = field(default_factory=time.time)
    config_digest: str = ""
    config_sources: tuple[str, ...] = ()
    restarts: dict[str, int] = field(default_factory=dict)


INFO: web.AppKey[ApiInfo] = web.AppKey("info", ApiInfo)
REQUESTS: web.AppKey[RequestMetrics] = web.AppKey("requests", RequestMetrics)
SOURCES: web.AppKey[list[MetricsSource]] = web.AppKey("metric_sources", list)


class OpenApi:
    """The OpenAPI document, rendered on its first request: the route modules' JSON schemas
    (pydantic's generator) and the indented dump cost more than anything else in building the
    app, and nothing needs them before the agent is READY."""

    def __init__(self, modules: Sequence[RouteModule] = ()) -> None:
        self.modules = tuple(modules)
        self._body: bytes | None = None

    def body(self) -> bytes:
        if self._body is None:
            self._body = json.dumps(build_openapi([m.OPENAPI_PATHS for m in self.modules]), indent=1).encode()
        return self._body


OPENAPI: web.AppKey[OpenApi] = web.AppKey("openapi", OpenApi)


def openapi_document(app: web.Application) -> bytes:
    """The app's OpenAPI document (JSON)."""
    return app[OPENAPI].body()


def status_document(ctx: AgentContext, info: ApiInfo) -> dict[str, Any]:
    board = ctx.board
    degraded = board.degraded()
    return {
        "schema": STATUS_SCHEMA,
        "agent": {
            "version": __version__,
            "pid": os.getpid(),
            "started_at": info.started_at,
            "uptime_seconds": int(time.time() - info.started_at),
            "config_digest": info.config_digest,
            "config_sources": list(info.config_sources),
        },
        "health": "degraded" if degraded else "healthy",
        "conditions": [c.model_dump(mode="json") for c in board.conditions()],
        "sections": board.sections(),
    }


class _StatusCache:
    """Serialising status on every request would dominate /v1/status: the body is kept per
    (board generation, whole second of uptime). The ETag leaves uptime out, so a poller's
    If-None-Match gets 304 until something it cares about changes."""

    def __init__(self) -> None:
        self.key: tuple[int, int] = (-1, -1)
        self.body = b""
        self.etag = ""


async def get_status(request: web.Request) -> web.StreamResponse:
    ctx, info = request.app[CTX], request.app[INFO]
    cache: _StatusCache = request.app[STATUS_CACHE]
    key = (ctx.board.generation, int(time.time() - info.started_at))
    if key != cache.key:
        doc = status_document(ctx, info)
        cache.body = dumps(doc)
        if key[0] != cache.key[0]:
            cache.etag = etag_of(dumps({**doc, "agent": {**doc["agent"], "uptime_seconds": None}}))
        cache.key = key
    return etag_response(request, cache.body, cache.etag)


STATUS_CACHE: web.AppKey[_StatusCache] = web.AppKey("status_cache", _StatusCache)


async def get_healthz(request: web.Request) -> web.StreamResponse:
    return web.json_response({"status": "ok"})


async def get_readyz(request: web.Request) -> web.StreamResponse:
    degraded = request.app[CTX].board.degraded()
    if degraded:
        return problem(
            503,
            "Not ready",
            ", ".join(f"{c.type}={c.status} ({c.reason})" for c in degraded),
            conditions=[c.type for c in degraded],
        )
    return web.json_response({"status": "ready"})


async def get_metrics(request: web.Request) -> web.StreamResponse:
    app = request.app
    info = app[INFO]
    lines = [*core_lines(app[CTX].board, info.restarts, info.started_at), *app[REQUESTS].lines()]
    for source in app[SOURCES]:
        lines.extend(source())
    return web.Response(
        text="\n".join(lines) + "\n",
        content_type="text/plain",
        charset="utf-8",
        headers={"X-Content-Type-Options": "nosniff"},
    )


async def get_openapi(request: web.Request) -> web.StreamResponse:
    return web.Response(body=openapi_document(request.app), content_type="application/json")


_BODY_HEADERS = frozenset({"content-type", "content-length", "content-encoding", "transfer-encoding"})


def _http_detail(request: web.Request, exc: web.HTTPException) -> str:
    if isinstance(exc, web.HTTPMethodNotAllowed):
        return f"{request.method} is not allowed on {request.path}; allowed: {', '.join(sorted(exc.allowed_methods))}"
    text = exc.text or ""
    return "" if text == f"{exc.status}: {exc.reason}" else text


@web.middleware
async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count and time every request; turn stray errors into problem documents."""
    t0 = time.perf_counter()
    route = request.match_info.route.resource
    name = route.canonical if route is not None else "unmatched"
    try:
        resp = await handler(request)
    except HttpProblem as exc:
        resp = problem_response(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        # the problem document replaces the body, but every other header stays (Allow, Retry-After, ...)
        kept = CIMultiDict((k, v) for k, v in exc.headers.items() if k.lower() not in _BODY_HEADERS)
        resp = problem(exc.status, exc.reason, _http_detail(request, exc), headers=kept)
    except Exception as exc:  # a bug in a handler: a problem document, counted, logged; the agent stays up
        log.exception("%s %s failed", request.method, request.path)
        resp = problem(500, "Internal Server Error", f"{type(exc).__name__} (see the agent log)")
    request.app[REQUESTS].observe(request.method, name, resp.status, time.perf_counter() - t0)
    return resp


CORE_PATHS: Sequence[tuple[str, str, Handler]] = (
    ("GET", "/v1/status", get_status),
    ("GET", "/healthz", get_healthz),
    ("GET", "/readyz", get_readyz),
    ("GET", "/metrics", get_metrics),
    ("GET", "/openapi.json", get_openapi),
)


def build_app(
    ctx: AgentContext,
    info: ApiInfo,
    modules: Sequence[RouteModule] = (),
    metric_sources: Sequence[MetricsSource] = (),
    middlewares: Sequence[Any] = (),
) -> web.Application:
    # observe is outermost, so refusals by the other middlewares (401/403) are counted too
    app = web.Application(middlewares=[observe, *middlewares], client_max_size=1 << 20)
    app[CTX] = ctx
    app[INFO] = info
    app[REQUESTS] = RequestMetrics()
    app[SOURCES] = list(metric_sources)
    app[STATUS_CACHE] = _StatusCache()
    for method, path, handler in CORE_PATHS:
        app.router.add_route(method, path, handler)
    for module in modules:
        module.add_routes(app, ctx)
    app[OPENAPI] = OpenApi(modules)
    return app
