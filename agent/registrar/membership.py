"""Membership API over mTLS (node certificates only): register, heartbeat, assignment; the public CRL.

Wire documents (JSON, schema ``edge-registrar.membership/v1``; the models agents use too are in
agent.model.wire):
- ``POST /v1/fleet/register``  RegisterRequest {addresses, api_port, inventory, dmi_serial, site, labels}
- ``POST /v1/fleet/heartbeat`` HeartbeatRequest {status?, boot_id, hardware, join_tokens?: {server, agent}};
  a status left out keeps the one stored (answers say ``status_kept``: agent.fleet.status_report);
  409 while the node is flagged DuplicateIdentity and this is not its first box (agent.registrar.duplicates)
- ``GET  /v1/fleet/assignment``
each answered with a MembershipAnswer {node_id, state, cluster, assignment | null, waiting, crl_number,
status_kept}.
``GET /v1/fleet/crl`` is the DER CRL of revoked serials (``application/pkix-crl``), public.

A pending node (certified only because approval policies exist) may call all three and is told it
awaits approval; approval policies judge it at register, machine classes place it when it is first
assigned (agent.registrar.policy, agent.registrar.classes).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from agent.api.http import problem
from agent.model.fleet import Assignment
from agent.model.wire import HeartbeatRequest, MembershipAnswer, RegisterRequest
from agent.registrar.assign import assignment_for, choose_role
from agent.registrar.classes import class_from_json, placing
from agent.registrar.duplicates import instance_of
from agent.registrar.policy import approving, policy_from_json
from agent.registrar.registry import ClusterView, Node, Registration
from agent.registrar.service import REGISTRAR, Registrar, peer_of, source_of
from agent.registrar.sitenet import KIND as SITE_NETWORK
from agent.registrar.sitenet import site_override

log = logging.getLogger("edge-registrar.membership")

M = TypeVar("M", bound=BaseModel)


def agent_token(distribution: str, server: str, agent: str) -> str:
    """The agent token worth handing to agents: one that is not the server token (k3s links
    ``agent-token`` to the server token when none was set) and, for k3s, of the agent form
    ``K10<hash>::node:<password>`` (contract A4, A9). Else ""."""
    if not agent or agent == server:
        return ""
    if distribution == "k3s" and not (agent.startswith("K10") and "::node:" in agent):
        return ""
    return agent


def _member(request: web.Request) -> Node | web.Response:
    seen = _seen(request, "")
    return seen if isinstance(seen, web.Response) else seen[0]


def _seen(request: web.Request, view_rule: str) -> tuple[Node, ClusterView | None] | web.Response:
    """The calling node (pending: enrolled for approval policies to judge), and with ``view_rule`` what
    its answer needs, in one read."""
    peer = peer_of(request)
    if peer is None:
        return problem(401, "Unauthorized", "a node client certificate of this fleet is required")
    seen = request.app[REGISTRAR].member(peer, view_rule)
    if seen is None or seen[0].state not in ("approved", "pending"):
        return problem(403, "Forbidden", "certificate revoked or not a node certificate")
    return seen


async def _body(request: web.Request, model: type[M]) -> M | web.Response:
    try:
        return model.model_validate_json(await request.read())
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        return problem(400, "Bad request", f"{where}: {first['msg']}")


def _answer(reg: Registrar, node: Node, view: ClusterView | None = None) -> web.Response:
    """The answer to ``node``; ``view``: its cluster as read in this request already, else read now."""
    assignment: dict[str, Any] | None = None
    crl_number: int | None = None
    if node.state == "pending":
        waiting = f"node {node.node_id} awaits approval (no approval policy matches it; 'nodes approve')"
    elif node.cluster:
        view = view or reg.registry.cluster_view(node.cluster, SITE_NETWORK, node.site)  # one read for all of it
        servers = [node if s.node_id == node.node_id else s for s in view.servers]  # this node as it is now
        assignment, waiting = assignment_for(view.cluster or reg.cluster(node.cluster), servers, node)
        if assignment is not None and node.site and (override := site_override(view.rule)) is not None:
            assignment["network"] = override
        crl_number = view.crl_number
    else:
        waiting = "not registered yet"
    answer = MembershipAnswer(
        node_id=node.node_id,
        state=node.state,
        cluster=node.cluster,
        assignment=Assignment.model_validate(assignment) if assignment is not None else None,
        waiting=waiting,
        crl_number=reg.registry.crl_number() if crl_number is None else crl_number,
        status_kept=True,
    )
    return web.Response(body=answer.to_bytes(), content_type="application/json")


async def register(request: web.Request) -> web.StreamResponse:
    reg = request.app[REGISTRAR]
    node = _member(request)
    if isinstance(node, web.Response):
        return node
    body = await _body(request, RegisterRequest)
    if isinstance(body, web.Response):
        return body
    site = node.site or body.site or "default"
    labels = {**body.labels, **node.labels}  # the token's labels win over the box's claims
    reg.registry.record_register(
        node.node_id,
        Registration(body.addresses, source_of(request), body.api_port, body.inventory, body.dmi_serial, site, labels),
    )
    return _answer(reg, _assigned(reg, node.node_id))


def _judged(reg: Registrar, node: Node) -> Node:
    """A pending node, approved when an approval policy matches what it registered (checked at every
    call, so a policy added later approves a waiting box at its next poll). Site and labels are the
    token's; serial and hardware facts are what the box reported (it holds a valid bootstrap token)."""
    token = reg.registry.get_token(node.token_id)
    # site and labels as the operator's bootstrap token set them: what the box claims for itself does not count
    vouched = replace(node, site=token.site if token else "", labels=dict(token.labels) if token else {})
    policy = approving([policy_from_json(p) for p in reg.registry.rules("policy")], vouched)
    if policy is None:
        return node
    reg.registry.set_state(node.node_id, "approved", by=f"policy:{policy.name}")
    log.info("node %s approved by policy %s (%s)", node.node_id, policy.name, policy.describe())
    fresh = reg.registry.get_node(node.node_id)
    assert fresh is not None
    return fresh


def _assigned(reg: Registrar, node_id: str) -> Node:
    """The node as stored now (its whole row: policies judge its inventory), judged by the approval policies
    while pending, and given its cluster and role first when it is approved and has none: the machine class
    with the highest priority that matches decides (agent.registrar.classes), else its site does."""
    node = reg.registry.get_node(node_id)
    assert node is not None
    if node.state == "pending":
        node = _judged(reg, node)
    if node.role or node.state != "approved":
        return node
    placed = placing([class_from_json(c) for c in reg.registry.rules("class")], node)
    want = placed.role if placed else ""
    # decided under the cluster's lock: replicas assigning boxes of one cluster at once take turns
    node, assigned = reg.registry.assign_node(
        node_id,
        reg.new_cluster(placed.cluster if placed else node.site or "default"),
        lambda cluster, members, me: choose_role(cluster, members, me, want),
    )
    if not assigned:
        return node
    cluster = reg.cluster(node.cluster)
    role, init = node.role, node.cluster_init
    by = f"class:{placed.name}" if placed else "site"
    what = f"cluster {cluster.name} as {role}" + (" (init)" if init else "")
    if placed and placed.role == "server" and role == "agent":
        what += f" (cluster {cluster.name} has its {cluster.servers} server(s))"
    reg.registry.add_event(node.node_id, "assigned", by, what)
    log.info("node %s assigned to %s by %s", node.node_id, what, by)
    return node


async def heartbeat(request: web.Request) -> web.StreamResponse:
    reg = request.app[REGISTRAR]
    peer = peer_of(request)
    if peer is None:
        return problem(401, "Unauthorized", "a node client certificate of this fleet is required")
    body = await _body(request, HeartbeatRequest)
    if isinstance(body, web.Response):
        return body
    instance = instance_of(body.boot_id, body.hardware)
    view: ClusterView | None
    beat = reg.heartbeat(peer, instance, body.status, source_of(request), SITE_NETWORK)  # one statement, mostly
    if beat is not None:
        node, view = beat
    else:  # revoked, unknown, or another box than the one heard as this node: read which, judge the instance
        seen = _seen(request, SITE_NETWORK)
        if isinstance(seen, web.Response):
            return seen
        node, view = seen[0], None  # read before this heartbeat was stored: answered anew
        verdict = reg.registry.record_instance(node.node_id, instance, body.status, source_of(request))
        if verdict is None:
            return problem(403, "Forbidden", "certificate revoked or not a node certificate")
        if verdict.flag is not None and verdict.new_flag:
            log.warning("node %s flagged: %s", node.node_id, verdict.flag.reason)
        if not verdict.accept:
            assert verdict.flag is not None
            log.warning("node %s: heartbeat refused: %s", node.node_id, verdict.flag.reason)
            return problem(409, "Conflict", verdict.flag.reason)
    if body.join_tokens is not None:
        if node.role != "server" or not node.cluster:
            return problem(403, "Forbidden", "only servers of a cluster report its join tokens")
        cluster = reg.cluster(node.cluster)
        if cluster.distribution == "k3s" and not body.join_tokens.server.startswith("K10"):
            return problem(400, "Bad request", "join_tokens.server: expected a k3s 'K10<ca-hash>::' token")
        agent = agent_token(cluster.distribution, body.join_tokens.server, body.join_tokens.agent)
        if not agent:
            log.warning("cluster %s: %s reported no separate agent token; agents wait for one", cluster.name,
                        node.node_id)  # fmt: skip
        reg.registry.set_join_tokens(cluster.name, body.join_tokens.server, agent)
        log.info("cluster %s join tokens reported by %s", cluster.name, node.node_id)
        view = None  # the cluster changed since it was read
    if view is not None and node.role and node.state == "approved":
        return _answer(reg, node, view)  # placed: answered from what the heartbeat read
    # pending, or approved since: judged or placed on the node read whole (inventory included)
    return _answer(reg, _assigned(reg, node.node_id))


async def assignment(request: web.Request) -> web.StreamResponse:
    node = _member(request)
    if isinstance(node, web.Response):
        return node
    return _answer(request.app[REGISTRAR], _assigned(request.app[REGISTRAR], node.node_id))


async def crl(request: web.Request) -> web.StreamResponse:
    return web.Response(body=request.app[REGISTRAR].crl_der(), content_type="application/pkix-crl")


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/fleet/register", register)
    app.router.add_post("/v1/fleet/heartbeat", heartbeat)
    app.router.add_get("/v1/fleet/assignment", assignment)
    app.router.add_get("/v1/fleet/crl", crl)
