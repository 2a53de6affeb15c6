#!/usr/bin/env python3
"""Stand-in k3s-killall.sh: stops every k3s*.service (via systemctl), kills what is left of
their processes, unmounts nothing (there is nothing mounted), keeps cluster data.
Like the real script it traces with `+ ...` lines and its exit code means nothing. Stdlib only."""

import glob
import json
import os
import signal
import subprocess
import sys
import time

ROOT = os.environ.get("EDGE_STANDIN_ROOT", "/")


def under(path):
    return os.path.join(ROOT, path.lstrip("/")) if ROOT != "/" else path


def main():
    try:
        with open(under("/var/log/standin-calls.log"), "a") as f:
            f.write(json.dumps({"prog": "k3s-killall.sh", "argv": sys.argv[1:], "time": time.time()}) + "\n")
    except OSError:
        pass
    for unit in sorted(glob.glob(under("/etc/systemd/system/k3s*.service"))):
        name = os.path.basename(unit)
        sys.stderr.write("+ systemctl stop %s\n" % name)
        subprocess.run(["systemctl", "stop", name])
        state = os.path.join(under("/run/standin-systemd"), name + ".json")
        try:
            with open(state) as f:
                pid = json.load(f).get("MainPID", 0)
        except (OSError, ValueError):
            pid = 0
        if pid > 1:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
    for path in ("/run/k3s", "/var/lib/cni"):
        sys.stderr.write("+ rm -rf %s\n" % path)
        subprocess.run(["rm", "-rf", under(path)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
