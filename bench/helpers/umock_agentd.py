"""A real agentd on a recorded device tree, with hotplug events on demand (for bench/soak.py).

Run as ``umockdev-wrapper .venv/bin/python bench/helpers/umock_agentd.py ROOT FIXTURE``.
This process builds a umockdev testbed from ``tests/fixtures/FIXTURE.umockdev`` and starts
``agentd run --root ROOT`` as its child: the child inherits umockdev's preload library and
testbed, so its libudev, sysfs reads and udev netlink monitor all see the recorded tree.
Commands on stdin, one per line, each answered with one line on stdout:

    pid             -> "pid N" (agentd's pid)
    hotplug N       -> N uevents (a NIC added, then removed, alternately), in batches of
                       BATCH, each once agentd has counted the last: "ok N SECONDS COUNTED LOST"
    quit            -> stops agentd: "bye RC"

Events are paced on agentd's own count (its inventory section's ``hotplug_events``):
umockdev's uevent emulation drops an event (sendmsg EAGAIN) when the monitor's socket
buffer is full; events agentd has not counted LOST_AFTER seconds after their batch are
reported as lost. agentd may count more events than were sent (umockdev delivers a removal
more than once here), which is why the count is reported beside N.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests/inventory"))
sys.path.append("/usr/lib/python3/dist-packages")  # gi (python3-gi) for the umockdev bindings

import gi  # noqa: E402

gi.require_version("UMockdev", "1.0")
from gi.repository import UMockdev  # noqa: E402
from trees import fixture_path  # noqa: E402

from agent.cli.transport import request  # noqa: E402

BATCH = 5  # uevents sent before waiting for agentd to count them (it publishes its count per rescan)
LOST_AFTER = 2.0  # seconds without agentd counting a batch: umockdev dropped some of it
NIC_PATH = "/sys/devices/virtual/net/soak0"
NIC = """P: /devices/virtual/net/soak0
E: SUBSYSTEM=net
E: INTERFACE=soak0
A: address=66:ee:00:00:00:02
A: mtu=1500
A: operstate=up
A: ifindex=41
A: iflink=41
A: type=1
"""


def status(sock: Path) -> dict[str, Any]:
    return dict(request(str(sock), "GET", "/v1/status", 10).body)  # agentctl's own client


def main() -> None:
    root, fixture = Path(sys.argv[1]), sys.argv[2]
    tb = UMockdev.Testbed.new()
    tb.add_from_file(str(fixture_path(fixture)))
    # agentd picks udev's re-broadcast events when udevd's control socket exists under its root
    (root / "run/udev").mkdir(parents=True, exist_ok=True)
    (root / "run/udev/control").touch()
    log = (root.parent / "agentd.log").open("ab")
    argv = [sys.executable, "-m", "agent.daemon", "run", "--root", str(root), "--log-format", "text"]
    agentd = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log, cwd=REPO)  # our stdout is the answers
    sock = root / "run/edge-agent/agent.sock"
    added = False
    for line in sys.stdin:
        cmd = line.split()
        if cmd[0] == "pid":
            print(f"pid {agentd.pid}", flush=True)
        elif cmd[0] == "hotplug":
            t0 = time.monotonic()
            seen = first = status(sock)["sections"]["inventory"]["hotplug_events"]
            lost, left = 0, int(cmd[1])
            while left:
                batch = min(BATCH, left)
                for _ in range(batch):
                    if added:
                        tb.uevent(NIC_PATH, "remove")
                        tb.remove_device(NIC_PATH)
                    else:
                        tb.add_from_string(NIC)
                        tb.uevent(NIC_PATH, "add")
                    added = not added
                left -= batch
                deadline = time.monotonic() + LOST_AFTER
                while (now := status(sock)["sections"]["inventory"]["hotplug_events"]) < seen + batch:
                    if time.monotonic() > deadline:
                        lost += seen + batch - now  # umockdev's sendmsg gave up (EAGAIN): never delivered
                        break
                    time.sleep(0.01)
                seen = now
            print(f"ok {cmd[1]} {time.monotonic() - t0:.2f} {seen - first} {lost}", flush=True)
        elif cmd[0] == "quit":
            agentd.terminate()
            print(f"bye {agentd.wait(15)}", flush=True)
            return
    agentd.kill()


if __name__ == "__main__":
    if "umockdev" not in os.environ.get("LD_PRELOAD", ""):
        sys.exit("umock_agentd.py must run under umockdev-wrapper")
    main()
