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

import os
import subprocess
import sys
from pathlib import Path

from lab import FleetLab

SCRATCH = Path(__file__).resolve().parent.parent / "scratch"


def agentctl(lab: FleetLab, *args: str) -> int:
    print("$ agentctl --root scratch/root " + " ".join(args), flush=True)
    return subprocess.call([sys.executable, "-m", "agent.cli.agentctl", "--root", str(lab.root), *args])


def main() -> int:
    lab = FleetLab(SCRATCH)
    lab.start_registrar()
    print(f"registrar: fleet CA pin {lab.pin}, serving EST + membership on https://127.0.0.1:{lab.port}")
    lab.seed_box()
    print("box: seed with registrar URL, CA pin and a one-time bootstrap token in scratch/root/boot/edge-agent.toml")
    lab.start_agent()
    try:
        enrolled = lab.wait_for("Enrolled", "Assigned", "RemoteApiListening")
        rc = agentctl(lab, "status")
        if rc != 2:
            agentctl(lab, "inventory")
        print("$ edge-registrar --state-dir scratch/registrar nodes list", flush=True)
        print(lab.registrar("nodes", "list"))
        print(f"\nlogs: {SCRATCH / 'agentd.log'}, {SCRATCH / 'registrar.log'}")
        print(
            "note: a development machine has no k3s binary, so Installed/Running/NodeReady say so and the agent\n"
            "reports 'degraded'; an image carries it in /usr/lib/edge-agent/airgap (make system-test boots one)."
        )
        if os.environ.get("DEMO_KEEP"):
            assert lab.agent_proc and lab.registrar_proc
            print(f"agentd and the registrar keep running: kill {lab.agent_proc.pid} {lab.registrar_proc.pid}")
            return 0
        return 0 if enrolled and rc != 2 else 1
    finally:
        if not os.environ.get("DEMO_KEEP"):
            print(f"agentd stopped in {lab.stop():.2f}s")


if __name__ == "__main__":
    sys.exit(main())
