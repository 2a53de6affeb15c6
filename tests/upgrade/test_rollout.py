"""Fleet rollouts against fake agents on real mTLS: order, batches, pause on failure, resume."""

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
from agent.registrar.cli import issue_client
from agent.registrar.cli import main as registrar_main
from agent.registrar.registry import Node
from agent.registrar.rollout import RolloutStore, drive, plan
from agent.registrar.sqlite import SqliteRegistry

BUNDLE = "https://releases.example/edge-agent-0.2.0.tar"
VERSION = "0.2.0"


@dataclass
class FakeFleet:
    """Every box's remote upgrade API, keeping the agent's rules: ``fail`` names boxes whose upgrade
    rolls back; a version that failed on a box (``blocked``) is refused there unless forced."""

    fail: set[str] = field(default_factory=set)
    blocked: dict[str, set[str]] = field(default_factory=dict)
    posts: list[tuple[str, float, str]] = field(default_factory=list)  # node, time, caller role
    forced: list[str] = field(default_factory=list)
    done: dict[str, float] = field(default_factory=dict)
    polls: dict[str, int] = field(default_factory=dict)
    refused: set[str] = field(default_factory=set)
    running: dict[str, str] = field(default_factory=dict)  # node -> source of an upgrade in progress there

    def app(self, node_id: str) -> web.Application:
        async def post(request: web.Request) -> web.Response:
            body = await request.json()
            assert body["source"] == BUNDLE and set(body) == {"source", "force"}
            peer = request.transport.get_extra_info("ssl_object").getpeercert(binary_form=True)  # type: ignore[union-attr]
            role = role_of(x509.load_der_x509_certificate(peer)) or ""
            self.posts.append((node_id, time.monotonic(), role))
            if node_id in self.running:  # the agent runs one upgrade at a time (agent/api/upgrades.py)
                problem = {"title": "Upgrade in progress", "detail": "in progress", "active": f"u-{node_id}"}
                return web.json_response(problem, status=409)
            if body["force"]:
                self.forced.append(node_id)
            self.polls[node_id] = 0
            self.refused.discard(node_id)
            if VERSION in self.blocked.get(node_id, set()) and not body["force"]:
                self.refused.add(node_id)
            return web.json_response({"id": f"u-{node_id}", "state": "downloading"}, status=202)

        async def get(request: web.Request) -> web.Response:
            self.polls[node_id] += 1
            source = self.running.get(node_id, BUNDLE)
            what = {"id": request.match_info["id"], "kind": "agent", "version": VERSION, "source": source}
            if node_id in self.refused:
                reason = f"agent version {VERSION} failed once on this box and is blocked"
                return web.json_response({**what, "state": "failed", "code": "version-blocked", "reason": reason})
            if self.polls[node_id] < 2:
                return web.json_response({**what, "state": "checking", "reason": ""})
            self.done[node_id] = time.monotonic()
            if node_id in self.fail:
                self.blocked.setdefault(node_id, set()).add(VERSION)
                return web.json_response({**what, "state": "rolled-back", "reason": "not healthy within 60s"})
            return web.json_response({**what, "state": "committed", "reason": "agent 0.2.0 is healthy"})

        app = web.Application()
        app.router.add_post("/v1/upgrades", post)
        app.router.add_get("/v1/upgrades/{id}", get)
        return app


@pytest.fixture
async def fleet(tmp_path: Path) -> Any:
    state = tmp_path / "registrar"
    state.mkdir()
    ca = CertificateAuthority.create()
    ca.save(state)
    issue_client(ca, "fleet:operator", "rollout", state / "rollout", timedelta(hours=1))
    fake = FakeFleet()
    db = SqliteRegistry(state / "registry.sqlite")
    runners = []
    roles = {"s1": "server", "s2": "server", "a1": "agent", "a2": "agent", "a3": "agent", "x9": "agent"}
    for node_id, role in roles.items():
        key = ec.generate_private_key(ec.SECP256R1())
        cert = ca.issue(
            key.public_key(),
            common_name=node_id,
            role="fleet:node",
            lifetime=timedelta(hours=1),
            names=[x509.DNSName(node_id)],
            server=True,
        )
        d = tmp_path / "boxes" / node_id
        d.mkdir(parents=True)
        write_key(d / "key.pem", key)
        (d / "cert.pem").write_bytes(cert_pem(cert))
        sctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(state / "ca.pem"))
        sctx.verify_mode = ssl.CERT_REQUIRED
        sctx.load_cert_chain(d / "cert.pem", d / "key.pem")
        runner = web.AppRunner(fake.app(node_id))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=sctx)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        runners.append(runner)
        db.create_node(
            Node(
                node_id=node_id,
                state="approved",
                token_id="t",
                key_fingerprint="f",
                site="lab" if node_id != "x9" else "elsewhere",
                role=role,
                cluster="c1",
                serial="1",
                addresses=["127.0.0.1"],
                api_port=port,
            )
        )
    db.close()
    yield state, fake
    for r in runners:
        await r.cleanup()


def _nodes(state: Path) -> dict[str, Node]:
    db = SqliteRegistry(state / "registry.sqlite")
    try:
        return {n.node_id: n for n in db.list_nodes() if n.site == "lab"}
    finally:
        db.close()


async def test_servers_first_one_at_a_time_then_agents_in_batches(fleet: Any) -> None:
    state, fake = fleet
    nodes = _nodes(state)
    batches = plan(list(nodes.values()), canary=1, batch_size=2)
    assert [[n.node_id for n in b] for b in batches] == [["s1"], ["s2"], ["a1", "a2"], ["a3"]]
    store = RolloutStore(state)
    rid = store.create(BUNDLE, {"site": "lab"}, batches, force=False, batch_size=2, canary=1)
    lines: list[str] = []
    assert (
        await drive(store, rid, nodes, state / "rollout", node_timeout=10, poll_interval=0.01, say=lines.append)
        == "done"
    )
    order = [n for n, _, _ in fake.posts]
    assert order[:2] == ["s1", "s2"] and sorted(order[2:4]) == ["a1", "a2"] and order[4] == "a3"
    started = {n: t for n, t, _ in fake.posts}
    assert started["s2"] > fake.done["s1"]
    assert min(started["a1"], started["a2"]) > fake.done["s2"]
    assert started["a3"] > max(fake.done["a1"], fake.done["a2"])
    assert {role for _, _, role in fake.posts} == {"fleet:operator"}
    doc = store.get(rid)
    assert doc is not None and doc["state"] == "done" and doc["counts"] == {"committed": 5}


async def test_a_failed_canary_stays_failed_on_resume_and_only_an_explicit_retry_asks_it_again(
    fleet: Any,
) -> None:
    state, fake = fleet
    fake.fail = {"s1"}
    nodes = _nodes(state)
    store = RolloutStore(state)
    batches = plan(list(nodes.values()), canary=1, batch_size=2)
    rid = store.create(BUNDLE, {"site": "lab"}, batches, force=False, batch_size=2, canary=1)
    lines: list[str] = []
    assert await drive(store, rid, nodes, state / "rollout", node_timeout=10, poll_interval=0.01, say=lines.append) == (
        "paused"
    )
    doc = store.get(rid)
    assert doc is not None
    assert doc["state"] == "paused" and doc["reason"] == "s1: rolled-back: not healthy within 60s"
    assert [n for n, _, _ in fake.posts] == ["s1"]  # nothing after the failed canary
    assert (doc["kind"], doc["version"]) == ("agent", VERSION)  # learnt from the canary's manifest
    assert f"'rollout resume {rid} --retry s1' asks s1 again" in lines[-1]

    # resume goes on with the other boxes; the failed canary is not given the same version again
    fake.posts.clear()
    assert (
        await drive(store, rid, nodes, state / "rollout", node_timeout=10, poll_interval=0.01, say=lambda _: None)
        == "done"
    )
    assert sorted(n for n, _, _ in fake.posts) == ["a1", "a2", "a3", "s2"]
    doc = store.get(rid)
    assert doc is not None and doc["counts"] == {"committed": 4, "failed": 1}
    assert doc["reason"] == "not upgraded: s1 (failed)"

    # retrying it takes the operator's --retry, sent with force and written to the rollout's events
    fake.fail, fake.posts = set(), []
    store.close()
    args = ["--state-dir", str(state), "rollout", "resume", rid, "--poll-interval", "0.01", "--node-timeout", "10"]
    assert await asyncio.to_thread(registrar_main, [*args, "--retry", "a1"]) == 1  # committed: nothing to retry
    assert await asyncio.to_thread(registrar_main, [*args, "--retry", "s1"]) == 0
    assert [n for n, _, _ in fake.posts] == ["s1"] and fake.forced == ["s1"]
    store = RolloutStore(state)
    doc = store.get(rid)
    assert doc is not None and doc["state"] == "done" and doc["counts"] == {"committed": 5}
    retries = [e for e in doc["events"] if e["event"] == "retry"]
    assert [e["node_id"] for e in retries] == ["s1"]
    assert "was failed (rolled-back: not healthy within 60s); asked again with force" in retries[0]["detail"]


async def test_boxes_with_the_version_blocked_are_skipped_and_reported_not_asked_again(fleet: Any) -> None:
    state, fake = fleet
    db = SqliteRegistry(state / "registry.sqlite")
    # a2's last heartbeat says 0.2.0 failed there; a3 has it blocked too, but has not said so yet
    db.record_heartbeat("a2", {"sections": {"upgrade": {"blocked_versions": {"agent": {VERSION: 1}}}}}, "127.0.0.1")
    db.close()
    fake.blocked = {"a2": {VERSION}, "a3": {VERSION}}
    nodes = _nodes(state)
    store = RolloutStore(state)
    batches = plan(list(nodes.values()), canary=1, batch_size=2)
    rid = store.create(BUNDLE, {"site": "lab"}, batches, force=False, batch_size=2, canary=1)
    lines: list[str] = []
    assert await drive(store, rid, nodes, state / "rollout", node_timeout=10, poll_interval=0.01, say=lines.append) == (
        "done"
    )
    assert "a2" not in [n for n, _, _ in fake.posts]  # known blocked: not asked at all
    doc = store.get(rid)
    assert doc is not None
    rows = {n["node_id"]: n for n in doc["nodes"]}
    assert rows["a2"]["state"] == "blocked" and "agent 0.2.0 failed once on this box" in rows["a2"]["reason"]
    assert f"'rollout resume {rid} --retry a2'" in rows["a2"]["reason"]
    assert rows["a3"]["state"] == "blocked" and "is blocked" in rows["a3"]["reason"]  # the box refused it
    assert doc["counts"] == {"committed": 3, "blocked": 2}
    assert lines[-1] == f"{rid}: done; not upgraded: a2 (blocked), a3 (blocked)"
    assert fake.forced == []


def test_cli_dry_run_status_and_refusals(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "registrar"
    db = SqliteRegistry(state / "registry.sqlite")
    for node_id, role in (("b1", "agent"), ("m1", "server")):
        db.create_node(
            Node(
                node_id=node_id,
                state="approved",
                token_id="t",
                key_fingerprint="f",
                site="lab",
                role=role,
                serial="1",
                addresses=["127.0.0.1"],
                api_port=1,
            )
        )
    db.close()
    base = ["--state-dir", str(state), "rollout"]
    assert registrar_main([*base, "create", "--bundle", BUNDLE, "--selector", "site=lab", "--dry-run"]) == 0
    assert capsys.readouterr().out.splitlines() == ["batch 0: m1 (server)", "batch 1: b1 (agent)"]
    assert registrar_main([*base, "create", "--bundle", "/local.tar", "--selector", "site=lab"]) == 1
    assert "expected a URL the boxes can download" in capsys.readouterr().out
    assert registrar_main([*base, "create", "--bundle", BUNDLE, "--selector", "site=mars"]) == 1
    assert "no approved box matches site=mars" in capsys.readouterr().out
    assert registrar_main([*base, "create", "--bundle", BUNDLE, "--selector", "site=lab"]) == 1
    assert "no fleet CA here" in capsys.readouterr().out  # the registrar issues its own operator cert from it
    store = RolloutStore(state)
    rid = store.create(BUNDLE, {"site": "lab"}, [], force=False, batch_size=5, canary=1)
    store.close()
    assert registrar_main([*base, "status"]) == 0
    assert rid in capsys.readouterr().out
    assert registrar_main([*base, "status", rid, "-o", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["schema"] == "edge-registrar.rollout/v1"


def test_bundle_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = tmp_path / "release.key"
    assert registrar_main(["bundle", "keygen", "--out", str(key)]) == 0
    pub = capsys.readouterr().out.strip().splitlines()[-1]
    payload = tmp_path / "k3s"
    payload.write_bytes(b"bin")
    out = tmp_path / "k3s.tar"
    args = ["bundle", "build", "--kind", "k3s", "--name", "k3s", "--version", "v1.33.2+k3s1", "--out", str(out)]
    assert registrar_main([*args, str(payload)]) == 0
    assert "unsigned" in capsys.readouterr().out
    assert registrar_main(["bundle", "sign", "--key", str(key), str(out)]) == 0
    from agent.upgrade.manifest import host_architecture
    from agent.upgrade.signing import load_release_keys
    from agent.upgrade.verify import verify_bundle

    v = verify_bundle(out, load_release_keys([pub]), tmp_path / "s", architecture=host_architecture())
    assert (v.directory / "k3s").read_bytes() == b"bin"
    assert asyncio.iscoroutinefunction(drive)


async def test_resume_follows_an_upgrade_that_was_in_flight_instead_of_starting_another(fleet: Any) -> None:
    state, fake = fleet
    nodes = {k: v for k, v in _nodes(state).items() if k == "a1"}
    store = RolloutStore(state)
    rid = store.create(BUNDLE, {"node": "a1"}, [[nodes["a1"]]], force=False, batch_size=1, canary=1)
    # the registrar was interrupted after a1 accepted its upgrade
    store.set_node(rid, "a1", "running", "u-a1")
    fake.polls["a1"] = 0
    assert (
        await drive(store, rid, nodes, state / "rollout", node_timeout=10, poll_interval=0.01, say=lambda _: None)
        == "done"
    )
    assert fake.posts == []  # followed by id, not requested again
    doc = store.get(rid)
    assert doc is not None and doc["nodes"][0]["state"] == "committed"


async def test_an_upgrade_of_this_bundle_already_running_is_followed_and_another_waited_for(fleet: Any) -> None:
    state, fake = fleet
    nodes = {k: v for k, v in _nodes(state).items() if k in ("a1", "a2")}
    # a1: a driver asked it and stopped before it recorded the upgrade id; a2: busy with another bundle
    fake.running = {"a1": BUNDLE, "a2": "https://releases.example/edge-agent-0.1.9.tar"}
    fake.polls.update(a1=0, a2=0)
    store = RolloutStore(state)
    rid = store.create(BUNDLE, {"site": "lab"}, [[nodes["a1"]], [nodes["a2"]]], force=False, batch_size=1, canary=1)
    assert (
        await drive(store, rid, nodes, state / "rollout", node_timeout=1.5, poll_interval=0.05, say=lambda _: None)
        == "paused"
    )
    doc = store.get(rid)
    assert doc is not None
    rows = {n["node_id"]: n for n in doc["nodes"]}
    assert (rows["a1"]["state"], rows["a1"]["upgrade_id"]) == ("committed", "u-a1")  # followed, not failed
    assert rows["a2"]["state"] == "failed" and "could not start" in rows["a2"]["reason"]  # not taken for ours
    assert [p[0] for p in fake.posts].count("a1") == 1
