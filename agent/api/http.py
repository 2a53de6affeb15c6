"""Small HTTP helpers every route module uses: app state key, ETag'd JSON, RFC 9457 problems."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from agent.context import AgentContext
from agent.errors import HttpProblem

CTX: web.AppKey[AgentContext] = web.AppKey("ctx", AgentContext)

PROBLEM_TYPE = "application/problem+json"


def dumps(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":"), sort_keys=True).encode()


def etag_of(raw: bytes) -> str:
    return '"' + hashlib.blake2b(raw, digest_size=12).hexdigest() + '"'


def etag_response(request: web.Request, body: bytes, etag: str) -> web.Response:
    """A JSON body with its ETag; 304 when If-None-Match matches."""
    inm = request.headers.get("If-None-Match", "")
    if inm and (inm.strip() == "*" or etag in (t.strip() for t in inm.split(","))):
        return web.Response(status=304, headers={"ETag": etag})
    return web.Response(body=body, content_type="application/json", headers={"ETag": etag})


def json_etag(request: web.Request, data: Any) -> web.Response:
    """JSON body with a strong ETag; answers 304 when If-None-Match matches."""
    body = dumps(data)
    return etag_response(request, body, etag_of(body))


def problem(
    status: int, title: str, detail: str = "", headers: Mapping[str, str] | None = None, **extra: Any
) -> web.Response:
    """An RFC 9457 problem document."""
    doc: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        doc["detail"] = detail
    doc.update(extra)
    return web.Response(status=status, body=json.dumps(doc).encode(), content_type=PROBLEM_TYPE, headers=headers)


def problem_response(exc: HttpProblem) -> web.Response:
    """The response a raised :class:`agent.errors.HttpProblem` stands for."""
    return problem(exc.status, exc.title, exc.detail, **exc.extra)
