"""make demo: a local registrar, and the real agent on a scratch root with this machine's real hardware.

1. `edge-registrar init` makes a fleet CA under scratch/registrar and prints its pin;
   `token create` mints a one-time bootstrap token; `serve` listens on loopback.
2. A first-boot seed (registrar URL, CA pin, token, site) goes to scratch/root/boot/edge-agent.toml,
   exactly as an image builder would put it on the boot partition.
3. agentd runs with --root scratch/root: it adopts the seed, scans the real hardware, enrolls over
   mTLS (EST), receives its cluster assignment and serves its API on scratch/root/run/edge-agent/agent.sock.
4. `agentctl status`, `agentctl inventory` and `edge-registrar nodes list` are printed, then both stop
   (DEMO_KEEP=1 keeps them running).

There is no k3s/k0s binary on a development machine, so the runtime conditions say exactly that.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCRATCH = REPO / "scratch"
ROOT = SCRATCH / "root"


def agentctl(*args: str) -> int:
    cmd = [sys.executable, "-m", "agent.cli.agentctl", "--root", str(ROOT), *args]
    print("$ agentctl --root scratch/root " + " ".join(args), flush=True)
    return subprocess.call(cmd)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def registrar(*args: str) -> str:
    cmd = [sys.executable, "-m", "agent.registrar.cli", "--state-dir", str(SCRATCH / "registrar"), *args]
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip()


def wait_for_port(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"the registrar did not listen on 127.0.0.1:{port}; see {SCRATCH / 'registrar.log'}")


def wait_enrolled(timeout: float = 30) -> None:
    """Until the Enrolled condition is True (or the timeout; the status then says why)."""
    deadline = time.monotonic() + timeout
    cmd = [sys.executable, "-m", "agent.cli.agentctl", "--root", str(ROOT), "status", "-o", "json"]
    while time.monotonic() < deadline:
        out = subprocess.run(cmd, capture_output=True, text=True, check=False).stdout
        try:
            conds = {c["type"]: c["status"] for c in json.loads(out)["conditions"]}
        except (ValueError, KeyError):
            conds = {}
        if conds.get("Enrolled") == "True" and conds.get("Assigned") == "True":
            return
        time.sleep(0.3)


def main() -> int:
    for d in (ROOT, SCRATCH / "registrar"):
        if d.exists():
            shutil.rmtree(d)
    (ROOT / "etc/edge-agent").mkdir(parents=True)
    (ROOT / "boot").mkdir()
    machine_id = Path("/etc/machine-id")
    if machine_id.is_file():
        shutil.copy(machine_id, ROOT / "etc/machine-id")
    else:
        (ROOT / "etc/machine-id").write_text(uuid.uuid4().hex + "\n")

    pin = registrar("init").split()[-1]
    token = registrar("token", "create", "--ttl", "1h", "--uses", "1", "--site", "demo-lab").split()[-1]
    port, api_port = free_port(), free_port()
    print(f"registrar: CA pin {pin}, one-time bootstrap token minted, serving on 127.0.0.1:{port}")
    reg = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "agent.registrar.cli",
            "--state-dir",
            str(SCRATCH / "registrar"),
            "serve",
            "--listen",
            f"127.0.0.1:{port}",
        ],
        stderr=(SCRATCH / "registrar.log").open("w"),
    )
    wait_for_port(port)
    (ROOT / "boot/edge-agent.toml").write_text(
        f'[fleet]\nurl = "https://127.0.0.1:{port}"\nca_pin = "{pin}"\nbootstrap_token = "{token}"\nsite = "demo-lab"\n'
    )
    # the remote API stays on loopback in the demo
    (ROOT / "etc/edge-agent/agent.toml").write_text(f'[api]\nremote_listen = "127.0.0.1:{api_port}"\n')

    log = (SCRATCH / "agentd.log").open("w")
    daemon = subprocess.Popen(
        [sys.executable, "-m", "agent.daemon", "run", "--root", str(ROOT), "--log-format", "text"],
        stderr=log,
    )
    try:
        wait_enrolled()
        rc = subprocess.call(
            [sys.executable, "-m", "agent.cli.agentctl", "--root", str(ROOT), "status", "--wait", "--timeout", "20"],
            stdout=subprocess.DEVNULL,
        )
        agentctl("status")
        if rc != 2:
            agentctl("inventory")
        print("$ edge-registrar --state-dir scratch/registrar nodes list", flush=True)
        print(registrar("nodes", "list"))
        print(f"\nlogs: {SCRATCH / 'agentd.log'}, {SCRATCH / 'registrar.log'}")
        if os.environ.get("DEMO_KEEP"):
            print(f"agentd and the registrar keep running; stop them with: kill {daemon.pid} {reg.pid}")
            return 0
        return 0 if rc != 2 else 1
    finally:
        if not os.environ.get("DEMO_KEEP"):
            reg.send_signal(signal.SIGTERM)
            daemon.send_signal(signal.SIGTERM)
            t0 = time.monotonic()
            daemon.wait(10)
            print(f"agentd stopped in {time.monotonic() - t0:.2f}s (exit {daemon.returncode})")


if __name__ == "__main__":
    sys.exit(main())
