"""The OpenAPI 3.1 document of the agent API: core paths here, the rest from route modules.

Document schemas are generated from the models in agent.model (``model_schema``): the status
document from agent.model.status.StatusDocument, the upgrade documents from agent.model.upgrade.
Generated schemas are strict: every object lists its properties and allows no others, so a field a
controller publishes without declaring it fails validation (tests/model/test_live_schema.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel

from agent import __version__
from agent.model.conditions import Condition
from agent.model.status import StatusDocument

PROBLEM = {"$ref": "#/components/schemas/Problem"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/problem+json": {"schema": PROBLEM}}}


def _inline(schema: Any, defs: dict[str, Any]) -> Any:
    """Replace pydantic's ``#/$defs/X`` references by the definitions (the models have no cycles)."""
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline(defs[ref.removeprefix("#/$defs/")], defs)
        return {k: _inline(v, defs) for k, v in schema.items() if k != "$defs"}
    if isinstance(schema, list):
        return [_inline(v, defs) for v in schema]
    return schema


def _strict(schema: Any) -> Any:
    """Objects with declared properties allow no others (models that ignore extra fields on input
    still only ever write their own)."""
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items()}
        if "properties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


def model_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The JSON Schema of what ``model`` serialises to (by alias), self-contained and strict."""
    raw = model.model_json_schema(mode="serialization", by_alias=True)
    inlined: dict[str, Any] = _inline(raw, raw.get("$defs", {}))
    return dict(_strict(inlined))


def _omitted_not_null(schema: dict[str, Any]) -> dict[str, Any]:
    """An optional property the document leaves out instead of writing null: its schema without null."""
    props = {}
    for name, prop in schema["properties"].items():
        variants = prop.get("anyOf", [])
        if prop.get("default", ...) is None and len(variants) == 2 and {"type": "null"} in variants:
            prop = next(v for v in variants if v != {"type": "null"})
        props[name] = prop
    return {**schema, "properties": props}


def _status_schema() -> dict[str, Any]:
    schema = model_schema(StatusDocument)
    sections = schema["properties"]["sections"]
    return {**schema, "properties": {**schema["properties"], "sections": _omitted_not_null(sections)}}


CONDITION = model_schema(Condition)
STATUS = _status_schema()

CORE_PATHS: dict[str, Any] = {
    "/v1/status": {
        "get": {
            "summary": "Agent status: version, uptime, config digest, conditions, status sections",
            "parameters": [{"name": "If-None-Match", "in": "header", "schema": {"type": "string"}}],
            "responses": {
                "200": _json({"$ref": "#/components/schemas/Status"}, "current status"),
                "304": {"description": "unchanged since the given ETag"},
            },
        }
    },
    "/healthz": {"get": {"summary": "Liveness", "responses": {"200": _json({"type": "object"}, "alive")}}},
    "/readyz": {
        "get": {
            "summary": "Readiness: every error-severity condition is True",
            "responses": {"200": _json({"type": "object"}, "ready"), "503": _problem("not ready")},
        }
    },
    "/metrics": {
        "get": {
            "summary": "Prometheus metrics",
            "responses": {"200": {"description": "text format 0.0.4", "content": {"text/plain": {}}}},
        }
    },
    "/openapi.json": {
        "get": {"summary": "This document", "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1")}}
    },
}


def build_openapi(extra: Iterable[dict[str, Any]] = ()) -> dict[str, Any]:
    paths = dict(CORE_PATHS)
    for more in extra:
        paths.update(more)
    return {
        "openapi": "3.1.0",
        "info": {"title": "edge-agent API", "version": __version__},
        "paths": paths,
        "components": {
            "schemas": {
                "Condition": CONDITION,
                "Status": STATUS,
                "Problem": {
                    "type": "object",
                    "required": ["type", "title", "status"],
                    "properties": {
                        "type": {"type": "string"},
                        "title": {"type": "string"},
                        "status": {"type": "integer"},
                        "detail": {"type": "string"},
                    },
                },
            }
        },
    }
