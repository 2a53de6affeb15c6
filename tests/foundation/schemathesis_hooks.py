"""Schemathesis hooks for the API fuzz test (loaded through SCHEMATHESIS_HOOKS).

Generated upgrade sources may be URLs of any host; the agent would try to fetch
them. Tests talk to loopback only, so every URL source is pointed at 127.0.0.1
port 9 (nothing listens: the download fails at once). The body stays valid for
the schema, so the response checks judge it the same way.
"""

from __future__ import annotations

from typing import Any

import schemathesis

LOOPBACK_SOURCE = "http://127.0.0.1:9/bundle.tar"


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    body = case.body
    if isinstance(body, dict) and isinstance(body.get("source"), str) and body["source"].startswith("http"):
        case.body = {**body, "source": LOOPBACK_SOURCE}
