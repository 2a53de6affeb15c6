"""The API app in process: the OpenAPI document covers exactly the routes, problems are RFC 9457."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from agent.api.app import ApiInfo, build_app, openapi_document
from agent.api.http import CTX
from agent.context import AgentContext
from agent.daemon import route_modules
from agent.model.config import AgentConfig
from agent.paths import Paths
from agent.state import StateStore
from agent.status import StatusBoard
from agent.sysexec import ProcessRunner
from agent.upgrade.installers import default_installers
from agent.upgrade.manager import UpgradeManager
from agent.watch import Watch


def make_app(tmp_path: Path) -> web.Application:
    paths = Paths(tmp_path)
    ctx = AgentContext(paths, ProcessRunner(), StatusBoard(), StateStore(paths.state_file), Watch(AgentConfig()))
    return build_app(ctx, ApiInfo(), route_modules(UpgradeManager(ctx, installers=default_installers(ctx))))


def router_paths(app: web.Application) -> set[tuple[str, str]]:
    out = set()
    for route in app.router.routes():
        if route.method != "HEAD":
            out.add((route.method.lower(), route.resource.canonical))  # type: ignore[union-attr]
    return out


def test_openapi_describes_exactly_the_routes(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    doc: dict[str, Any] = json.loads(openapi_document(app))
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


async def _problem(resp: Any) -> dict[str, Any]:
    assert resp.content_type == "application/problem+json", (resp.status, await resp.text())
    doc: dict[str, Any] = json.loads(await resp.read())
    assert doc["status"] == resp.status and doc["title"]
    return doc


async def test_deeply_nested_json_is_a_400_problem_not_a_500(tmp_path: Path, aiohttp_client: Any) -> None:
    client: TestClient = await aiohttp_client(make_app(tmp_path))
    r = await client.post("/v1/upgrades", data=b"[" * 100_000, headers={"Content-Type": "application/json"})
    assert r.status == 400
    assert "nested too deeply" in (await _problem(r))["detail"]
    metrics = await (await client.get("/metrics")).text()
    assert 'code="500"' not in metrics


@pytest.mark.parametrize(
    ("body", "ctype", "status", "detail"),
    [
        (b'{"source": ', "application/json", 400, "body: not JSON"),
        (b'{"source": "/x\xff"}', "application/json", 400, "body: not UTF-8"),
        (b"[1, 2]", "application/json", 400, "body: expected a JSON object, got list"),
        (b'"/x.tar"', "application/json", 400, "body: expected a JSON object, got str"),
        (b"null", "application/json", 400, "body: expected a JSON object"),
        (b'{"source": "/x.tar", "force": NaN}', "application/json", 400, "NaN is not JSON"),
        (b'{"source": ""}', "application/json", 400, "source: expected an http(s) URL or an absolute path"),
        (b'{"source": "/x.tar"}', "text/plain", 415, "Content-Type: expected application/json, got text/plain"),
        (b'{"source": "/x.tar"}', "application/json; charset=latin-1", 415, "charset utf-8"),
        (b'{"source": "/x.tar"}', None, 415, "Content-Type: expected application/json"),
        (b'{"source": "/x.tar", "pad": "' + b"x" * (2 << 20) + b'"}', "application/json", 413, "body: larger"),
    ],
)
async def test_malformed_bodies_are_problems_naming_what_is_wrong(
    tmp_path: Path, aiohttp_client: Any, body: bytes, ctype: str | None, status: int, detail: str
) -> None:
    client: TestClient = await aiohttp_client(make_app(tmp_path))
    headers = {"Content-Type": ctype} if ctype else {}
    r = await client.post("/v1/upgrades", data=body, headers=headers, skip_auto_headers=["Content-Type"])
    assert r.status == status, await r.text()
    assert detail in (await _problem(r))["detail"]
    listing = await (await client.get("/v1/upgrades")).json()
    assert listing["items"] == []  # nothing was started


async def test_a_chunked_body_over_the_limit_is_413(tmp_path: Path, aiohttp_client: Any) -> None:
    client: TestClient = await aiohttp_client(make_app(tmp_path))

    async def endless() -> Any:
        yield b'{"source": "/x.tar", "pad": "'
        for _ in range(64):
            yield b"x" * (64 << 10)

    r = await client.post("/v1/upgrades", data=endless(), headers={"Content-Type": "application/json"})
    assert r.status == 413
    assert "larger than the 1048576-byte limit" in (await _problem(r))["detail"]


class Throttled:
    OPENAPI_PATHS: dict[str, Any] = {"/v1/busy": {"get": {"responses": {"503": {"description": "always"}}}}}

    @staticmethod
    def add_routes(app: web.Application, ctx: AgentContext) -> None:
        async def busy(request: web.Request) -> web.StreamResponse:
            raise web.HTTPServiceUnavailable(headers={"Retry-After": "7", "X-Why": "a"})

        app.router.add_get("/v1/busy", busy)


async def test_http_errors_keep_their_headers(tmp_path: Path, aiohttp_client: Any) -> None:
    paths = Paths(tmp_path)
    ctx = AgentContext(paths, ProcessRunner(), StatusBoard(), StateStore(paths.state_file), Watch(AgentConfig()))
    client: TestClient = await aiohttp_client(
        build_app(
            ctx, ApiInfo(), [*route_modules(UpgradeManager(ctx, installers=default_installers(ctx))), Throttled()]
        )
    )
    r = await client.post("/v1/status")
    assert r.status == 405
    assert {m.strip() for m in r.headers["Allow"].split(",")} >= {"GET"}
    assert (await _problem(r))["detail"].startswith("POST is not allowed on /v1/status; allowed: GET")
    r = await client.put("/v1/upgrades")
    assert r.status == 405
    assert {m.strip() for m in r.headers["Allow"].split(",")} >= {"GET", "POST"}
    r = await client.get("/v1/busy")
    assert r.status == 503 and r.headers["Retry-After"] == "7" and r.headers["X-Why"] == "a"
    await _problem(r)


async def test_the_openapi_schema_and_the_handler_agree_on_upgrade_bodies(tmp_path: Path, aiohttp_client: Any) -> None:
    app = make_app(tmp_path)
    client: TestClient = await aiohttp_client(app)
    doc = json.loads(await (await client.get("/openapi.json")).read())
    schema = doc["paths"]["/v1/upgrades"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    validator = jsonschema.Draft202012Validator(schema)
    bodies: list[Any] = [
        {"source": ""},
        {"source": " "},
        {"source": "relative/b.tar"},
        {"source": "ftp://127.0.0.1/b.tar"},
        {"source": "HTTPS://127.0.0.1/b.tar"},
        {"source": "/a\u0000b"},
        {"source": 7},
        {"source": "/x.tar", "force": 1},
        {"source": "/x.tar", "force": "yes"},
        {"source": "/x.tar", "extra": True},
        {},
        {"source": str(tmp_path / "missing.tar")},
        {"source": str(tmp_path / "missing.tar"), "force": True},
        {"source": "http://127.0.0.1:9/b.tar"},
    ]
    for body in bodies:
        r = await client.post("/v1/upgrades", json=body)
        valid = validator.is_valid(body)
        assert r.status == (202 if valid else 400), (body, r.status, await r.text())
        if r.status == 202:
            upgrade_id = (await r.json())["id"]
            for _ in range(400):
                if (await (await client.get(f"/v1/upgrades/{upgrade_id}")).json())["state"] == "failed":
                    break
                await asyncio.sleep(0.05)
        else:
            assert (await _problem(r))["detail"].split(":")[0] in (*body, *schema["properties"], "body"), body
