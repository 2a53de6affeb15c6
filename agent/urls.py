"""URLs as the agent shows them: never with credentials or a query (presigned URLs carry secrets there)."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def display_source(source: str) -> str:
    """A bundle source as an upgrade record keeps it (the registrar compares it): a URL redacted, a path as is."""
    return redact_url(source) if is_url(source) else source


def redact_url(url: str) -> str:
    u = urlsplit(url)
    host = u.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{u.port}" if u.port else host
    return urlunsplit((u.scheme, netloc, u.path, "", ""))
