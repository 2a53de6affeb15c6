"""The fleet poll's TLS sessions against real boxes (the agent's remote API behind its own listener):
a resumed session still shows the box the poller's client certificate, so its role and revocation
checks hold; a session is only good with the box that made it."""

from __future__ import annotations

from agent.api.app import ApiInfo, build_app
from agent.api.mtls import require_role
from agent.errors import BoxAnswerError
from agent.registrar.poll import FleetPoller, client_context
from agent.registrar.tls_client import SessionClient

from .harness import client_cert, wait_for
from .test_remote_api import start_box


def agent_app(ctx):  # type: ignore[no-untyped-def]
    return build_app(ctx, ApiInfo(), middlewares=[require_role])


async def test_a_resumed_session_is_served_as_the_reader_and_kept_connections_need_no_handshake(
    registrar, run_controller, tmp_path
):
    reader = client_cert(registrar, tmp_path / "reader", "fleet:reader", name="edge-registrar-poller")
    async with start_box(registrar, tmp_path / "b1", run_controller, "d1" * 16, agent_app) as b1:
        nodes = [n for n in registrar.reg.registry.list_nodes() if n.node_id == b1.node_id]
        poller = FleetPoller(reader.cert.parent, timeout=5, keep_alive=60)
        try:
            (row,) = await poller.sweep(nodes)
            assert row.reachable and row.health in ("healthy", "degraded") and poller.stats.full == 1
            (row,) = await poller.sweep(nodes)
            assert row.reachable and (poller.stats.kept, poller.stats.full) == (1, 0)
            for _ in range(3):  # one ticket serves many resumptions
                poller.client.close()  # as when the box's keep-alive ran out: the session is all that is left
                (row,) = await poller.sweep(nodes)
                # 200, not 401: the box read the reader certificate from the resumed session and allowed GET
                assert row.reachable, row.error
                assert (poller.stats.resumed, poller.stats.full) == (1, 0)
        finally:
            await poller.close()


async def test_role_and_revocation_checks_hold_on_a_resumed_session(registrar, run_controller, tmp_path):
    reader = client_cert(registrar, tmp_path / "reader", "fleet:reader", name="carol")
    node_role = client_cert(registrar, tmp_path / "node", "fleet:node", name="a-box")
    async with start_box(registrar, tmp_path / "b1", run_controller, "d2" * 16, agent_app) as b1:
        for cc, first in ((node_role, 403), (reader, 200)):
            client = SessionClient(client_context(cc.cert.parent), keep=False)
            answer = await client.get(b1.node_id, "127.0.0.1", b1.port, "/v1/status", 5)
            assert (answer.status, answer.resumed) == (first, False)
            answer = await client.get(b1.node_id, "127.0.0.1", b1.port, "/v1/status", 5)
            assert (answer.status, answer.resumed) == (first, True)  # a node certificate stays refused
        assert registrar.reg.registry.revoke_cert(reader.serial)
        fresh = SessionClient(client_context(reader.cert.parent), keep=False, resume=False)

        async def refused() -> bool:
            try:
                return (await fresh.get(b1.node_id, "127.0.0.1", b1.port, "/v1/status", 5)).status == 403
            except (OSError, BoxAnswerError):  # refused in the handshake (TLS 1.3: the box hangs up after it)
                return True

        await wait_for(refused, timeout=5, what="the box to learn the revocation")
        answer = await client.get(b1.node_id, "127.0.0.1", b1.port, "/v1/status", 5)
        assert (answer.status, answer.resumed) == (403, True)  # the session made before revocation: refused


async def test_a_session_is_only_good_with_the_box_that_made_it(registrar, run_controller, tmp_path):
    reader = client_cert(registrar, tmp_path / "reader", "fleet:reader", name="dave")
    async with (
        start_box(registrar, tmp_path / "b1", run_controller, "d3" * 16, agent_app) as b1,
        start_box(registrar, tmp_path / "b2", run_controller, "d4" * 16, agent_app) as b2,
    ):
        client = SessionClient(client_context(reader.cert.parent), keep=False)
        assert (await client.get(b1.node_id, "127.0.0.1", b1.port, "/v1/status", 5)).status == 200
        assert b1.node_id in client.sessions
        # b1's address now answered by b2 (a box replaced, an address reused): b1's session does not
        # carry over; the full handshake then finds b2's certificate, which is not b1's
        try:
            answer = await client.get(b1.node_id, "127.0.0.1", b2.port, "/v1/status", 5)
        except OSError as exc:
            assert "certificate" in str(exc) or "hostname" in str(exc), exc
        else:
            raise AssertionError(f"b2 was taken for b1: {answer}")
