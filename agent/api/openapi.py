"""The OpenAPI 3.1 document of the agent API: core paths here, the rest from route modules."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from agent import __version__

PROBLEM = {"$ref": "#/components/schemas/Problem"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/problem+json": {"schema": PROBLEM}}}


CONDITION = {
    "type": "object",
    "required": ["type", "status", "reason", "message", "since", "severity"],
    "properties": {
        "type": {"type": "string"},
        "status": {"enum": ["True", "False", "Unknown"]},
        "reason": {"type": "string"},
        "message": {"type": "string"},
        "since": {"type": "string", "format": "date-time"},
        "severity": {"enum": ["error", "info"]},
    },
}

STATUS = {
    "type": "object",
    "required": ["schema", "agent", "health", "conditions", "sections"],
    "properties": {
        "schema": {"const": "edge-agent.status/v1"},
        "agent": {
            "type": "object",
            "required": ["version", "pid", "started_at", "uptime_seconds", "config_digest", "config_sources"],
            "properties": {
                "version": {"type": "string"},
                "pid": {"type": "integer"},
                "started_at": {"type": "number"},
                "uptime_seconds": {"type": "integer"},
                "config_digest": {"type": "string"},
                "config_sources": {"type": "array", "items": {"type": "string"}},
            },
        },
        "health": {"enum": ["healthy", "degraded"]},
        "conditions": {"type": "array", "items": {"$ref": "#/components/schemas/Condition"}},
        "sections": {"type": "object", "additionalProperties": True},
    },
}

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
