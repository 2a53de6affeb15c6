"""The poll sweep part of bench/fleet_bench.py: N simulated mTLS agents, each with its own node
certificate, served by one process on one loopback port (the certificate chosen by SNI), polled:

  edge-registrar poll -o json     one sweep from the command line (start-up included): full handshakes
  floor                           one full mTLS handshake (both ends, this machine) x N; and a resumed one x N
  FleetPoller, one process        sweep 1: full handshakes; connections then closed, sessions kept:
                                  sweep 2: resumed sessions; sweep 3: over the kept-alive connections
  FleetPoller, two processes      the same, the fleet sharded across 2 replicas (agent.registrar.shards),
                                  both processes sweeping at once; the wall time of the slower one

Figures are printed, never asserted. The simulated agents share this machine's cores with the poller;
real boxes each bring their own CPU to their end of the handshake.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing as mp
import socket
import ssl
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from agent.registrar.ca import NODE_URI_PREFIX, CertificateAuthority, cert_pem, write_key
from agent.registrar.poll import FleetPoller, client_context
from agent.registrar.registry import Node
from agent.registrar.shards import shard
from agent.registrar.sqlite import SqliteRegistry

REGISTRAR = [sys.executable, "-m", "agent.registrar"]
CONCURRENCY = 200
STATUS_DOC = {
    "schema": "edge-agent.status/v1",
    "health": "healthy",
    "conditions": [
        {"type": t, "status": "True", "reason": "Ok", "message": "", "severity": "error"}
        for t in ("Enrolled", "Assigned", "NodeReady", "ConfigValid", "InventoryReady")
    ],
    "sections": {
        "inventory": {"gpus": 1, "summary": "1 GPU"},
        "kubernetes": {"ready": True},
        "fleet": {"role": "agent"},
    },
}


def _serve_agents(certs_dir: str, ids: list[str], ca: str, port: int, ready: Any) -> None:
    """Every simulated agent on one port: the node certificate chosen by SNI (the poller asks for
    ``server_hostname=<node id>``), client certificates of the fleet CA required, and the client's
    role checked on every request, resumed sessions included."""
    contexts: dict[str, ssl.SSLContext] = {}
    for node_id in ids:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cafile=ca)
        ctx.load_cert_chain(f"{certs_dir}/{node_id}.pem", f"{certs_dir}/key.pem")
        contexts[node_id] = ctx
    front = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    front.load_cert_chain(f"{certs_dir}/{ids[0]}.pem", f"{certs_dir}/key.pem")
    # OpenSSL keeps the first context's verify mode when SNI switches contexts: without this the
    # client certificate is never asked for (the bench before 2026-12 measured no client auth)
    front.verify_mode = ssl.CERT_REQUIRED
    front.load_verify_locations(cafile=ca)

    def pick(sock: ssl.SSLObject, name: str | None, _: ssl.SSLContext) -> None:
        if name in contexts:
            sock.context = contexts[name]

    front.sni_callback = pick  # type: ignore[assignment]

    async def status(request: web.Request) -> web.Response:
        tls = request.transport.get_extra_info("ssl_object") if request.transport else None
        if tls is None or not tls.getpeercert():
            return web.json_response({"title": "no client certificate"}, status=401)
        return web.json_response(STATUS_DOC)

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/v1/status", status)
        runner = web.AppRunner(app, access_log=None, keepalive_timeout=600)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port, ssl_context=front, backlog=4096).start()
        ready.set()
        await asyncio.Event().wait()

    asyncio.run(main())


def _handshake_cost(port: int, node_id: str, client_dir: Path, samples: int) -> tuple[float, float]:
    """Seconds of one full mTLS handshake (no session offered) and of one resumed one, medians."""
    ctx = client_context(client_dir)
    full, resumed = [], []
    session = None
    for i in range(2 * samples):
        t0 = time.perf_counter()
        with (
            socket.create_connection(("127.0.0.1", port)) as raw,
            ctx.wrap_socket(raw, server_hostname=node_id, session=session if i % 2 else None) as s,
        ):
            s.do_handshake()
            took = time.perf_counter() - t0
            (resumed if s.session_reused else full).append(took)
            s.sendall(f"GET /v1/status HTTP/1.1\r\nHost: {node_id}\r\n\r\n".encode())
            s.recv(65536)  # the ticket comes with the answer
            session = s.session
    full.sort()
    resumed.sort()
    return full[len(full) // 2], (resumed[len(resumed) // 2] if resumed else float("nan"))


Sweep = tuple[float, int, str, float]  # seconds, reachable, how the boxes were reached, poller CPU seconds


async def _three_sweeps(client_dir: Path, nodes: list[Node], barrier: Any = None) -> list[Sweep]:
    """Full, resumed, kept-alive, each with this process's CPU (the registrar's side alone); with
    ``barrier`` every sweep starts together with the other processes'."""
    poller = FleetPoller(client_dir, timeout=60, concurrency=CONCURRENCY, keep_alive=600)
    out = []
    try:
        for step in range(3):
            if step == 1:
                poller.client.close()  # connections gone (the boxes' keep-alive ran out), sessions kept
            if barrier is not None:
                await asyncio.to_thread(barrier.wait)
            t0, cpu0 = time.perf_counter(), time.process_time()
            rows = await poller.sweep(nodes)
            s = poller.stats
            out.append((time.perf_counter() - t0, sum(r.reachable for r in rows),
                        f"{s.full} full, {s.resumed} resumed, {s.kept} kept", time.process_time() - cpu0))  # fmt: skip
    finally:
        await poller.close()
    return out


def _shard_worker(client_dir: str, nodes: list[Node], barrier: Any, results: Any) -> None:
    results.put(asyncio.run(_three_sweeps(Path(client_dir), nodes, barrier)))


def _make_fleet(work: Path, agents: int) -> tuple[Path, Path, list[str], list[Node], int]:
    state = work / "poll"
    subprocess.run([*REGISTRAR, "--state-dir", str(state), "init"], check=True, capture_output=True)
    ca = CertificateAuthority.load(state)
    registry = SqliteRegistry(state / "registry.sqlite")
    certs_dir = work / "agents"
    certs_dir.mkdir()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    key = ec.generate_private_key(ec.SECP256R1())  # one key for all simulated boxes; one cert each
    write_key(certs_dir / "key.pem", key)
    ids = [f"sim-{i:05d}" for i in range(agents)]
    nodes = []
    for i, node_id in enumerate(ids):
        names = [x509.DNSName(node_id), x509.UniformResourceIdentifier(NODE_URI_PREFIX + node_id)]
        cert = ca.issue(key.public_key(), common_name=node_id, role="fleet:node", lifetime=timedelta(days=1),
                        names=names)  # fmt: skip
        (certs_dir / f"{node_id}.pem").write_bytes(cert_pem(cert))
        site = f"site-{i % 20:02d}"
        node = Node(node_id, "approved", "t", "fp", site=site, cluster=site, role="agent", addresses=["127.0.0.1"],
                    api_port=port, last_seen=time.time(), serial=f"{cert.serial_number:x}")  # fmt: skip
        registry.create_node(node)
        registry.add_cert(cert.serial_number, node_id, cert.not_valid_after_utc.timestamp())
        nodes.append(node)
    registry.close()
    return state, certs_dir, ids, nodes, port


def poll_sweep(work: Path, agents: int, *, processes: int = 2) -> None:
    state, certs_dir, ids, nodes, port = _make_fleet(work, agents)
    ready = mp.Event()
    server = mp.Process(target=_serve_agents, args=(str(certs_dir), ids, str(state / "ca.pem"), port, ready),
                        daemon=True)  # fmt: skip
    server.start()
    if not ready.wait(600):
        raise SystemExit("simulated agents did not come up")
    try:
        t0 = time.perf_counter()
        out = subprocess.run([*REGISTRAR, "--state-dir", str(state), "poll", "-o", "json"], capture_output=True,
                             text=True, check=True)  # fmt: skip
        elapsed = time.perf_counter() - t0
        full_one, resumed_one = _handshake_cost(port, ids[0], state / "poller", 100)
        one = asyncio.run(_three_sweeps(state / "poller", nodes))
        replicas = [f"replica-{i}" for i in range(processes)]
        barrier, results = mp.Barrier(processes), mp.Queue()
        workers = [mp.Process(target=_shard_worker, args=(str(state / "poller"), shard(nodes, replicas, r), barrier,
                                                          results)) for r in replicas]  # fmt: skip
        for w in workers:
            w.start()
        sharded = [results.get(timeout=900) for _ in workers]
        for w in workers:
            w.join(30)
    finally:
        server.terminate()
        server.join(10)
    polled = json.loads(out.stdout)["nodes"]
    reachable = sum(n["reachable"] for n in polled)
    floor = full_one * agents
    print(f"poll sweep: {agents} simulated mTLS agents, each its own node certificate, one serving process")
    print(f"  edge-registrar poll (one sweep, full handshakes, start-up included): {reachable}/{len(polled)} "
          f"reachable in {elapsed:.2f} s")  # fmt: skip
    print(f"  floor: one full mTLS handshake {full_one * 1000:.2f} ms x {agents} = {floor:.2f} s; "
          f"one resumed {resumed_one * 1000:.2f} ms x {agents} = {resumed_one * agents:.2f} s")  # fmt: skip
    names = ("full handshakes", "resumed sessions", "kept-alive connections")
    print("  FleetPoller, 1 process (poller CPU per box: the registrar's side alone; the boxes bring their own):")
    for name, (secs, ok, how, cpu) in zip(names, one, strict=True):
        print(f"    {name:<24} {secs:6.2f} s  ({ok}/{agents} reachable; {how}); sweep / floor = {secs / floor:.2f}; "
              f"poller CPU {cpu / agents * 1000:.2f} ms per box")  # fmt: skip
    print(f"  FleetPoller, {processes} processes (sharded as {processes} replicas, sweeping at once), the slower one:")
    for step, name in enumerate(names):
        secs = max(r[step][0] for r in sharded)
        ok = sum(r[step][1] for r in sharded)
        met = "met" if secs <= 10 else "NOT met"
        print(f"    {name:<24} {secs:6.2f} s  ({ok}/{agents} reachable); sweep / floor = {secs / floor:.2f}; "
              f"target <= 10 s {met}")  # fmt: skip
