"""Fleet figures, side by side in one run (printed, never asserted):

  enrollment storm  N simulated boxes join at once (EST simpleenroll with a fresh TLS handshake, then
                    register over mTLS: bench/helpers/simbox.py) against `edge-registrar serve`:
                    1 replica on SQLite vs 3 replicas on one PostgreSQL 15      (enrollments/s each)
  heartbeats        boxes heartbeating with an unchanged status: registrar CPU per heartbeat (and
                    PostgreSQL's), projected to 10,000 boxes at a 60 s interval (target < 10% of a core);
                    once as agentd once sent them (a new TLS connection each, the whole status each
                    time) and once as it does now (kept alive, the status only when it changed)
  poll sweep        simulated mTLS agents, each with its own node certificate: `edge-registrar poll`
                    (full handshakes), then FleetPoller sweeps over full handshakes, resumed TLS
                    sessions and kept-alive connections, in 1 process and sharded across 2, beside
                    the floor: one full mTLS handshake's cost x the agents (bench/helpers/pollbench.py;
                    target <= 10 s)

Usage: python bench/fleet_bench.py [--agents 400] [--poll-agents 10000] [--clients 2]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import resource
import shutil
import ssl
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.fleet.registrar_client import RegistrarClient
from agent.fleet.status_report import StatusReport
from agent.fleet.transport import AiohttpTransport
from agent.model.wire import HeartbeatRequest
from bench.helpers import pgcluster
from bench.helpers.pollbench import poll_sweep
from bench.helpers.replicas import ReplicaSet
from bench.helpers.simbox import SimBox, join

REGISTRAR = [sys.executable, "-m", "agent.registrar"]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu(pid: int) -> float:
    """CPU seconds of ``pid`` and its children now alive (PostgreSQL's backends)."""
    total = 0.0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(proc.name) == pid or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def fleet_cpu(fleet: ReplicaSet) -> float:
    return sum(cpu_seconds(p.pid) for p in fleet.procs if p is not None and p.poll() is None)


# -- enrollment storm: 1 replica on SQLite vs 3 on PostgreSQL ----------------------------------------
def _storm_worker(urls: list[str], token: str, ca: str, work: str, prefix: str, n: int, start: float,
                  q: mp.Queue) -> None:  # fmt: skip
    boxes = [SimBox.make(f"{prefix}-{i:04d}") for i in range(n)]  # keys made on each box before the storm
    time.sleep(max(0.0, start - time.time()))

    async def run() -> list[SimBox]:
        return await asyncio.gather(*(join(b, urls, token, Path(ca), Path(work), first=i) for i, b in enumerate(boxes)))

    t0 = time.time()
    done = asyncio.run(run())
    q.put((t0, time.time(), sum(bool(b.answer) for b in done), sum(len(b.errors) for b in done)))


def storm(work: Path, database: str, replicas: int, agents: int, clients: int) -> tuple[float, float]:
    """(enrollments/s, registrar CPU ms per enrollment) of ``agents`` boxes joining at once."""
    fleet = ReplicaSet(work, database, replicas, "--servers", "3").start()
    try:
        token = fleet.cli("token", "create", "--uses", str(agents), "--site", "bench").strip()
        boxes_dir = work / "boxes"
        boxes_dir.mkdir()
        per = [agents // clients + (1 if i < agents % clients else 0) for i in range(clients)]
        q: mp.Queue = mp.Queue()
        start = time.time() + 2.0 + agents / 500
        procs = [
            mp.Process(target=_storm_worker, args=(fleet.urls, token, str(fleet.ca_pem), str(boxes_dir), f"c{i}", n,
                                                   start, q))
            for i, n in enumerate(per)
        ]  # fmt: skip
        for p in procs:
            p.start()
        cpu0 = fleet_cpu(fleet)
        results = [q.get() for _ in procs]
        cpu = fleet_cpu(fleet) - cpu0
        for p in procs:
            p.join()
    finally:
        fleet.stop()
    t0, t1 = min(r[0] for r in results), max(r[1] for r in results)
    ok = sum(r[2] for r in results)
    retries = sum(r[3] for r in results)
    rate = ok / (t1 - t0)
    print(
        f"  {replicas} replica(s) on {database.split(':')[0]:<10} {ok}/{agents} joined in {t1 - t0:6.2f} s  ->  "
        f"{rate:5.0f} enrollments/s; registrar CPU {cpu / max(ok, 1) * 1000:.2f} ms each; {retries} retried calls"
    )
    return rate, cpu


def storms(work: Path, agents: int, clients: int, pg: pgcluster.PgCluster | None) -> None:
    print(f"enrollment storm: {agents} boxes at once (simpleenroll + register) from {clients} client processes")
    sqlite_rate, _ = storm(work / "storm-sqlite", f"sqlite://{work}/storm-sqlite.sqlite", 1, agents, clients)
    if pg is None:
        print("  3 replicas on PostgreSQL: skipped (PostgreSQL 15 not installed: make deps)")
        return
    pg_rate, _ = storm(work / "storm-pg", pg.new_database(), 3, agents, clients)
    print(
        f"  ratio PostgreSQL x3 / SQLite x1: {pg_rate / sqlite_rate:.2f} (one 2-core machine runs the replicas, "
        "PostgreSQL and the clients: the replicas add availability here, not cores)"
    )


# -- heartbeat capacity ---------------------------------------------------------------------------
FLEET = 10_000
INTERVAL = 60.0
STATUS: dict[str, Any] = {
    "health": "healthy",
    "conditions": [{"type": "NodeReady", "status": "True"}],
    "sections": {"fleet": {"role": "agent"}},
}
HEARTBEAT = HeartbeatRequest(
    status=STATUS,
    boot_id="b" * 32,
    hardware="h" * 16,
)


def heartbeats(work: Path, label: str, database: str, boxes: int, rounds: int, pg_pid: int) -> None:
    fleet = ReplicaSet(work, database, 1).start()
    try:
        token = fleet.cli("token", "create", "--uses", str(boxes), "--site", "hb").strip()
        (work / "boxes").mkdir()

        async def run() -> None:
            sims = await asyncio.gather(*(join(SimBox.make(f"hb-{i:04d}"), fleet.urls, token, fleet.ca_pem,
                                               work / "boxes") for i in range(boxes)))  # fmt: skip
            contexts = [b.mtls(fleet.ca_pem, work / "boxes") for b in sims]
            url = fleet.urls[0]

            async def fresh_each() -> None:  # agentd before it kept connections: a TLS handshake per heartbeat
                async def one(c: ssl.SSLContext) -> None:
                    transport = AiohttpTransport()
                    try:
                        await RegistrarClient(url, transport, c).heartbeat(HEARTBEAT)
                    finally:
                        await transport.close()

                for _ in range(rounds):
                    await asyncio.gather(*(one(c) for c in contexts))

            async def as_agent() -> None:  # what agentd does now: one kept-alive transport per box, and
                # its status only when it changed (agent.fleet.status_report)
                transports = [AiohttpTransport() for _ in contexts]
                reports = [StatusReport() for _ in contexts]

                async def one(box: SimBox, t: AiohttpTransport, c: ssl.SSLContext, report: StatusReport) -> None:
                    status = report.carry(box.node_id, STATUS)
                    beat = HEARTBEAT.model_copy(update={"status": status})
                    report.answered((await RegistrarClient(url, t, c).heartbeat(beat)).status_kept)

                try:
                    for i in range(rounds + 1):
                        each = zip(sims, transports, contexts, reports, strict=True)
                        await asyncio.gather(*(one(*box) for box in each))
                        if i == 0:  # the handshakes are paid once; measure from the second round
                            marks.append((fleet_cpu(fleet), tree_cpu(pg_pid) if pg_pid else 0.0))
                finally:
                    for t in transports:
                        await t.close()

            ways = (("new TLS connection each (old agentd)", fresh_each), ("kept-alive, status on change", as_agent))
            for name, how in ways:
                marks.clear()
                marks.append((fleet_cpu(fleet), tree_cpu(pg_pid) if pg_pid else 0.0))
                await how()
                end = (fleet_cpu(fleet), tree_cpu(pg_pid) if pg_pid else 0.0)
                n = boxes * rounds
                reg_ms = (end[0] - marks[-1][0]) / n * 1000
                db_ms = (end[1] - marks[-1][1]) / n * 1000
                share = (reg_ms + db_ms) / 1000 * FLEET / INTERVAL * 100
                db = f" + PostgreSQL {db_ms:.2f} ms" if pg_pid else ""
                verdict = "meets" if share < 10 else "misses"
                print(
                    f"  {label:<10} {name:<38} registrar {reg_ms:.2f} ms{db} per heartbeat -> {FLEET} boxes "
                    f"every {INTERVAL:.0f} s: {share:5.1f}% of one core ({verdict} < 10%)"
                )

        marks: list[tuple[float, float]] = []
        asyncio.run(run())
    finally:
        fleet.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--agents", type=int, default=400, help="boxes in the enrollment storm")
    p.add_argument("--clients", type=int, default=2, help="client processes driving the storm")
    p.add_argument("--heartbeat-boxes", type=int, default=200)
    p.add_argument("--heartbeat-rounds", type=int, default=5)
    p.add_argument("--poll-agents", type=int, default=10_000)
    p.add_argument("--poll-processes", type=int, default=2, help="poller processes (replicas) for the sharded sweep")
    p.add_argument("--skip-storm", action="store_true")
    p.add_argument("--skip-heartbeats", action="store_true")
    p.add_argument("--skip-poll", action="store_true")
    args = p.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    print(f"machine: {os.cpu_count()} CPUs, python {sys.version.split()[0]}, {ssl.OPENSSL_VERSION}")
    pg = pgcluster.PgCluster() if pgcluster.available() and os.geteuid() == 0 else None
    with tempfile.TemporaryDirectory(prefix="fleet-bench-") as tmp:
        work = Path(tmp)
        try:
            if pg is not None:
                pg.start()
            if not args.skip_storm:
                storms(work, args.agents, args.clients, pg)
            if not args.skip_heartbeats:
                print(f"heartbeats: {args.heartbeat_boxes} boxes x {args.heartbeat_rounds} rounds, status unchanged")
                heartbeats(work / "hb-sqlite", "SQLite", f"sqlite://{work}/hb.sqlite", args.heartbeat_boxes,
                           args.heartbeat_rounds, 0)  # fmt: skip
                if pg is not None:
                    heartbeats(work / "hb-pg", "PostgreSQL", pg.new_database(), args.heartbeat_boxes,
                               args.heartbeat_rounds, pg.pid)  # fmt: skip
            if not args.skip_poll:
                poll_sweep(work, args.poll_agents, processes=args.poll_processes)
        finally:
            if pg is not None:
                pg.remove()
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
