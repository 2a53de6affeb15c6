"""Registry fixtures: ``registry_url`` and ``registry`` run a test on every backend (SQLite, PostgreSQL)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.registrar.database import open_registry
from agent.registrar.registry import Registry
from bench.helpers.pgcluster import PgCluster, available

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    if not available():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL 15 missing (/usr/lib/postgresql/15/bin): run 'make deps'")
        pytest.skip("PostgreSQL 15 not installed (make deps installs postgresql-15)")
    cluster = PgCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.remove()


@pytest.fixture(params=BACKENDS)
def registry_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL of an empty registry, once per backend."""
    if request.param == "sqlite":
        return f"sqlite://{tmp_path}/registry.sqlite"
    cluster: PgCluster = request.getfixturevalue("pg_cluster")
    return cluster.new_database()


@pytest.fixture
def registry(registry_url: str, tmp_path: Path) -> Iterator[Registry]:
    reg = open_registry(registry_url, tmp_path)
    try:
        yield reg
    finally:
        reg.close()
