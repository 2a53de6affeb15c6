"""Fleet figures: enrollments/s in a first-boot storm, and `edge-registrar poll` over 1,000 agents.

Printed, never asserted:
  enrollments/s   N agents enroll at once against `edge-registrar serve` (a separate process): each
                  opens its own TLS connection (full handshake, no resumption) and POSTs
                  /simpleenroll with its bootstrap token; the registrar checks the token, the
                  CSR and its key, signs, and records the node in SQLite.      (target >= 200/s)
  poll sweep      `edge-registrar poll -o json` as a program (start-up included) over 1,000
                  simulated agents, each an mTLS endpoint with its own node certificate on
                  loopback, served by a separate process.                      (target <= 10 s)

Usage: python bench/fleet_bench.py [--agents 400] [--poll-agents 1000] [--clients 2]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import multiprocessing as mp
import os
import resource
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import aiohttp
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from agent.registrar.ca import NODE_URI_PREFIX, CertificateAuthority, cert_pem, write_key
from agent.registrar.registry import Node
from agent.registrar.sqlite import SqliteRegistry

REGISTRAR = [sys.executable, "-m", "agent.registrar"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_port(port: int, proc: subprocess.Popen[bytes] | None = None, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if proc is not None and proc.poll() is not None:
                raise SystemExit(f"server exited {proc.returncode}") from None
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on {port}")


# -- enrollment storm -------------------------------------------------------------------------
def make_csrs(n: int) -> list[bytes]:
    out = []
    for _ in range(n):
        key = ec.generate_private_key(ec.SECP256R1())
        csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([])).sign(key, hashes.SHA256())
        out.append(base64.encodebytes(csr.public_bytes(serialization.Encoding.DER)))
    return out


async def _storm(port: int, ca: str, token: str, csrs: list[bytes], prefix: str) -> list[int]:
    async def one(i: int, csr: bytes) -> int:
        ctx = ssl.create_default_context(cafile=ca)  # a fresh context: no session resumption
        auth = base64.b64encode(f"{prefix}-{i}:{token}".encode()).decode()
        headers = {"Authorization": f"Basic {auth}", "Content-Type": "application/pkcs10"}
        connector = aiohttp.TCPConnector(ssl=ctx, force_close=True)
        async with (
            aiohttp.ClientSession(connector=connector) as s,
            s.post(f"https://127.0.0.1:{port}/.well-known/est/simpleenroll", data=csr, headers=headers) as r,
        ):
            await r.read()
            return r.status

    return await asyncio.gather(*(one(i, c) for i, c in enumerate(csrs)))


def _storm_worker(port: int, ca: str, token: str, csrs: list[bytes], prefix: str, start: float, q: mp.Queue) -> None:
    time.sleep(max(0.0, start - time.time()))
    t0 = time.time()
    statuses = asyncio.run(_storm(port, ca, token, csrs, prefix))
    q.put((t0, time.time(), statuses))


def enrollment_storm(work: Path, agents: int, clients: int) -> None:
    state = work / "storm"
    subprocess.run([*REGISTRAR, "--state-dir", str(state), "init"], check=True, capture_output=True)
    token = subprocess.run(
        [*REGISTRAR, "--state-dir", str(state), "token", "create", "--uses", str(agents), "--site", "bench"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    port = free_port()
    server = subprocess.Popen(
        [*REGISTRAR, "--state-dir", str(state), "--log-level", "warning", "serve", "--listen", f"127.0.0.1:{port}"]
    )
    try:
        wait_port(port, server)
        cpu0 = cpu_seconds(server.pid)
        per = [agents // clients + (1 if i < agents % clients else 0) for i in range(clients)]
        csrs = make_csrs(agents)  # keys are made on each box before the storm: not the registrar's cost
        q: mp.Queue = mp.Queue()
        start = time.time() + 0.5
        procs, offset = [], 0
        for i, n in enumerate(per):
            chunk = csrs[offset : offset + n]
            p = mp.Process(target=_storm_worker, args=(port, str(state / "ca.pem"), token, chunk, f"c{i}", start, q))
            offset += n
            p.start()
            procs.append(p)
        results = [q.get() for _ in procs]
        for p in procs:
            p.join()
        cpu = cpu_seconds(server.pid) - cpu0
    finally:
        server.terminate()
        server.wait(10)
    t0 = min(r[0] for r in results)
    t1 = max(r[1] for r in results)
    statuses = [s for r in results for s in r[2]]
    ok = statuses.count(200)
    print(f"enrollment storm: {agents} agents at once from {clients} client processes, fresh TLS handshake each")
    rate = ok / (t1 - t0)
    print(f"  {ok}/{agents} enrolled (200) in {t1 - t0:.2f} s  ->  {rate:.0f} enrollments/s  (target >= 200/s)")
    print(
        f"  registrar CPU: {cpu:.2f} s = {cpu / max(ok, 1) * 1000:.2f} ms per enrollment, "
        f"i.e. {ok / max(cpu, 1e-9):.0f} enrollments/s per core it gets (the clients share this machine)"
    )
    others = {s: statuses.count(s) for s in set(statuses) if s != 200}
    if others:
        print(f"  other answers: {others}")


# -- poll sweep -------------------------------------------------------------------------------
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


def _serve_agents(certs: list[tuple[str, str, int]], ca: str, ready: mp.Event) -> None:  # type: ignore[valid-type]
    async def status(request: web.Request) -> web.Response:
        return web.json_response(STATUS_DOC)

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/v1/status", status)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        for cert, key, port in certs:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(cafile=ca)
            ctx.load_cert_chain(cert, key)
            await web.TCPSite(runner, "127.0.0.1", port, ssl_context=ctx, backlog=64).start()
        ready.set()
        await asyncio.Event().wait()

    asyncio.run(main())


def poll_sweep(work: Path, agents: int) -> None:
    state = work / "poll"
    subprocess.run([*REGISTRAR, "--state-dir", str(state), "init"], check=True, capture_output=True)
    ca = CertificateAuthority.load(state)
    registry = SqliteRegistry(state / "registry.sqlite")
    certs_dir = work / "agents"
    certs_dir.mkdir()
    certs: list[tuple[str, str, int]] = []
    ports: set[int] = set()
    key = ec.generate_private_key(ec.SECP256R1())  # one key for all simulated boxes; one cert each
    write_key(certs_dir / "key.pem", key)
    for i in range(agents):
        node_id = f"sim-{i:04d}"
        port = free_port()
        while port in ports:
            port = free_port()
        ports.add(port)
        names = [x509.DNSName(node_id), x509.UniformResourceIdentifier(NODE_URI_PREFIX + node_id)]
        cert = ca.issue(
            key.public_key(), common_name=node_id, role="fleet:node", lifetime=timedelta(days=1), names=names
        )
        path = certs_dir / f"{node_id}.pem"
        path.write_bytes(cert_pem(cert))
        certs.append((str(path), str(certs_dir / "key.pem"), port))
        site = f"site-{i % 20:02d}"
        registry.create_node(Node(node_id, "approved", "t", "fp", site=site, cluster=site, role="agent",
                                  addresses=["127.0.0.1"], api_port=port, last_seen=time.time()))  # fmt: skip
        registry.record_cert(node_id, cert.serial_number, cert.not_valid_after_utc.timestamp())
    registry.close()

    ready = mp.Event()
    server = mp.Process(target=_serve_agents, args=(certs, str(state / "ca.pem"), ready), daemon=True)
    server.start()
    if not ready.wait(120):
        raise SystemExit("simulated agents did not come up")
    try:
        t0 = time.perf_counter()
        out = subprocess.run([*REGISTRAR, "--state-dir", str(state), "poll", "-o", "json"], capture_output=True,
                             text=True, check=True)  # fmt: skip
        elapsed = time.perf_counter() - t0
    finally:
        server.terminate()
        server.join(10)
    import json

    nodes = json.loads(out.stdout)["nodes"]
    reachable = sum(n["reachable"] for n in nodes)
    errors: dict[str, int] = {}
    for n in nodes:
        if n["error"]:
            kind = n["error"].split(":")[0]
            errors[kind] = errors.get(kind, 0) + 1
    t0 = time.perf_counter()
    subprocess.run([*REGISTRAR, "--help"], capture_output=True, check=True)
    startup = time.perf_counter() - t0
    print(f"poll sweep: {agents} simulated agents, each its own mTLS endpoint and node certificate")
    print(f"  edge-registrar poll: {reachable}/{len(nodes)} reachable in {elapsed:.2f} s  (target <= 10 s); "
          f"program start-up alone {startup:.2f} s")  # fmt: skip
    if errors:
        print(f"  unreachable: {errors}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--agents", type=int, default=400, help="agents in the enrollment storm")
    p.add_argument("--clients", type=int, default=2, help="client processes driving the storm")
    p.add_argument("--poll-agents", type=int, default=1000)
    p.add_argument("--skip-storm", action="store_true")
    p.add_argument("--skip-poll", action="store_true")
    args = p.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8192)), hard))
    print(f"machine: {os.cpu_count()} CPUs, python {sys.version.split()[0]}, {ssl.OPENSSL_VERSION}")
    with tempfile.TemporaryDirectory(prefix="fleet-bench-") as tmp:
        work = Path(tmp)
        if not args.skip_storm:
            enrollment_storm(work, args.agents, args.clients)
        if not args.skip_poll:
            poll_sweep(work, args.poll_agents)


if __name__ == "__main__":
    main()
