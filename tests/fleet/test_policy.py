"""Policy auto-approval and machine classes end to end: a real registrar on loopback over TLS, real
enrollment controllers, and the edge-registrar program (its own process) managing rules and listing nodes."""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from pydantic import SecretStr

from agent.context import AgentContext
from agent.model.fleet import JoinTokens
from agent.model.inventory import Gpu, Inventory, NvidiaDetails, System

from .harness import RegistrarHandle, box_config, cond, make_box, wait_for

K10 = "K10" + "cd" * 32 + "::server:s3cr3tjoin"
K10_AGENT = "K10" + "cd" * 32 + "::node:agentj0in"


def cli(handle: RegistrarHandle, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent.registrar", "--state-dir", str(handle.state_dir), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def ok(handle: RegistrarHandle, *args: str) -> str:
    proc = cli(handle, *args)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def inventory(*, gpus: tuple[str, ...] = (), cores: int = 8, display: bool = False) -> Inventory:
    cards = tuple(
        Gpu(kind="pci", name=name, vendor_id="10de", nvidia=NvidiaDetails(name=name, memory_mib=81559)) for name in gpus
    )
    if display:  # a BMC's display adapter is not a compute GPU
        cards += (Gpu(kind="pci", name="ASPEED Graphics Family", vendor_id="1a03", display_only=True),)
    system = System(cores=cores, threads=cores * 2, memory_bytes=64 * 2**30, serial="SN-1")
    return Inventory(scanned_at=datetime.now(UTC), system=system, gpus=cards)


def box(handle: RegistrarHandle, root: Path, token: str, machine_id: str, inv: Inventory | None) -> AgentContext:
    ctx = make_box(root, box_config(handle.url, handle.pin, token), machine_id)
    ctx.inventory.set(inv)
    return ctx


def node_rows(handle: RegistrarHandle) -> dict[str, dict[str, object]]:
    doc = json.loads(ok(handle, "nodes", "list", "-o", "json"))
    assert doc["schema"] == "edge-registrar.nodes/v1"
    return {n["node_id"]: n for n in doc["nodes"]}


def table_row(handle: RegistrarHandle, node_id: str) -> str:
    lines = ok(handle, "nodes", "list").splitlines()
    assert "APPROVED BY" in lines[0]
    return next(line for line in lines if line.startswith(node_id))


async def test_gpu_box_is_approved_by_policy_and_a_box_without_one_stays_pending(registrar, run_controller, tmp_path):
    ok(registrar, "policy", "add", "gpu", "--require", "gpu.count>=1")
    token = registrar.token(uses=2, require_approval=True)
    gpu = box(registrar, tmp_path / "gpu", token, "1" * 32, inventory(gpus=("NVIDIA H100 80GB HBM3",)))
    plain = box(registrar, tmp_path / "plain", token, "2" * 32, inventory(display=True))
    run_controller(gpu)
    run_controller(plain)

    await wait_for(lambda: gpu.assignment.value is not None, what="the GPU box's assignment")
    gpu_id = gpu.board.sections()["fleet"]["node_id"]
    gpu.join_tokens.set(JoinTokens(server=SecretStr(K10), agent=SecretStr(K10_AGENT)))  # its k3s came up
    await wait_for(lambda: "awaits approval" in plain.board.sections().get("fleet", {}).get("waiting", ""),
                   what="the plain box told it awaits approval")  # fmt: skip
    plain_id = plain.board.sections()["fleet"]["node_id"]

    rows = node_rows(registrar)
    assert rows[gpu_id]["state"] == "approved" and rows[gpu_id]["approved_by"] == "policy:gpu"
    assert rows[plain_id]["state"] == "pending" and rows[plain_id]["approved_by"] == ""
    assert rows[plain_id]["cluster"] == "" and plain.assignment.value is None
    assert cond(plain, "Assigned") == ("False", "Waiting")
    # certified (it must register its inventory to be judged) but not approved: the box says so
    assert cond(plain, "PendingApproval") == ("True", "AwaitingApproval")
    assert "policy:gpu" in table_row(registrar, gpu_id).split()
    shown = ok(registrar, "nodes", "show", gpu_id)
    assert "approved by: policy:gpu" in shown and "approved by policy:gpu" in shown

    # the operator approves the plain box by hand: it is assigned at its next call, without a restart
    approved = ok(registrar, "nodes", "approve", plain_id, "--by", "alice")
    assert "operator:alice" in approved
    await wait_for(lambda: plain.assignment.value is not None, timeout=10, what="assignment after approval")
    assert cond(plain, "PendingApproval") == ("False", "Approved")
    assert node_rows(registrar)[plain_id]["approved_by"] == "operator:alice"
    assert "operator:alice" in table_row(registrar, plain_id).split()


async def test_policy_approves_when_the_inventory_arrives_after_enrollment(registrar, run_controller, tmp_path):
    ok(registrar, "policy", "add", "big", "--require", "cores>=32", "--require", "memory_gib>=48", "--site", "lab")
    ctx = box(registrar, tmp_path / "b", registrar.token(require_approval=True), "3" * 32, None)
    run_controller(ctx)
    await wait_for(lambda: "awaits approval" in ctx.board.sections().get("fleet", {}).get("waiting", ""),
                   what="pending before the first scan")  # fmt: skip
    assert registrar.reg.registry.list_nodes()[0].state == "pending"

    ctx.inventory.set(inventory(cores=64))  # the first scan finishes: the box registers again
    await wait_for(lambda: ctx.assignment.value is not None, what="assignment once the inventory arrived")
    assert registrar.reg.registry.list_nodes()[0].approved_by == "policy:big"


async def test_a_pending_box_without_a_matching_policy_gets_no_join_token(registrar, run_controller, tmp_path):
    ok(registrar, "policy", "add", "gpu", "--require", "gpu.count>=1")
    first = box(registrar, tmp_path / "s", registrar.token(), "4" * 32, inventory())
    run_controller(first)
    await wait_for(lambda: first.assignment.value is not None)
    first.join_tokens.set(JoinTokens(server=SecretStr(K10), agent=SecretStr(K10_AGENT)))
    await wait_for(lambda: registrar.reg.registry.get_cluster("lab").server_token == K10, what="tokens reported")

    pending = box(registrar, tmp_path / "p", registrar.token(require_approval=True), "5" * 32, inventory())
    run_controller(pending)
    await wait_for(lambda: "awaits approval" in pending.board.sections().get("fleet", {}).get("waiting", ""))
    # the pending box holds a certificate (for the policies to see its inventory) but nothing of a cluster
    ident = pending.paths.identity_dir
    tls = ssl.create_default_context(cafile=str(ident / "ca.pem"))
    tls.load_cert_chain(ident / "cert.pem", ident / "key.pem")
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{registrar.url}/v1/fleet/assignment", ssl=tls) as resp:
            doc = await resp.json()
            assert resp.status == 200 and doc["state"] == "pending" and doc["assignment"] is None
            assert "awaits approval" in doc["waiting"]
        body = {"status": {}, "join_tokens": {"server": "K10" + "ee" * 32 + "::server:evil"}}
        async with http.post(f"{registrar.url}/v1/fleet/heartbeat", json=body, ssl=tls) as resp:
            assert resp.status == 403
    assert registrar.reg.registry.get_cluster("lab").server_token == K10
    assert pending.assignment.value is None


async def test_classes_place_h100_boxes_into_gpu_lab(registrar, run_controller, tmp_path):
    ok(registrar, "class", "add", "gpu-servers", "--require", "gpu.model~H100", "--require", "cores>=64",
       "--cluster", "gpu-lab", "--role", "server", "--priority", "10")  # fmt: skip
    ok(registrar, "class", "add", "h100", "--require", "gpu.model~h100", "--cluster", "gpu-lab", "--role", "agent")
    ok(registrar, "class", "add", "wants-server", "--require", "gpu.count>=2", "--cluster", "gpu-lab",
       "--role", "server", "--priority", "5")  # fmt: skip
    listed = json.loads(ok(registrar, "class", "list", "-o", "json"))["classes"]
    assert [c["name"] for c in listed] == ["gpu-servers", "wants-server", "h100"]

    token = registrar.token(uses=4)
    big = box(registrar, tmp_path / "big", token, "6" * 32, inventory(gpus=("NVIDIA H100 80GB HBM3",), cores=96))
    run_controller(big)
    await wait_for(lambda: big.assignment.value is not None, what="the first gpu-lab server")
    a = big.assignment.value
    assert (a.cluster, a.role, a.cluster_init) == ("gpu-lab", "server", True)
    big.join_tokens.set(JoinTokens(server=SecretStr(K10), agent=SecretStr(K10_AGENT)))

    small = box(registrar, tmp_path / "small", token, "7" * 32, inventory(gpus=("NVIDIA H100 PCIe",), cores=16))
    two = box(registrar, tmp_path / "two", token, "8" * 32, inventory(gpus=("NVIDIA L40S", "NVIDIA L40S")))
    plain = box(registrar, tmp_path / "plain", token, "9" * 32, inventory())
    for ctx in (small, two, plain):
        run_controller(ctx)
    for ctx in (small, two, plain):
        await wait_for(lambda ctx=ctx: ctx.assignment.value is not None, what="assignments")
    assert (small.assignment.value.cluster, small.assignment.value.role) == ("gpu-lab", "agent")
    assert small.assignment.value.join_token.get_secret_value() == K10_AGENT
    # asks for server, but gpu-lab has its one server: an agent
    assert (two.assignment.value.cluster, two.assignment.value.role) == ("gpu-lab", "agent")
    # no class matches: today's assignment, the site's cluster
    assert (plain.assignment.value.cluster, plain.assignment.value.role) == ("lab", "server")

    ids = {name: ctx.board.sections()["fleet"]["node_id"] for name, ctx in (("small", small), ("two", two))}
    shown = ok(registrar, "nodes", "show", ids["small"])
    assert "assigned by class:h100: cluster gpu-lab as agent" in shown
    assert "has its 1 server(s)" in ok(registrar, "nodes", "show", ids["two"])
    row = table_row(registrar, ids["small"]).split()
    assert "gpu-lab" in row and "agent" in row and f"token:{token.split('.')[0]}" in row


def waiting(ctx: AgentContext) -> str:
    return str(ctx.board.sections().get("fleet", {}).get("waiting", ""))


async def test_a_policy_added_later_approves_a_waiting_box_at_its_next_poll(registrar, run_controller, tmp_path):
    ok(registrar, "policy", "add", "arm", "--require", "arch==aarch64")
    ctx = box(registrar, tmp_path / "b", registrar.token(require_approval=True), "a" * 32, inventory(cores=16))
    run_controller(ctx)
    await wait_for(lambda: "awaits approval" in waiting(ctx), what="pending")
    ok(registrar, "policy", "add", "cores16", "--require", "cores==16")  # the box is not restarted
    await wait_for(lambda: ctx.assignment.value is not None, timeout=10, what="assignment at the next poll")
    assert registrar.reg.registry.list_nodes()[0].approved_by == "policy:cores16"


async def test_labels_and_site_a_box_claims_for_itself_do_not_satisfy_a_policy(registrar, run_controller, tmp_path):
    ok(registrar, "policy", "add", "rack7", "--label", "rack=r7", "--site", "berlin")
    good = registrar.token(site="berlin", labels={"rack": "r7"}, require_approval=True)
    vouched = make_box(tmp_path / "v", box_config(registrar.url, registrar.pin, good), "b" * 32)
    bare = registrar.token(site="", require_approval=True)
    seed = box_config(registrar.url, registrar.pin, bare, site="berlin", labels={"rack": "r7"})
    claims = make_box(tmp_path / "c", seed, "c" * 32)
    run_controller(vouched)
    run_controller(claims)
    await wait_for(lambda: vouched.assignment.value is not None, what="the token-vouched box approved")
    await wait_for(lambda: "awaits approval" in waiting(claims), what="the self-labelled box pending")
    nodes = {n.node_id: n for n in registrar.reg.registry.list_nodes()}
    assert nodes[vouched.board.sections()["fleet"]["node_id"]].approved_by == "policy:rack7"
    claimed = nodes[claims.board.sections()["fleet"]["node_id"]]
    assert claimed.state == "pending" and claimed.labels == {"rack": "r7"} and claimed.site == "berlin"
