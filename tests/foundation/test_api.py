"""The API app in process: the OpenAPI document covers exactly the routes, problems are RFC 9457."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from agent.api.app import OPENAPI, ApiInfo, build_app
from agent.api.http import CTX
from agent.context import AgentContext
from agent.daemon import route_modules
from agent.model.config import AgentConfig
from agent.paths import Paths
from agent.state import StateStore
from agent.status import StatusBoard
from agent.sysexec import ProcessRunner
from agent.upgrade.manager import UpgradeManager
from agent.watch import Watch


def make_app(tmp_path: Path) -> web.Application:
    paths = Paths(tmp_path)
    ctx = AgentContext(paths, ProcessRunner(), StatusBoard(), StateStore(paths.state_file), Watch(AgentConfig()))
    return build_app(ctx, ApiInfo(), route_modules(UpgradeManager(ctx)))


def router_paths(app: web.Application) -> set[tuple[str, str]]:
    out = set()
    for route in app.router.routes():
        if route.method != "HEAD":
            out.add((route.method.lower(), route.resource.canonical))  # type: ignore[union-attr]
    return out


def test_openapi_describes_exactly_the_routes(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    doc: dict[str, Any] = json.loads(app[OPENAPI])
    documented = {(m, p) for p, item in doc["paths"].items() for m in item if m in ("get", "post", "put", "delete")}
    assert documented == router_paths(app)
    for item in doc["paths"].values():
        for op in item.values():
            assert op["responses"], op


async def test_status_readyz_and_problem(tmp_path: Path, aiohttp_client: Any) -> None:
    app = make_app(tmp_path)
    client: TestClient = await aiohttp_client(app)
    r = await client.get("/readyz")
    assert r.status == 200
    app[CTX].board.set_condition("Enrolled", "False", "Unreachable", "registrar down")
    r = await client.get("/readyz")
    assert r.status == 503 and r.content_type == "application/problem+json"
    body = await r.json()
    assert body["conditions"] == ["Enrolled"] and "Enrolled=False (Unreachable)" in body["detail"]
    r = await client.post("/v1/status")
    assert r.status == 405 and r.content_type == "application/problem+json"


async def test_status_etag_ignores_uptime(tmp_path: Path, aiohttp_client: Any) -> None:
    client: TestClient = await aiohttp_client(make_app(tmp_path))
    r1 = await client.get("/v1/status")
    etag = r1.headers["ETag"]
    await asyncio.sleep(1.1)  # uptime_seconds moves on
    r2 = await client.get("/v1/status", headers={"If-None-Match": etag})
    assert r2.status == 304
    client.app[CTX].board.set_condition("Enrolled", "True", "Enrolled")
    r3 = await client.get("/v1/status", headers={"If-None-Match": etag})
    assert r3.status == 200 and r3.headers["ETag"] != etag


class Broken:
    OPENAPI_PATHS: dict[str, Any] = {"/v1/broken": {"get": {"responses": {"500": {"description": "always"}}}}}

    @staticmethod
    def add_routes(app: web.Application, ctx: AgentContext) -> None:
        async def boom(request: web.Request) -> web.StreamResponse:
            raise KeyError("oops")

        app.router.add_get("/v1/broken", boom)


async def test_a_handler_bug_is_a_counted_problem_document(tmp_path: Path, aiohttp_client: Any) -> None:
    paths = Paths(tmp_path)
    ctx = AgentContext(paths, ProcessRunner(), StatusBoard(), StateStore(paths.state_file), Watch(AgentConfig()))
    client: TestClient = await aiohttp_client(build_app(ctx, ApiInfo(), [Broken()]))
    r = await client.get("/v1/broken")
    assert r.status == 500 and r.content_type == "application/problem+json"
    assert "KeyError" in (await r.json())["detail"]
    metrics = await (await client.get("/metrics")).text()
    assert 'edge_agent_api_requests_total{method="GET",route="/v1/broken",code="500"} 1' in metrics
