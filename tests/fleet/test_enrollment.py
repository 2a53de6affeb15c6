"""Enrollment end to end over real TLS on loopback: one box, a second joining, approval, renewal."""

from __future__ import annotations

import stat
import time
from datetime import timedelta
from pathlib import Path

from pydantic import SecretStr

from agent.model.fleet import JoinTokens

from .harness import box_config, cond, make_box, new_registrar, wait_for

K10 = "K10" + "ab" * 32 + "::server:s3cr3tjoin"
K10_AGENT = "K10" + "ab" * 32 + "::node:agentj0in"


async def test_one_box_enrolls_registers_and_is_told_to_initialise(registrar, run_controller, tmp_path: Path):
    ctx = make_box(tmp_path / "box1", box_config(registrar.url, registrar.pin, registrar.token()), "a" * 32)
    run_controller(ctx)
    await wait_for(lambda: cond(ctx, "Assigned") == ("True", "Assigned"), what="assignment")

    assert cond(ctx, "Enrolled") == ("True", "Enrolled")
    a = ctx.assignment.value
    assert a is not None and a.role == "server" and a.cluster_init and a.cluster == "lab"
    ident = ctx.paths.identity_dir
    assert stat.S_IMODE((ident / "key.pem").stat().st_mode) == 0o600
    assert stat.S_IMODE(ident.stat().st_mode) == 0o700
    node = registrar.reg.registry.list_nodes()[0]
    assert node.state == "approved" and node.role == "server" and node.cluster_init
    section = ctx.board.sections()["fleet"]
    assert section["enrolled"] is True and section["role"] == "server"


async def test_second_box_joins_the_first_servers_cluster_with_its_real_token(registrar, run_controller, tmp_path):
    token = registrar.token(uses=2)
    first = make_box(tmp_path / "b1", box_config(registrar.url, registrar.pin, token), "1" * 32)
    run_controller(first)
    await wait_for(lambda: first.assignment.value is not None, what="first assignment")

    second = make_box(tmp_path / "b2", box_config(registrar.url, registrar.pin, token), "2" * 32)
    run_controller(second)
    await wait_for(lambda: cond(second, "Assigned") == ("False", "Waiting"), what="joiner waiting for the token")
    assert second.assignment.value is None

    # k3s on the first server comes up; the runtime publishes the tokens it read
    first.join_tokens.set(JoinTokens(server=SecretStr(K10), agent=SecretStr(K10_AGENT)))
    await wait_for(lambda: second.assignment.value is not None, what="joiner assignment")
    a = second.assignment.value
    assert a.role == "agent" and not a.cluster_init  # one server per cluster by default
    assert a.join_token.get_secret_value() == K10_AGENT
    assert a.server_url.startswith("https://") and a.server_url.endswith(":6443")


async def test_three_servers_then_agents(tmp_path, run_controller):
    from dataclasses import replace

    from .harness import FAST

    handle = new_registrar(tmp_path / "reg", replace(FAST, servers=3))
    await handle.start()
    try:
        token = handle.token(uses=4)
        boxes = [make_box(tmp_path / f"b{i}", box_config(handle.url, handle.pin, token), f"{i}" * 32) for i in range(4)]
        run_controller(boxes[0])
        await wait_for(lambda: boxes[0].assignment.value is not None)
        boxes[0].join_tokens.set(JoinTokens(server=SecretStr(K10), agent=SecretStr(K10_AGENT)))
        for b in boxes[1:]:
            run_controller(b)
            await wait_for(lambda b=b: b.assignment.value is not None)
        roles = [(b.assignment.value.role, b.assignment.value.cluster_init) for b in boxes]
        assert roles == [("server", True), ("server", False), ("server", False), ("agent", False)]
        assert boxes[1].assignment.value.join_token.get_secret_value() == K10
    finally:
        await handle.stop()


async def test_approval_flow(registrar, run_controller, tmp_path):
    token = registrar.token(require_approval=True)
    ctx = make_box(tmp_path / "b", box_config(registrar.url, registrar.pin, token), "c" * 32)
    run_controller(ctx)
    await wait_for(lambda: cond(ctx, "PendingApproval") == ("True", "AwaitingApproval"), what="pending")
    pending = ctx.board.condition("PendingApproval")
    assert pending.severity == "info"
    assert not (ctx.paths.identity_dir / "cert.pem").exists()
    node_id = registrar.reg.registry.list_nodes()[0].node_id
    registrar.reg.registry.set_state(node_id, "approved")
    await wait_for(lambda: cond(ctx, "Enrolled") == ("True", "Enrolled"), timeout=10, what="enrolled after approval")
    assert cond(ctx, "PendingApproval") == ("False", "Approved")


async def test_certificate_is_renewed_at_two_thirds_of_its_life(tmp_path, run_controller):
    from dataclasses import replace

    from .harness import FAST

    handle = new_registrar(tmp_path / "reg", replace(FAST, cert_lifetime=timedelta(seconds=3)))
    await handle.start()
    try:
        ctx = make_box(tmp_path / "b", box_config(handle.url, handle.pin, handle.token(), heartbeat=5), "d" * 32)
        run_controller(ctx)
        await wait_for(lambda: ctx.board.sections().get("fleet", {}).get("cert_serial"), what="first cert")
        first = ctx.board.sections()["fleet"]["cert_serial"]
        # the heartbeat is 5 s but renewal is due after ~2 s: the controller wakes for it
        await wait_for(lambda: ctx.board.sections()["fleet"]["cert_serial"] != first, timeout=6, what="renewal")
        assert handle.reg.registry.list_nodes()[0].serial == ctx.board.sections()["fleet"]["cert_serial"]
        assert cond(ctx, "Enrolled") == ("True", "Enrolled")
    finally:
        await handle.stop()


async def test_metrics_show_enrollment_and_certificate_times(registrar, run_controller, tmp_path):
    from agent.fleet.metrics import metrics

    ctx = make_box(tmp_path / "m", box_config(registrar.url, registrar.pin, registrar.token()), "ee" * 16)
    assert list(metrics(ctx)) == []  # nothing before the controller ran
    run_controller(ctx)
    await wait_for(lambda: ctx.assignment.value is not None)
    await wait_for(lambda: ctx.board.sections()["fleet"].get("last_contact"))
    lines = list(metrics(ctx))
    assert "edge_agent_fleet_enrolled 1" in lines
    assert 'edge_agent_fleet_assigned{cluster="lab",role="server",distribution="k3s"} 1' in lines
    expiry = next(ln for ln in lines if ln.startswith("edge_agent_fleet_certificate_expiry_timestamp_seconds "))
    assert abs(float(expiry.split()[1]) - (time.time() + 3600)) < 120
    assert all(ln.startswith("#") or ln.startswith("edge_agent_fleet_") for ln in lines)


async def test_a_failed_write_does_not_wedge_the_registrar(registrar, run_controller, tmp_path):
    """One refused write (the same serial recorded twice) must not leave the store inside an open
    transaction: the next box still enrolls and a certificate can still be revoked."""
    import sqlite3

    import pytest

    from agent.errors import StateError

    store = registrar.reg.registry
    first = make_box(tmp_path / "w1", box_config(registrar.url, registrar.pin, registrar.token()), "f1" * 16)
    run_controller(first)
    await wait_for(lambda: cond(first, "Enrolled") == ("True", "Enrolled"), what="first box enrolled")
    node = store.list_nodes()[0]
    serial = int(node.serial, 16)
    with pytest.raises((StateError, sqlite3.Error)) as refused:
        store.record_cert(node.node_id, serial, time.time() + 3600)

    second = make_box(tmp_path / "w2", box_config(registrar.url, registrar.pin, registrar.token()), "f2" * 16)
    run_controller(second)
    await wait_for(lambda: cond(second, "Enrolled") == ("True", "Enrolled"), what="enrollment after a failed write")
    assert len(store.list_nodes()) == 2
    assert store.revoke_cert(serial) is True
    assert store.cert_owner(serial) is None
    # ...and the refusal itself names the store and the write
    assert isinstance(refused.value, StateError)
    assert "registry.sqlite" in str(refused.value) and f"record certificate {node.serial}" in str(refused.value)
