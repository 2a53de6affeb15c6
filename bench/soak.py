"""Soak: does a real agentd give its memory back after a long day?

One agentd process on a scratch root, enrolled (an identity written the way enrollment
leaves it) and serving its remote mTLS listener on loopback, goes through:

  1. 100,000 GET /v1/status over its unix socket (raw HTTP/1.1 keep-alive, 8 connections);
  2. 1,000 hotplug uevents on a recorded device tree: agentd runs under umockdev-wrapper on
     tests/fixtures/gpu-server.umockdev and a NIC is added/removed through umockdev's uevent
     emulation; agentd's own udev monitor, debounce and rescans handle them
     (bench/helpers/umock_agentd.py; without umockdev this phase is skipped and says so);
  3. 100 SIGHUP config reloads;
  4. one storm of 2,000 TCP connections to the remote port that never send a ClientHello,
     held until agentd has closed them all (beyond its cap at once, the rest at the deadline).

Prints agentd's RSS before, peak and after, and the target "after within 5 MiB of before" as
pass/fail beside the figures. All traffic is on loopback and unix sockets.

    python bench/soak.py [--requests 100000] [--hotplug 1000] [--reloads 100] [--storm 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.conftest import unix_get  # noqa: E402
from tests.fleet.harness import free_port  # noqa: E402
from tests.fleet.storm import client_context, closed_by_peer, give_identity, half_open, metric, remote_get  # noqa: E402

MiB = 1 << 20
TARGET_MIB = 5.0
CONNECTIONS = 8


async def hammer(sock: Path, total: int, connections: int) -> tuple[int, float]:
    """``total`` GET /v1/status over ``connections`` keep-alive connections; (non-200s, seconds)."""
    request = b"GET /v1/status HTTP/1.1\r\nHost: a\r\n\r\n"
    bad = 0

    async def worker(n: int) -> None:
        nonlocal bad
        reader, writer = await asyncio.open_unix_connection(str(sock))
        for _ in range(n):
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            if head[9:12] != b"200":
                bad += 1
        writer.close()

    t0 = time.perf_counter()
    share = [total // connections + (i < total % connections) for i in range(connections)]
    await asyncio.gather(*(worker(n) for n in share))
    return bad, time.perf_counter() - t0


class Peak(threading.Thread):
    """Samples a process's RSS every 50 ms; keeps the highest."""

    def __init__(self, proc: psutil.Process) -> None:
        super().__init__(daemon=True)
        self.proc, self.peak, self.stop = proc, 0, threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.05):
            self.peak = max(self.peak, self.proc.memory_info().rss)


class Box:
    """agentd under umockdev (bench/helpers/umock_agentd.py), or plain when umockdev is missing."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.socket = root / "run/edge-agent/agent.sock"
        wrapper = shutil.which("umockdev-wrapper")
        self.umockdev = wrapper is not None and Path("/usr/lib/python3/dist-packages/gi").is_dir()
        if self.umockdev:
            helper = REPO / "bench/helpers/umock_agentd.py"
            argv = [str(wrapper), sys.executable, str(helper), str(root), "gpu-server"]
            self.driver = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            self.pid = int(self.ask("pid").split()[1])
        else:
            argv = [sys.executable, "-m", "agent.daemon", "run", "--root", str(root), "--log-format", "text"]
            log = (root.parent / "agentd.log").open("ab")
            self.plain = subprocess.Popen(argv, stderr=log, cwd=REPO)
            self.pid = self.plain.pid

    def ask(self, command: str) -> str:
        assert self.driver.stdin is not None and self.driver.stdout is not None
        self.driver.stdin.write(command + "\n")
        self.driver.stdin.flush()
        answer = self.driver.stdout.readline().strip()
        if not answer:
            raise SystemExit(f"soak: the umockdev driver died on {command!r} (rc {self.driver.wait()})")
        return answer

    def stop(self) -> None:
        if self.umockdev:
            self.ask("quit")
            self.driver.wait(15)
        else:
            self.plain.terminate()
            self.plain.wait(15)


def wait(predicate: object, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise SystemExit(f"soak: timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.05)


def rss(proc: psutil.Process) -> str:
    return f"{proc.memory_info().rss / MiB:.1f} MiB"


def settle(proc: psutil.Process) -> int:
    """RSS once it has stopped moving (two samples 0.5 s apart within 64 KiB), at most 10 s."""
    last = proc.memory_info().rss
    for _ in range(20):
        time.sleep(0.5)
        now = proc.memory_info().rss
        if abs(now - last) < 64 * 1024:
            return now
        last = now
    return last


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=100_000)
    ap.add_argument("--hotplug", type=int, default=1_000)
    ap.add_argument("--reloads", type=int, default=100)
    ap.add_argument("--storm", type=int, default=2_000)
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < args.storm + 256:  # the storm's client sockets live in this process
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, args.storm + 1024), hard))

    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        root = Path(tmp) / "root"
        (root / "etc/edge-agent").mkdir(parents=True)
        (root / "etc/machine-id").write_text("0123456789abcdef0123456789abcdef\n")
        port = free_port()
        (root / "etc/edge-agent/agent.toml").write_text(f'[api]\nremote_listen = "127.0.0.1:{port}"\n')
        fleet = give_identity(root / "var/lib/edge-agent/identity")
        tls = client_context(fleet, Path(tmp) / "client")
        box = Box(root)
        proc = psutil.Process(box.pid)

        def listening() -> bool:
            try:
                doc = json.loads(unix_get(box.socket, "/v1/status", timeout=10)[2])
            except (OSError, ValueError):
                return False
            return any(c["type"] == "RemoteApiListening" and c["status"] == "True" for c in doc["conditions"])

        try:
            wait(listening, "agentd ready with its remote listener")
            assert remote_get(port, tls) == 200
            asyncio.run(hammer(box.socket, 2_000, CONNECTIONS))  # warm up: imports, caches, first arenas
            before = settle(proc)
            peak = Peak(proc)
            peak.start()
            print(f"agentd pid {box.pid}, RSS before {before / MiB:.1f} MiB (after 2,000 warm-up requests)")

            bad, took = asyncio.run(hammer(box.socket, args.requests, CONNECTIONS))
            print(f"1. {args.requests} GET /v1/status over {CONNECTIONS} keep-alive unix connections: "
                  f"{took:.1f}s, {args.requests / took:.0f}/s, {bad} not 200; RSS {rss(proc)}")  # fmt: skip

            if box.umockdev:
                _, n, secs, seen, lost = box.ask(f"hotplug {args.hotplug}").split()
                print(f"2. {n} uevents on gpu-server.umockdev (NIC add/remove): {float(secs):.1f}s, agentd counted "
                      f"{seen} ({lost} dropped by umockdev's sender); RSS {rss(proc)}")  # fmt: skip
            else:
                print("2. hotplug: SKIPPED (no umockdev-wrapper or python3-gi: apt-get install umockdev python3-gi)")

            t0 = time.perf_counter()
            for _ in range(args.reloads):
                os.kill(box.pid, signal.SIGHUP)
                assert unix_get(box.socket, "/healthz", timeout=10)[0] == 200
            reloads = lambda: (root.parent / "agentd.log").read_text().count("config reloaded")  # noqa: E731
            wait(lambda: reloads() >= args.reloads, f"{args.reloads} reloads logged")
            print(f"3. {args.reloads} SIGHUP reloads: {time.perf_counter() - t0:.1f}s, {reloads()} logged; "
                  f"RSS {rss(proc)}")  # fmt: skip

            t0 = time.perf_counter()
            with half_open(port, args.storm) as socks:
                time.sleep(1.0)
                during = proc.memory_info().rss
                ok = unix_get(box.socket, "/v1/status", timeout=10)[0]
                wait(lambda: sum(map(closed_by_peer, socks)) >= len(socks) * 0.95, "agentd closing the storm", 90)
                text = unix_get(box.socket, "/metrics", timeout=10)[2].decode()
            wait(lambda: metric(unix_get(box.socket, "/metrics", timeout=10)[2].decode(),
                                "edge_agent_remote_connections_active") == 0, "the storm's slots back")  # fmt: skip
            dropped = {
                r: metric(text, "edge_agent_remote_connections_dropped_total", f'reason="{r}"')
                for r in ("over_limit", "handshake_timeout", "handshake_failed")
            }
            print(f"4. storm of {args.storm} half-open TLS connections: {time.perf_counter() - t0:.1f}s; "
                  f"limit {metric(text, 'edge_agent_remote_connections_limit'):.0f}, dropped {dropped}; "
                  f"/v1/status during it: {ok}; RSS during {during / MiB:.1f} MiB")  # fmt: skip
            assert remote_get(port, tls) == 200
            print("   a fleet client gets through after the storm: 200")

            after = settle(proc)
            peak.stop.set()
            peak.join()
        finally:
            box.stop()

    delta = (after - before) / MiB
    verdict = "PASS" if delta <= TARGET_MIB else "FAIL"
    print(f"agentd RSS: before {before / MiB:.1f} MiB, peak {max(peak.peak, after) / MiB:.1f} MiB, "
          f"after {after / MiB:.1f} MiB (after-before {delta:+.1f} MiB; ratio {after / before:.3f})")  # fmt: skip
    print(f"target: after within {TARGET_MIB:g} MiB of before: {verdict}")


if __name__ == "__main__":
    main()
