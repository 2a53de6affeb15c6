"""A box enrolling while the replicas' PostgreSQL is down: both replicas answer 503 + Retry-After: 10,
the box (the real enrollment controller) waits those 10 s, says so in its status, and enrolls once
the database is back, without asking in between."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from cryptography import x509

from agent.context import AgentContext
from agent.fleet.enrollment import EnrollmentController
from agent.fleet.identity import pin_of
from agent.registrar.app import UNAVAILABLE_RETRY_AFTER
from bench.helpers.pgcluster import PgCluster
from bench.helpers.replicas import ReplicaSet
from tests.fleet.harness import box_config, cond, make_box, wait_for

pytestmark = pytest.mark.slow


def last_error(ctx: AgentContext) -> str:
    section = ctx.board.sections().get("fleet")
    return str(section.get("last_error", "")) if isinstance(section, dict) else ""


def test_a_box_waits_the_replicas_retry_after_during_a_database_outage_then_enrolls(
    pg_cluster: PgCluster, tmp_path: Path
) -> None:
    fleet = ReplicaSet(tmp_path, pg_cluster.new_database(), 2).start()
    try:
        token = fleet.cli("token", "create", "--uses", "1", "--site", "lab").strip()
        pin = pin_of(x509.load_pem_x509_certificate(fleet.ca_pem.read_bytes()))
        ctx = make_box(tmp_path / "box", box_config(fleet.urls, pin, token, retry_max=60), "5" * 32)
        pg_cluster.stop()
        try:
            first, enrolled = asyncio.run(enroll_through_outage(ctx, pg_cluster))
        finally:
            if not pg_cluster.pid:
                pg_cluster.start()
        waited = enrolled - first
        assert UNAVAILABLE_RETRY_AFTER <= waited <= UNAVAILABLE_RETRY_AFTER * 1.2 + 4, waited
    finally:
        fleet.stop()


async def enroll_through_outage(ctx: AgentContext, pg: PgCluster) -> tuple[float, float]:
    task = asyncio.create_task(EnrollmentController(ctx, base_delay=0.05).run())
    try:
        message = await wait_for(lambda: last_error(ctx), timeout=20, what="the first failed round")
        first = time.monotonic()
        assert "503" in message and f"as the registrar asked: Retry-After {UNAVAILABLE_RETRY_AFTER}s" in message
        await asyncio.to_thread(pg.start)  # back at once: only the Retry-After holds the box off
        await asyncio.sleep(UNAVAILABLE_RETRY_AFTER / 2)
        assert last_error(ctx) == message, "the box asked again before the Retry-After ran out"
        await wait_for(lambda: cond(ctx, "Enrolled") == ("True", "Enrolled"), timeout=30, what="enrolled",
                       explain=lambda: ctx.board.sections().get("fleet"))  # fmt: skip
        return first, time.monotonic()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
