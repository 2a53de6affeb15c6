"""Read a JSON request body into a pydantic model, or answer with a problem document.

The model is the one place a request shape is defined: the OpenAPI document
shows its JSON schema (``request_schema``) and ``read_json`` validates against
it, so the two cannot drift apart. Each refusal names what was wrong:

    415  Content-Type missing or not JSON (or a charset other than UTF-8)
    413  the body is larger than ``MAX_BODY``
    400  not UTF-8, not JSON, nested too deeply, not an object, or a field the
         model refuses (unknown, missing, wrong type, out of its pattern)
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from agent.errors import HttpProblem

MAX_BODY = 1 << 20
M = TypeVar("M", bound=BaseModel)


def is_json_type(content_type: str) -> bool:
    main = content_type.lower()
    return main == "application/json" or (main.startswith("application/") and main.endswith("+json"))


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json(raw: bytes) -> Any:
    """Strict JSON (no NaN/Infinity) from UTF-8 bytes; HttpProblem(400) saying what and where."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HttpProblem(400, "Bad request", f"body: not UTF-8 (invalid byte at offset {exc.start})") from exc
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise HttpProblem(
            400, "Bad request", f"body: not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc
    except RecursionError as exc:
        raise HttpProblem(400, "Bad request", "body: JSON nested too deeply") from exc
    except ValueError as exc:
        raise HttpProblem(400, "Bad request", f"body: not JSON: {exc}") from exc


async def read_body(request: web.Request, limit: int = MAX_BODY) -> bytes:
    """The raw body, refusing (413) as soon as it is known to be over ``limit`` bytes."""
    too_large = HttpProblem(413, "Content too large", f"body: larger than the {limit}-byte limit")
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    data = bytearray()
    async for chunk in request.content.iter_any():
        data += chunk
        if len(data) > limit:
            raise too_large
    return bytes(data)


def _field_message(model: type[BaseModel], err: ErrorDetails) -> str:
    kind = err["type"]
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return f"unknown field (expected {', '.join(model.model_fields)})"
    name = str(err["loc"][0]) if err["loc"] else ""
    info = model.model_fields.get(name)
    if info is not None and info.description and kind.startswith("string_"):
        return f"expected {info.description}, got {err['input']!r:.80}"
    if kind == "bool_type":
        return "expected true or false"
    return str(err["msg"])


def validate(model: type[M], doc: Any) -> M:
    """``doc`` (parsed JSON) as ``model``; HttpProblem(400) naming the first bad field, listing all."""
    if not isinstance(doc, dict):
        raise HttpProblem(400, "Bad request", f"body: expected a JSON object, got {type(doc).__name__}")
    try:
        return model.model_validate(doc, strict=True)
    except ValidationError as exc:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"]) or "body", "message": _field_message(model, e)}
            for e in exc.errors(include_url=False)
        ]
        first = errors[0]
        raise HttpProblem(400, "Bad request", f"{first['field']}: {first['message']}", errors=errors) from exc


async def read_json(request: web.Request, model: type[M], limit: int = MAX_BODY) -> M:
    if "Content-Type" not in request.headers or not is_json_type(request.content_type):
        got = request.headers.get("Content-Type", "none")
        raise HttpProblem(415, "Unsupported media type", f"Content-Type: expected application/json, got {got}")
    if request.charset and request.charset.lower() not in ("utf-8", "utf8"):
        raise HttpProblem(415, "Unsupported media type", f"Content-Type: expected charset utf-8, got {request.charset}")
    return validate(model, parse_json(await read_body(request, limit)))


def request_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The JSON schema of a request model, as the OpenAPI document shows it."""
    schema = model.model_json_schema(mode="validation")
    schema.pop("title", None)
    schema.pop("description", None)  # the model's docstring is for developers
    for prop in schema.get("properties", {}).values():
        prop.pop("title", None)
    return schema
