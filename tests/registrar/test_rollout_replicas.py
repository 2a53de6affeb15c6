"""Rollouts driven by the serving replicas (``rollout create --on-replicas``, ``serve --rollout-interval``):
three real replica processes on one PostgreSQL each drive their shard of a batch; a SIGKILLed replica's
nodes are taken over once its lease runs out, following the upgrade the box already accepted; the
results are merged in the database (``rollout status``).

The boxes are fake agents on loopback with real mTLS (their certificates from the fleet CA, the operator
certificate each replica issues itself checked for its role): an upgrade commits ``UPGRADE_TIME`` seconds
after the box accepted it."""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from agent.registrar.ca import CertificateAuthority, cert_pem, role_of, write_key
from agent.registrar.database import open_registry
from agent.registrar.registry import Node
from bench.helpers.pgcluster import PgCluster
from bench.helpers.replicas import ReplicaSet

pytestmark = pytest.mark.slow

BUNDLE = "https://releases.example/edge-agent-0.3.0.tar"
STEP = 1.0  # serve --rollout-interval


@dataclass
class Boxes:
    """The upgrade API of every box, as the agent's (agent/api/upgrades.py): a POST while an upgrade runs is
    answered 409 naming the ``active`` one; each POST is remembered with the caller's role and its answer."""

    upgrade_time: float
    fail: set[str] = field(default_factory=set)
    posts: dict[str, list[str]] = field(default_factory=dict)  # node -> roles of the callers, one per POST
    answers: dict[str, list[int]] = field(default_factory=dict)  # node -> the status of each POST
    accepted: dict[str, float] = field(default_factory=dict)

    def app(self, node_id: str) -> web.Application:
        async def post(request: web.Request) -> web.Response:
            peer = request.transport.get_extra_info("ssl_object").getpeercert(binary_form=True)  # type: ignore[union-attr]
            self.posts.setdefault(node_id, []).append(role_of(x509.load_der_x509_certificate(peer)) or "")
            if node_id in self.accepted:  # one upgrade at a time
                self.answers.setdefault(node_id, []).append(409)
                detail = {"title": "Upgrade in progress", "detail": "upgrade in progress", "active": f"u-{node_id}"}
                return web.json_response(detail, status=409)
            self.accepted[node_id] = time.monotonic()
            self.answers.setdefault(node_id, []).append(202)
            return web.json_response({"id": f"u-{node_id}", "state": "downloading"}, status=202)

        async def get(request: web.Request) -> web.Response:
            if time.monotonic() - self.accepted[node_id] < self.upgrade_time:
                state, reason = "checking", ""
            elif node_id in self.fail:
                state, reason = "rolled-back", "not healthy within 60s"
            else:
                state, reason = "committed", "agent 0.3.0 is healthy"
            upgrade = {"id": request.match_info["id"], "kind": "agent", "version": "0.3.0", "source": BUNDLE}
            return web.json_response({**upgrade, "state": state, "reason": reason})

        app = web.Application()
        app.add_routes([web.post("/v1/upgrades", post), web.get("/v1/upgrades/{id}", get)])
        return app


def box_tls(ca: CertificateAuthority, node_id: str, client_ca: Path, d: Path) -> ssl.SSLContext:
    """A box's serving context: its fleet:node certificate, client certificates of the fleet CA required."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = ca.issue(key.public_key(), common_name=node_id, role="fleet:node", lifetime=timedelta(hours=1),
                    names=[x509.DNSName(node_id)], server=True)  # fmt: skip
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(client_ca))
    ctx.verify_mode = ssl.CERT_REQUIRED
    d.mkdir(parents=True)
    write_key(d / "key.pem", key)
    (d / "cert.pem").write_bytes(cert_pem(cert))
    ctx.load_cert_chain(d / "cert.pem", d / "key.pem")
    return ctx


async def serve_boxes(fleet: ReplicaSet, boxes: Boxes, names: list[str], work: Path) -> list[web.AppRunner]:
    """Every box listening on loopback with a fleet:node certificate, recorded approved in the registry."""
    ca = CertificateAuthority.load(fleet.dirs[0])
    reg = open_registry(fleet.database, work)
    runners = []
    try:
        for node_id in names:
            runners.append(web.AppRunner(boxes.app(node_id)))
            await runners[-1].setup()
            tls = box_tls(ca, node_id, fleet.ca_pem, work / node_id)
            await web.TCPSite(runners[-1], "127.0.0.1", 0, ssl_context=tls).start()
            port = int(runners[-1].addresses[0][1])
            reg.create_node(Node(node_id, "approved", "t", "f", site="lab", role="agent", cluster="c1", serial="1",
                                 addresses=["127.0.0.1"], api_port=port))  # fmt: skip
    finally:
        reg.close()
    return runners


def rollout(fleet: ReplicaSet, *args: str) -> str:
    return fleet.cli("rollout", *args)


def status(fleet: ReplicaSet, rid: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(rollout(fleet, "status", rid, "-o", "json"))
    return doc


async def wait_state(fleet: ReplicaSet, rid: str, want: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        doc = await asyncio.to_thread(status, fleet, rid)
        if doc["state"] == want:
            return doc
        await asyncio.sleep(0.5)
    raise AssertionError(f"rollout {rid} not {want} within {timeout}s: {doc}")


def replica_ids(fleet: ReplicaSet) -> list[str]:
    import socket

    return [f"{socket.gethostname()}:{port}:{p.pid}" for port, p in zip(fleet.ports, fleet.procs, strict=True) if p]


def test_three_replicas_each_drive_their_shard_and_take_over_a_killed_ones(
    pg_cluster: PgCluster, tmp_path: Path
) -> None:
    fleet = ReplicaSet(tmp_path, pg_cluster.new_database(), 3, "--rollout-interval", f"{STEP}s").start()
    names = [f"box-{i:02d}" for i in range(30)]
    boxes = Boxes(upgrade_time=4.0)
    try:
        ids = replica_ids(fleet)

        async def scenario() -> tuple[dict[str, Any], set[str], float]:
            runners = await serve_boxes(fleet, boxes, names, tmp_path / "boxes")
            try:
                out = await asyncio.to_thread(
                    rollout, fleet, "create", "--bundle", BUNDLE, "--selector", "site=lab", "--canary", "1",
                    "--batch-size", "30", "--on-replicas",
                )  # fmt: skip
                rid = out.split("rollout ")[1].split()[0]
                # the canary alone, then the rest of the boxes at once: kill replica 1 while its upgrades run
                while len(boxes.accepted) < len(names):
                    await asyncio.sleep(0.05)
                fleet.kill(1)
                killed_at = time.monotonic()
                # what it left in flight (its claims hold for two steps plus 5 s after its last step)
                doc = await asyncio.to_thread(status, fleet, rid)
                in_flight = {
                    str(n["node_id"]) for n in doc["nodes"] if n["claimed_by"] == ids[1] and n["state"] == "running"
                }
                assert in_flight, "replica 1 drove none of the second batch"
                doc = await wait_state(fleet, rid, "done", timeout=60)
                return doc, in_flight, time.monotonic() - killed_at
            finally:
                for r in runners:
                    await r.cleanup()

        doc, taken_over, after_kill = asyncio.run(scenario())
        rows = {str(n["node_id"]): n for n in doc["nodes"]}
        assert {n["state"] for n in rows.values()} == {"committed"}, rows
        drivers = {str(n["driven_by"]) for n in rows.values()}
        assert drivers <= set(ids) and {ids[0], ids[2]} <= drivers  # the live replicas each drove some
        for node_id in taken_over:  # taken over: followed by its upgrade id, not started again
            assert rows[node_id]["driven_by"] in (ids[0], ids[2]), rows[node_id]
            # asked again only when replica 1 died between the box's 202 and recording its id; then the
            # box's 409 names the upgrade of this bundle, which is followed
            assert boxes.answers[node_id] in ([202], [202, 409]), boxes.answers[node_id]
        assert all(a[0] == 202 and 202 not in a[1:] for a in boxes.answers.values()), boxes.answers  # started once
        assert all(set(p) == {"fleet:operator"} for p in boxes.posts.values()), boxes.posts
        # taken over once its lease and claims ran out (two steps plus 5 s after its last step), long before the
        # node timeout (30 min)
        assert STEP + 5 <= after_kill <= 30, after_kill  # its last renewal came up to a step before the kill
    finally:
        fleet.stop()


def test_the_first_failure_any_replica_sees_pauses_the_rollout_for_all(pg_cluster: PgCluster, tmp_path: Path) -> None:
    fleet = ReplicaSet(tmp_path, pg_cluster.new_database(), 2, "--rollout-interval", f"{STEP}s").start()
    names = [f"node-{i:02d}" for i in range(8)]
    boxes = Boxes(upgrade_time=0.5, fail={"node-00"})  # the canary rolls back
    try:

        async def scenario() -> dict[str, Any]:
            runners = await serve_boxes(fleet, boxes, names, tmp_path / "boxes")
            try:
                out = await asyncio.to_thread(
                    rollout, fleet, "create", "--bundle", BUNDLE, "--selector", "site=lab", "--batch-size", "4",
                    "--on-replicas",
                )  # fmt: skip
                rid = out.split("rollout ")[1].split()[0]
                doc = await wait_state(fleet, rid, "paused", timeout=30)
                await asyncio.sleep(3 * STEP)  # the replicas keep stepping: nobody goes on
                return doc
            finally:
                for r in runners:
                    await r.cleanup()

        doc = asyncio.run(scenario())
        assert doc["reason"] == "node-00: rolled-back: not healthy within 60s"
        assert set(boxes.posts) == {"node-00"}  # nobody went on after the failed canary
        text = rollout(fleet, "status", str(doc["id"]))
        assert "BY" in text.splitlines()[2] and "node-00" in text
    finally:
        fleet.stop()
