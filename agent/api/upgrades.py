"""Upgrade routes: POST /v1/upgrades, GET /v1/upgrades, GET|DELETE /v1/upgrades/{id}.

POST takes ``{"source": "<https URL or absolute path>", "force": false}`` and
answers 202 with the upgrade document (and Location); 409 while another
upgrade is running. DELETE cancels an upgrade that has not switched yet (a
deferred one, say). Remote callers need ``fleet:operator`` to POST or DELETE
(enforced by the API's authorization by method).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from agent.api.body import MAX_BODY, read_json, request_schema
from agent.api.http import json_etag, problem
from agent.api.openapi import model_schema
from agent.context import AgentContext
from agent.errors import BundleError, UpgradeBusy, UpgradeRefused
from agent.model.upgrade import LIST_SCHEMA, UpgradeDocument, UpgradeList
from agent.upgrade.manager import UpgradeManager

UPGRADES: web.AppKey[UpgradeManager] = web.AppKey("upgrades", UpgradeManager)


class UpgradeRequest(BaseModel):
    """The body of POST /v1/upgrades: validated by ``read_json``, documented by its JSON schema."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # agent.upgrade.download.is_url decides URL vs path by the same prefixes
    source: str = Field(
        min_length=1,
        pattern=r"^(https?://|/)[^\x00]*$",
        description="an http(s) URL or an absolute path to a bundle",
    )
    force: bool = Field(default=False, description="retry a blocked version")


async def post_upgrade(request: web.Request) -> web.StreamResponse:
    body = await read_json(request, UpgradeRequest)
    manager = request.app[UPGRADES]
    try:
        rec = manager.start(body.source, force=body.force)
    except UpgradeBusy as exc:
        return problem(409, "Upgrade in progress", str(exc), active=exc.active.id)
    except (BundleError, UpgradeRefused) as exc:
        return problem(400, "Bad request", str(exc))
    resp = web.json_response(rec.document(), status=202)
    resp.headers["Location"] = f"/v1/upgrades/{rec.id}"
    return resp


async def list_upgrades(request: web.Request) -> web.StreamResponse:
    manager = request.app[UPGRADES]
    manager.publish_progress()
    return json_etag(
        request,
        {
            "schema": LIST_SCHEMA,
            "active": manager.active.id if manager.active else None,
            "items": [r.document() for r in manager.list()],
        },
    )


async def get_upgrade(request: web.Request) -> web.StreamResponse:
    manager = request.app[UPGRADES]
    manager.publish_progress()
    rec = manager.get(request.match_info["id"])
    if rec is None:
        return problem(404, "Not found", f"no upgrade with id {request.match_info['id']!r}")
    return json_etag(request, rec.document())


async def cancel_upgrade(request: web.Request) -> web.StreamResponse:
    manager = request.app[UPGRADES]
    try:
        rec = await manager.cancel(request.match_info["id"])
    except KeyError:
        return problem(404, "Not found", f"no upgrade with id {request.match_info['id']!r}")
    except UpgradeBusy as exc:
        return problem(409, "Cannot cancel", str(exc), active=exc.active.id)
    return web.json_response(rec.document())


class UpgradeRoutes:
    """The upgrade routes as a route module, serving the one manager the daemon built."""

    def __init__(self, manager: UpgradeManager) -> None:
        self.manager = manager
        self.OPENAPI_PATHS = OPENAPI_PATHS

    def add_routes(self, app: web.Application, ctx: AgentContext) -> None:
        manager = self.manager
        app[UPGRADES] = manager

        async def close(_: web.Application) -> None:
            await manager.close()

        app.on_cleanup.append(close)
        app.router.add_post("/v1/upgrades", post_upgrade)
        app.router.add_get("/v1/upgrades", list_upgrades)
        app.router.add_get("/v1/upgrades/{id}", get_upgrade)
        app.router.add_delete("/v1/upgrades/{id}", cancel_upgrade)


_PROBLEM = {"$ref": "#/components/schemas/Problem"}

UPGRADE_SCHEMA: dict[str, Any] = model_schema(UpgradeDocument)


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/problem+json": {"schema": _PROBLEM}}}


_IF_NONE_MATCH = {"name": "If-None-Match", "in": "header", "schema": {"type": "string"}}
_ID_LINKS = {
    op: {"operationId": op, "parameters": {"id": "$response.body#/id"}} for op in ("getUpgrade", "cancelUpgrade")
}

OPENAPI_PATHS: dict[str, Any] = {
    "/v1/upgrades": {
        "post": {
            "summary": "Start an upgrade from a signed bundle (URL or local path); one at a time",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": request_schema(UpgradeRequest)}},
            },
            "operationId": "startUpgrade",
            "responses": {
                "202": {
                    **_json(UPGRADE_SCHEMA, "accepted; follow Location"),
                    "headers": {"Location": {"description": "/v1/upgrades/{id}", "schema": {"type": "string"}}},
                    "links": _ID_LINKS,
                },
                "400": _problem("bad request: not JSON, not an object, or a field out of its schema"),
                "409": _problem("another upgrade is in progress"),
                "413": _problem(f"body larger than {MAX_BODY} bytes"),
                "415": _problem("Content-Type is not application/json"),
            },
        },
        "get": {
            "summary": "Recent upgrades, newest first",
            "parameters": [_IF_NONE_MATCH],
            "responses": {
                "200": _json(model_schema(UpgradeList), "upgrades"),
                "304": {"description": "unchanged since the given ETag"},
            },
        },
    },
    "/v1/upgrades/{id}": {
        "get": {
            "summary": "One upgrade: state, progress, reason",
            "operationId": "getUpgrade",
            "parameters": [
                {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}},
                _IF_NONE_MATCH,
            ],
            "responses": {
                "200": _json(UPGRADE_SCHEMA, "the upgrade"),
                "304": {"description": "unchanged since the given ETag"},
                "404": _problem("no such upgrade"),
            },
        },
        "delete": {
            "summary": "Cancel an upgrade that has not switched yet (downloading, verifying, staged)",
            "operationId": "cancelUpgrade",
            "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {
                "200": _json(UPGRADE_SCHEMA, "cancelled: now failed with reason 'cancelled by the operator'"),
                "404": _problem("no such upgrade"),
                "409": _problem("already switching, checking or final"),
            },
        },
    },
}
