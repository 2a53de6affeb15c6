"""The API app in process: the OpenAPI document covers exactly the routes, problems are RFC 9457."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from agent.api.app import OPENAPI, ApiInfo, build_app
from agent.api.http import CTX
from agent.context import AgentContext
from agent.daemon import ROUTE_MODULES
from agent.model.config import AgentConfig
from agent.paths import Paths
from agent.state import StateStore
from agent.status import StatusBoard
from agent.sysexec import ProcessRunner
from agent.watch import Watch


def make_app(tmp_path: Path) -> web.Application:
    paths = Paths(tmp_path)
    ctx = AgentContext(paths, ProcessRunner(), StatusBoard(), StateStore(paths.state_file), Watch(AgentConfig()))
    return build_app(ctx, ApiInfo(), ROUTE_MODULES)


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
