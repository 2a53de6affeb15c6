"""GET /v1/inventory: the cached hardware inventory and the node labels derived from it.

The document (``schema: edge-agent.inventory/v1``) is rendered once per
inventory version and served with an ETag, so ``agentctl inventory`` and
fleet pollers get the daemon's cached copy without rescanning anything.
"""

from __future__ import annotations

import functools
from typing import Any

from aiohttp import web

from agent.api.http import CTX, json_etag, problem
from agent.api.openapi import PROBLEM, model_schema
from agent.context import AgentContext
from agent.inventory.document import SCHEMA
from agent.inventory.labels import node_labels
from agent.model.inventory import Inventory


class _Rendered:
    """The JSON document of one inventory version (rendered on first request)."""

    def __init__(self) -> None:
        self.version = -1
        self.doc: dict[str, Any] = {}


RENDERED: web.AppKey[_Rendered] = web.AppKey("inventory_rendered", _Rendered)


def inventory_document(inv: Inventory) -> dict[str, Any]:
    return {"schema": SCHEMA, "inventory": inv.model_dump(mode="json"), "labels": node_labels(inv)}


async def get_inventory(request: web.Request) -> web.StreamResponse:
    watch = request.app[CTX].inventory
    inv = watch.value
    if inv is None:
        resp = problem(503, "Inventory not ready", "the first hardware scan has not finished yet; retry shortly")
        resp.headers["Retry-After"] = "1"
        return resp
    cache = request.app[RENDERED]
    if cache.version != watch.version:
        cache.doc, cache.version = inventory_document(inv), watch.version
    return json_etag(request, cache.doc)


def add_routes(app: web.Application, ctx: AgentContext) -> None:
    app[RENDERED] = _Rendered()
    app.router.add_get("/v1/inventory", get_inventory)


def _inventory_schema() -> dict[str, Any]:
    inventory = model_schema(Inventory)
    return {
        "type": "object",
        "required": ["schema", "inventory", "labels"],
        "properties": {
            "schema": {"const": SCHEMA},
            "inventory": inventory,
            "labels": {
                "type": "object",
                "description": "Kubernetes node labels (NFD format and edge-agent.io/)",
                "additionalProperties": {"type": "string", "maxLength": 63},
            },
        },
    }


# Built on first use (the module's __getattr__): pydantic's JSON schema of Inventory takes ~10 ms,
# and only GET /openapi.json reads it.
OPENAPI_PATHS: dict[str, Any]


def __getattr__(name: str) -> Any:
    if name == "OPENAPI_PATHS":
        return _openapi_paths()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@functools.cache
def _openapi_paths() -> dict[str, Any]:
    return {
        "/v1/inventory": {
            "get": {
                "summary": "Hardware inventory (system, PCI, NVMe, disks, GPUs, NICs) and derived node labels",
                "description": "A null field has its reason under the record's `problems` map.",
                "parameters": [{"name": "If-None-Match", "in": "header", "schema": {"type": "string"}}],
                "responses": {
                    "200": {
                        "description": "the inventory of the last scan",
                        "content": {"application/json": {"schema": _inventory_schema()}},
                    },
                    "304": {"description": "unchanged since the given ETag"},
                    "503": {
                        "description": "the first scan has not finished (Retry-After)",
                        "content": {"application/problem+json": {"schema": PROBLEM}},
                    },
                },
            }
        }
    }
