"""Which registry a registrar uses: ``--database URL`` (or ``EDGE_REGISTRAR_DATABASE``).

- none, or ``sqlite:///PATH``: the embedded SQLite file (default ``<state-dir>/registry.sqlite``);
- ``postgresql://USER@HOST/DB``, ``postgresql:///DB?host=/run/postgresql`` (a unix socket directory),
  any libpq URL: PostgreSQL, which several replicas share (agent.registrar.postgres).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

from agent.errors import StateError
from agent.registrar.legacy_guard import adopt_legacy_guard
from agent.registrar.registry import Registry
from agent.registrar.sqlite import SqliteRegistry

ENV = "EDGE_REGISTRAR_DATABASE"
EXPECTED = "expected sqlite:///PATH or postgresql://[USER@]HOST[:PORT]/DB (or postgresql:///DB?host=/socket/dir)"


def check_url(url: str) -> str:
    """``url`` when it names a backend this registrar has, else a clear error."""
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        if not urlsplit(url).path or urlsplit(url).netloc:
            raise StateError(f"--database {url!r}: {EXPECTED}")
    elif scheme not in ("postgresql", "postgres"):
        raise StateError(f"--database {url!r}: unknown scheme {scheme or 'none'!r}; {EXPECTED}")
    return url


def url_of(args: argparse.Namespace) -> str | None:
    """The database a command names: ``--database``, else $EDGE_REGISTRAR_DATABASE, else None (SQLite)."""
    url: str | None = getattr(args, "database", None) or os.environ.get(ENV) or None
    return url


def from_args(args: argparse.Namespace) -> Registry:
    """The registry of a command: ``--database`` (or $EDGE_REGISTRAR_DATABASE), else ``<state-dir>``'s file."""
    return open_registry(url_of(args), args.state_dir)


def open_registry(url: str | None, state_dir: Path, *, pool_size: int = 4) -> Registry:
    """The registry ``url`` names, with what an older registrar kept beside it in ``state_dir`` adopted."""
    registry = _open(url, state_dir, pool_size)
    try:
        adopt_legacy_guard(registry, state_dir)
    except BaseException:
        registry.close()
        raise
    return registry


def _open(url: str | None, state_dir: Path, pool_size: int) -> Registry:
    if not url:
        return SqliteRegistry.in_state_dir(state_dir)
    check_url(url)
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        return SqliteRegistry(Path(unquote(parts.path)))
    try:
        from agent.registrar.postgres import PostgresRegistry  # psycopg only where PostgreSQL is used
    except ImportError as exc:
        raise StateError(
            f"--database {url.split('@')[-1]!r}: PostgreSQL needs psycopg 3 and psycopg-pool "
            f"(pip install 'edge-agent[postgres]'): {exc}"
        ) from exc
    return PostgresRegistry(url, max_size=pool_size)
