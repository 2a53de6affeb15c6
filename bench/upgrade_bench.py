"""Is the agent responsive while it downloads and verifies a large bundle?

Serves the real API app (with the upgrade routes) on a unix socket, measures
GET /v1/status latency from a separate client process while idle, then while
an upgrade downloads (from a separate http.server process) and verifies a
large bundle. Prints p50/p99/max and the loaded/idle p99 ratio; the target is
p99 <= 50 ms during the download and verification. No timed asserts.

The bundle is a real agent bundle: the large payload beside a tiny wheel that installs
an ``agentd``, so the upgrade runs through staging (an offline pip install into a venv)
and switching to ``checking``, where it asks systemd for a restart (the upgrade tests'
stand-in systemctl, which only records the call). The new process's health gate is not
this bench's business: ``checking`` ends it.

    python bench/upgrade_bench.py [--size-mb 256] [--idle-requests 500]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.api.app import ApiInfo, build_app
from agent.api.upgrades import UpgradeRoutes
from agent.context import AgentContext
from agent.model.config import AgentConfig
from agent.paths import Paths
from agent.state import StateStore
from agent.status import StatusBoard
from agent.sysexec import DEFAULT_PATH, ProcessRunner
from agent.upgrade import bundle_tool
from agent.upgrade.installers import default_installers
from agent.upgrade.manager import UpgradeManager
from agent.upgrade.signing import public_key_base64
from agent.watch import Watch
from tests.upgrade.wheels import agent_wheel

REPO = Path(__file__).resolve().parents[1]
STANDIN_SYSTEMCTL = REPO / "tests/upgrade/bin"

CLIENT = r"""
import http.client, json, socket, sys, time
sock_path, mode, arg = sys.argv[1], sys.argv[2], sys.argv[3]

class Conn(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(sock_path)

def get(c, path):
    t0 = time.perf_counter()
    c.request("GET", path)
    r = c.getresponse()
    body = r.read()
    return time.perf_counter() - t0, r.status, body

c = Conn("agent")
lat, progress = [], []
if mode == "idle":
    for _ in range(int(arg)):
        lat.append(get(c, "/v1/status")[0])
        time.sleep(0.002)
else:
    state = "downloading"
    while True:
        for _ in range(20):
            lat.append(get(c, "/v1/status")[0])
            time.sleep(0.002)
        doc = json.loads(get(c, "/v1/upgrades/" + arg)[2])
        state = doc["state"]
        progress.append((state, doc["progress"]["bytes"], doc["progress"]["total"]))
        if state in ("checking", "committed", "rolled-back", "failed"):
            break
print(json.dumps({"lat": lat, "progress": progress}))
"""


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] * 1000


async def client(sock: Path, mode: str, arg: str) -> dict[str, list]:  # type: ignore[type-arg]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CLIENT, str(sock), mode, arg, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await proc.communicate()
    return json.loads(out)  # type: ignore[no-any-return]


def make_bundle(work: Path, size_mb: int, key: Ed25519PrivateKey) -> Path:
    payload = work / "payload.bin"
    chunk = os.urandom(1 << 20)
    with payload.open("wb") as f:
        for _ in range(size_mb):
            f.write(chunk)
    wheel = agent_wheel(work, "9.9.9")
    out = work / "www" / "bundle.tar"
    out.parent.mkdir()
    files = [str(payload), f"{wheel}=wheels/{wheel.name}"]
    bundle_tool.build(out, name="edge-agent", kind="agent", version="9.9.9", files=files, key=key)
    payload.unlink()
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mb", type=int, default=256)
    ap.add_argument("--idle-requests", type=int, default=500)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="upgrade-bench-") as tmp:
        work = Path(tmp)
        key = Ed25519PrivateKey.generate()
        t0 = time.perf_counter()
        bundle = make_bundle(work, args.size_mb, key)
        print(f"bundle: {bundle.stat().st_size / 2**20:.0f} MiB built in {time.perf_counter() - t0:.1f}s")
        port = free_port()
        http = subprocess.Popen(
            [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(bundle.parent)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        root = work / "root"
        paths = Paths(root)
        store = StateStore(paths.state_file)
        cfg = AgentConfig.model_validate({"upgrade": {"release_keys": [public_key_base64(key)]}})
        calls = work / "systemctl.log"
        runner_env = {"LC_ALL": "C", "UPGRADE_STANDIN_LOG": str(calls)}
        process_runner = ProcessRunner(path=f"{STANDIN_SYSTEMCTL}:{DEFAULT_PATH}", base_env=runner_env)
        ctx = AgentContext(paths, process_runner, StatusBoard(), store, Watch(cfg))
        manager = UpgradeManager(ctx, installers=default_installers(ctx))
        app = build_app(ctx, ApiInfo(), modules=[UpgradeRoutes(manager)])
        runner = web.AppRunner(app)
        await runner.setup()
        paths.socket.parent.mkdir(parents=True)
        await web.UnixSite(runner, str(paths.socket)).start()
        try:
            await asyncio.sleep(0.5)
            idle = (await client(paths.socket, "idle", str(args.idle_requests)))["lat"]
            rec = manager.start(f"http://127.0.0.1:{port}/bundle.tar")
            t1 = time.perf_counter()
            loaded = await client(paths.socket, "loaded", rec.id)
            took = time.perf_counter() - t1
        finally:
            await runner.cleanup()
            http.terminate()
        lat = loaded["lat"]
        prog = loaded["progress"]
        downloading = [b for s, b, _ in prog if s == "downloading"]
        print(f"upgrade: {rec.state} after {took:.1f}s ({rec.reason[:80]})")
        restarts = calls.read_text().splitlines() if calls.exists() else []
        print(f"systemctl calls (stand-in): {restarts}")
        if rec.state != "checking":
            raise SystemExit(f"upgrade_bench: the upgrade ended {rec.state}, not checking: {rec.reason}")
        print(f"progress samples while downloading: {len(downloading)} (bytes seen: {downloading[:3]}...)")
        print(f"idle   GET /v1/status  n={len(idle):5d}  p50={pct(idle, 0.5):6.2f} ms  p99={pct(idle, 0.99):6.2f} ms")
        print(
            f"loaded GET /v1/status  n={len(lat):5d}  p50={pct(lat, 0.5):6.2f} ms  p99={pct(lat, 0.99):6.2f} ms"
            f"  max={max(lat) * 1000:6.2f} ms"
        )
        ratio = pct(lat, 0.99) / max(pct(idle, 0.99), 1e-6)
        verdict = "meets" if pct(lat, 0.99) <= 50 else "MISSES"
        print(f"p99 loaded/idle = {ratio:.1f}x; target p99 <= 50 ms during download+verify: {verdict}")


if __name__ == "__main__":
    asyncio.run(main())
