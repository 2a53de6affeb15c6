"""Foundation figures: agentctl start-up, agentd start-to-READY, idle RSS, /v1/status throughput.

Every figure is printed beside a peer measured in the same run (a ratio), never asserted:
  agentctl status      vs  python3 -c pass            (target <= 40 ms wall)
  agentd exec->READY   vs  python3 -c 'import aiohttp.web' (target: ratio <= 1.6x, and <= 700 ms)
  agentd exec->first /v1/status answered (READY must not just move work to right after it)
  agentd idle RSS      vs  python3 -c 'import aiohttp.web' RSS (target <= 45 MiB)
  /v1/status req/s     over the unix socket with keep-alive, driven by curl (C)   (target >= 10,000)
  /v1/status req/s     over mTLS (remote API, fleet:reader client cert) on an enrolled agent, same driver

Python runs from bytecode, as on a box, for the agent and its peer alike (bench/clientenv.py).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from clientenv import REPO, agentctl_command, box_python, bytecode_env, daemon_command, python_command
from measure import RUNS, median_ms, verdict, wall

sys.path.insert(0, str(REPO / "scripts"))
from lab import FleetLab

from agent.cli.transport import request

READY_TARGET = 1.6  # agentd exec -> READY over a bare `import aiohttp.web` (issue #15)


def rss_kib(pid: int) -> int:
    m = re.search(r"VmRSS:\s+(\d+)", Path(f"/proc/{pid}/status").read_text())
    return int(m.group(1)) if m else 0


def first_status(sock: Path) -> None:
    """One GET /v1/status over the socket (agentctl's own client), waiting for the whole answer."""
    reply = request(str(sock), "GET", "/v1/status", 30)
    assert reply.status == 200, reply.raw[:80]


def start_agent(root: Path) -> tuple[subprocess.Popen[bytes], float, float]:
    """Start agentd; seconds from exec to READY=1, and to the first /v1/status answered after it."""
    notify = root.parent / f"notify-{time.monotonic_ns()}.sock"
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    srv.bind(str(notify))
    srv.settimeout(30)
    cmd, env = daemon_command()
    env = bytecode_env(env)
    env["NOTIFY_SOCKET"] = str(notify)
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [*cmd, "run", "--root", str(root), "--log-format", "text"], env=env, stderr=subprocess.DEVNULL
    )
    while b"READY=1" not in srv.recv(4096):
        pass
    ready = time.perf_counter() - t0
    first_status(root / "run/edge-agent/agent.sock")
    answered = time.perf_counter() - t0
    srv.close()
    notify.unlink()
    return proc, ready, answered


def peer_rss() -> int:
    box, env = box_python()
    code = "import aiohttp.web,re;print(re.search(r'VmRSS:\\s+(\\d+)',open('/proc/self/status').read()).group(1))"
    out = subprocess.run([*box, "-c", code], env=env, capture_output=True, text=True, check=True)
    return int(out.stdout)


def status_rps(sock: Path, n: int = 20000, parallel: int = 8, via: list[str] | None = None) -> float:
    """curl drives n keep-alive GETs, `parallel` at a time, over the socket (or `via`: other curl options
    and the base URL, for mTLS)."""
    curl = shutil.which("curl")
    if curl is None:
        return float("nan")
    target = via or ["--unix-socket", str(sock), "http://agent"]
    t0 = time.perf_counter()
    out = subprocess.run(
        [
            curl,
            "-s",
            "-Z",
            "--parallel-max",
            str(parallel),
            *target[:-1],
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}\n",
            f"{target[-1]}/v1/status?[1-{n}]",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    dt = time.perf_counter() - t0
    ok = out.stdout.split().count("200")
    assert ok == n, f"only {ok}/{n} requests answered 200"
    return n / dt


def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="edge-bench-"))
    root = tmp / "root"
    root.mkdir()
    try:
        readies, answers, peers = [], [], []
        box, peer_env = box_python()
        peer_cmd = [*box, "-c", "import aiohttp.web"]
        starts = max(6, RUNS + 1)
        for i in range(starts):  # the first start writes the bytecode and the state: not counted
            if i:  # the peer beside each start, so a busy machine slows both alike
                peers.append(wall(peer_cmd, peer_env))
            proc, ready, answered = start_agent(root)
            if i:
                readies.append(ready)
                answers.append(answered)
            if i < starts - 1:
                proc.terminate()
                proc.wait()
        time.sleep(2.0)
        rss = rss_kib(proc.pid)
        sock = root / "run/edge-agent/agent.sock"
        # agentctl from a venv like the image's (no editable-install hooks), beside that venv's bare python
        here = bytecode_env(dict(os.environ))
        ctl = median_ms([*agentctl_command(), "--socket", str(sock), "status"], env=here)
        base = median_ms([*python_command(), "-c", "pass"], env=here)
        peer_ready = statistics.median(peers) * 1000
        rps = statistics.median(status_rps(sock) for _ in range(3))
        proc.terminate()
        proc.wait()
        prss = peer_rss()
        ready_ms = statistics.median(readies) * 1000
        answered_ms = statistics.median(answers) * 1000
        print(
            f"agentctl status         {ctl:7.1f} ms   python -c pass {base:6.1f} ms   ratio {ctl / base:4.2f}x"
            f"   target <= 40 ms  {'OK' if ctl <= 40 else 'MISS'}"
        )
        ratio = ready_ms / peer_ready
        print(
            f"agentd exec -> READY    {ready_ms:7.1f} ms   import aiohttp.web {peer_ready:6.1f} ms   "
            f"ratio {ratio:4.2f}x   target <= {READY_TARGET}x: {verdict(ratio <= READY_TARGET)}"
            f"   (<= 700 ms: {verdict(ready_ms <= 700)})"
        )
        print(
            f"  ... first /v1/status  {answered_ms:7.1f} ms   import aiohttp.web {peer_ready:6.1f} ms   "
            f"ratio {answered_ms / peer_ready:4.2f}x   (answered right after READY, controllers started)"
        )
        print(
            f"agentd idle RSS         {rss / 1024:7.1f} MiB  import aiohttp.web {prss / 1024:6.1f} MiB  "
            f"ratio {rss / prss:4.2f}x   target <= 45 MiB  {'OK' if rss <= 45 * 1024 else 'MISS'}"
        )
        print(
            f"/v1/status over socket  {rps:7.0f} req/s (curl, keep-alive, 8 parallel)   "
            f"target >= 10000  {'OK' if rps >= 10000 else 'MISS'}"
        )
        print(f"/v1/status over mTLS    {mtls_rps(tmp):7.0f} req/s (curl, keep-alive, 8 parallel, reader cert)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def mtls_rps(tmp: Path) -> float:
    cmd, env = daemon_command()
    lab = FleetLab(tmp / "lab", agentd=cmd, agentd_env=env)
    lab.start_registrar()
    lab.seed_box()
    lab.start_agent()
    try:
        if not lab.wait_for("Enrolled", "RemoteApiListening", timeout=60):
            print(f"  (the agent did not enroll; see {tmp}/lab/agentd.log)")
            return float("nan")
        node = lab.registrar("nodes", "list").splitlines()[1].split()[0]
        cert = lab.client_cert("fleet:reader", "bench")
        via = [
            "--cacert",
            str(cert / "ca.pem"),
            "--cert",
            str(cert / "client.pem"),
            "--key",
            str(cert / "client.key"),
            "--resolve",
            f"{node}:{lab.api_port}:127.0.0.1",
            f"https://{node}:{lab.api_port}",
        ]
        return statistics.median(status_rps(Path(), n=5000, via=via) for _ in range(3))
    finally:
        lab.stop()


if __name__ == "__main__":
    sys.exit(main())
